"""Fibonacci demo app served by every stack in this project.

``create_app()`` is the application factory. Configuration is applied in
this order, later sources winning:

1. the defaults below,
2. ``FLASK_*`` environment variables (``FLASK_FIB_MAX_N=5000``), whose
   values are parsed as JSON, so numbers arrive as ints,
3. the ``config`` mapping passed to ``create_app`` (tests).

``WSGI_PROCESSES`` and ``WSGI_THREADS`` (no prefix) are set by the
deployment and only reported by ``/info``; ``TRUSTED_PROXIES`` and
``SLOW_REQUEST_MS`` (no prefix either) are the stack's knobs of the same name
(wsgistack/settings.py), read here too.
"""

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, request
from flask.ctx import RequestContext
from flask.logging import default_handler
from werkzeug.exceptions import RequestEntityTooLarge, RequestURITooLarge

from app import fanout, fib, forwarded, jobs, metrics, problems, request_log, timing

DEFAULTS: dict[str, Any] = {
    # doubling/iterative cap; F(20000) has 4180 digits, under the 4300 that
    # python 3.11+ lets str() produce by default (sys.int_max_str_digits)
    "FIB_MAX_N": 20000,
    # naive recursion makes ~1.6**n calls: fib_naive(30) takes ~0.2 s of cpu
    # on a 2024 x86 core (python 3.11), and each +1 multiplies that by 1.6,
    # so 30 stays far below a 30 s request timeout even on a loaded box
    # (35 would be ~2.5 s, 40 ~30 s)
    "FIB_NAIVE_MAX_N": 30,
    "SEQUENCE_MAX_N": 2000,
    # the same as jobs (POST /jobs/fib, app/jobs.py), which run on the job
    # workers under their own time limit (JOB_TIME_LIMIT), not a request's:
    # F(100000) has 20899 digits; naive(40) is ~30 s of cpu, 1.6**10 x naive(30)
    "JOB_FIB_MAX_N": 100000,
    "JOB_FIB_NAIVE_MAX_N": 40,
    "IO_MAX_MS": 20000,
    "FANOUT_MAX_CALLS": 32,
    "FANOUT_POOL_SIZE": 16,
    # bytes; longer query strings get 414
    "MAX_QUERY_STRING": 1024,
    # bytes of request body (Flask's own key); larger bodies get 413. The
    # proxies refuse them first (MAX_BODY_BYTES); this bounds the stacks
    # without one (gunicorn's config passes MAX_BODY_BYTES here). null: no limit
    "MAX_CONTENT_LENGTH": 1048576,
    "LOG_LEVEL": "INFO",
}

POSITIVE_INT_KEYS = (
    "FIB_MAX_N",
    "FIB_NAIVE_MAX_N",
    "SEQUENCE_MAX_N",
    "JOB_FIB_MAX_N",
    "JOB_FIB_NAIVE_MAX_N",
    "IO_MAX_MS",
    "FANOUT_MAX_CALLS",
    "FANOUT_POOL_SIZE",
    "MAX_QUERY_STRING",
)

_DIGITS = re.compile(r"[0-9]+")

_LOG_FORMAT = (
    "%(asctime)s %(levelname)s [%(process)d:%(threadName)s] [%(request_id)s] %(name)s: %(message)s"
)


class ConfigError(ValueError):
    """A configuration value is invalid; raised by create_app at startup."""


class FibFlask(Flask):
    # the request context's class: Flask's, or the metrics' that notes each
    # request's URL rule (app/metrics.py init_app sets it)
    request_context_class: type[RequestContext] = RequestContext

    def request_context(self, environ: dict) -> RequestContext:
        return self.request_context_class(self, environ)

    def make_default_options_response(self):
        # flask answers OPTIONS with an empty 200 typed text/html; an api
        # should say 204 with the Allow header and no body type
        response = super().make_default_options_response()
        response.status_code = 204
        del response.headers["Content-Type"]
        return response


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the app."""
    # no Flask static route: app/front.py serves /static/ with fingerprints
    app = FibFlask(__name__, static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(
        WSGI_PROCESSES=os.environ.get("WSGI_PROCESSES"),
        WSGI_THREADS=os.environ.get("WSGI_THREADS"),
        TRUSTED_PROXIES=os.environ.get("TRUSTED_PROXIES", ""),
        SLOW_REQUEST_MS=os.environ.get("SLOW_REQUEST_MS", 1000),
    )
    app.config.from_prefixed_env()
    if config is not None:
        app.config.from_mapping(config)

    _configure_logging(app)
    _validate_config(app)

    # keep the order of keys as written in the views
    app.json.sort_keys = False
    # '//up' would otherwise be answered with an html 308 redirect
    app.url_map.merge_slashes = False

    counter = timing.RequestCounter()
    app.extensions["request_counter"] = counter
    app.extensions["fanout_pool"] = fanout.FanoutPool(app.config["FANOUT_POOL_SIZE"])
    trusted = app.config["TRUSTED_PROXIES"]
    app.wsgi_app = request_log.RequestLogMiddleware(
        app.wsgi_app, app.logger, app.config["SLOW_REQUEST_MS"], trusted
    )
    # the client's real address is known before the rest of the app runs
    app.wsgi_app = forwarded.TrustedProxyMiddleware(app.wsgi_app, trusted)
    # outermost: Server-Timing's CPU figure is the whole app's (these
    # middlewares too), so that what a server costs beyond it (wsgistack
    # bench: its CPU minus this figure) is the server's alone. Its clocks
    # also feed the Prometheus metrics by route, under the servers
    # (app/metrics.py)
    app.wsgi_app = timing.ServerTimingMiddleware(app.wsgi_app, counter, metrics.init_app(app))

    app.before_request(_limit_query_string)
    app.before_request(_limit_body)
    problems.init_app(app)

    from app import front, views

    app.register_blueprint(views.bp)
    jobs.init_app(app)
    front.init_app(app)
    return app


def _limit_query_string() -> None:
    # QUERY_STRING is the raw, still percent-encoded string, one char per byte
    limit = current_app.config["MAX_QUERY_STRING"]
    if len(request.environ.get("QUERY_STRING", "")) > limit:
        raise RequestURITooLarge(f"The query string is longer than {limit} bytes.")


def _limit_body() -> None:
    # Flask applies MAX_CONTENT_LENGTH only when a view reads the body, and
    # no view here does: refuse an oversized body before any view runs. A
    # declared length is checked as it is; a chunked body (no length) is read
    # up to the limit, past which werkzeug raises the 413 itself.
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is None:
        return
    length = request.content_length
    if length is not None:
        if length > limit:
            raise RequestEntityTooLarge(f"The request body is larger than {limit} bytes.")
    elif request.environ.get("wsgi.input_terminated"):
        while request.stream.read(65536):
            pass


class _StderrHandler(logging.StreamHandler):
    """Write to whatever sys.stderr is at the time of each record.

    Holding on to the stream found at startup would break when it is
    replaced later (test runners capturing output, daemonising servers).
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _OneLineFormatter(logging.Formatter):
    """Escape newlines so each event, traceback included, is one log line."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", "\\n")


def _configure_logging(app: Flask) -> None:
    # app.logger is logging.getLogger(app.name); configure it before flask
    # first touches it, and only once per process however many apps exist
    logger = logging.getLogger(app.name)
    logger.removeHandler(default_handler)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_OneLineFormatter(_LOG_FORMAT))
        handler.addFilter(request_log.RequestIdFilter())
        logger.addHandler(handler)
    # our handler already prints; an ancestor's would print the same line again
    logger.propagate = False
    level = app.config["LOG_LEVEL"]
    try:
        logger.setLevel(level.upper() if isinstance(level, str) else level)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"LOG_LEVEL must be a level name such as INFO, got {level!r}") from e


def _positive_int(key: str, value: Any) -> int:
    # the mapping may hold strings; the environment arrives JSON-decoded, so
    # FLASK_FIB_MAX_N=5000 is already an int but '05000' or 'abc' are not
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{key} must be a positive integer (set FLASK_{key} or the config mapping), "
            f"got {value!r}"
        )
    return value


def _optional_count(app: Flask, key: str) -> int | None:
    # informational only: a bad value is logged and reported as null
    value = app.config.get(key)
    if value is None or value == "":
        return None
    try:
        return _positive_int(key, value)
    except ConfigError:
        app.logger.warning("ignoring %s=%r: not a positive integer", key, value)
        return None


def _validate_config(app: Flask) -> None:
    for key in POSITIVE_INT_KEYS:
        app.config[key] = _positive_int(key, app.config[key])
    for key in ("WSGI_PROCESSES", "WSGI_THREADS"):
        app.config[key] = _optional_count(app, key)
    app.config["SLOW_REQUEST_MS"] = _positive_int("SLOW_REQUEST_MS", app.config["SLOW_REQUEST_MS"])
    proxies = app.config["TRUSTED_PROXIES"]
    if isinstance(proxies, str):
        try:
            app.config["TRUSTED_PROXIES"] = forwarded.parse_networks(proxies)
        except ValueError as e:
            raise ConfigError(f"TRUSTED_PROXIES must be addresses or CIDR ranges: {e}") from e
    if app.config["MAX_CONTENT_LENGTH"] is not None:
        app.config["MAX_CONTENT_LENGTH"] = _positive_int(
            "MAX_CONTENT_LENGTH", app.config["MAX_CONTENT_LENGTH"]
        )

    # str() of an int with more than sys.int_max_str_digits digits raises
    # ValueError (python 3.11+); refuse limits whose answers could not be
    # sent rather than raising the process-wide limit
    max_digits = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    if max_digits:
        largest = {
            "FIB_MAX_N": app.config["FIB_MAX_N"],
            "FIB_NAIVE_MAX_N": app.config["FIB_NAIVE_MAX_N"],
            "SEQUENCE_MAX_N": app.config["SEQUENCE_MAX_N"] - 1,
        }
        for key, n in largest.items():
            digits = fib.fib_digits(n)
            if digits > max_digits:
                raise ConfigError(
                    f"{key}={app.config[key]} is too large: F({n}) has {digits} digits, "
                    f"more than sys.int_max_str_digits={max_digits} allows to format"
                )
