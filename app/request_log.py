"""Request IDs, and the log line of a request worth a look.

Every request gets an ID: the one our proxy passes as the CGI variable
``REQUEST_ID`` (nginx and Apache set it; a client cannot, since clients only
produce ``HTTP_*`` variables), else a trusted proxy's ``X-Request-ID`` (the
stacks without a proxy of ours behind a load balancer), else a new one. It is
returned as the ``X-Request-ID`` response header and carried by every log line
the app writes while serving the request.

A request that took at least ``SLOW_REQUEST_MS`` or failed with a 5xx gets a
log line of its own, like the proxy's access log and the app server's log (which
log every request and the slow or failed ones), so one ID finds it in all three.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

from app.forwarded import Network, is_trusted

# what an ID may look like when it comes from outside (as nginx checks it)
VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

current_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: the current request's, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_id.get()
        return True


def request_id(environ, trusted: tuple[Network, ...]) -> str:
    from_proxy = environ.get("REQUEST_ID", "")
    if VALID_ID.fullmatch(from_proxy):
        return from_proxy
    forwarded = environ.get("HTTP_X_REQUEST_ID", "")
    if VALID_ID.fullmatch(forwarded) and is_trusted(environ.get("REMOTE_ADDR", ""), trusted):
        return forwarded
    return uuid.uuid4().hex


class RequestLogMiddleware:
    def __init__(self, wsgi_app, logger: logging.Logger, slow_ms: int, trusted) -> None:
        self.wsgi_app = wsgi_app
        self.logger = logger
        self.slow_ms = slow_ms
        self.trusted = trusted

    def __call__(self, environ, start_response):
        rid = request_id(environ, self.trusted)
        environ["wsgistack.request_id"] = rid
        token = current_id.set(rid)
        start = time.perf_counter()
        status = ""

        def start_with_id(status_line, headers, exc_info=None):
            nonlocal status
            status = status_line.split(" ", 1)[0]
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            return start_response(status_line, [*headers, ("X-Request-ID", rid)], exc_info)

        try:
            return self.wsgi_app(environ, start_with_id)
        finally:
            elapsed_ms = (time.perf_counter() - start) * 1000
            if elapsed_ms >= self.slow_ms or status.startswith("5"):
                self.logger.info(
                    "%s %s %s in %.0f ms%s",
                    environ.get("REQUEST_METHOD", "-"),
                    environ.get("PATH_INFO", "-"),
                    status or "-",
                    elapsed_ms,
                    " (slow)" if elapsed_ms >= self.slow_ms else "",
                )
            current_id.reset(token)
