"""Server-Timing header, the per-process request counter and the metrics' hooks.

All live in one WSGI middleware around ``app.wsgi_app`` rather than in
before/after_request hooks, so every response gets the header and is
counted: errors, 404s, 405s and anything Flask answers on its own.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.metrics import AppMetrics


class RequestCounter:
    """A thread-safe counter.

    ``x += 1`` is a read-modify-write that can lose updates when threads
    interleave (and free-threaded builds have no GIL to make it unlikely),
    so every access takes a lock. uWSGI and gunicorn fork workers from a
    master that serves no requests, so the lock is never held at fork time
    and each worker starts counting from zero.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def increment(self) -> int:
        with self._lock:
            self._value += 1
            return self._value

    @property
    def value(self) -> int:
        with self._lock:
            return self._value


def format_server_timing(wall_ms: float, cpu_ms: float) -> str:
    return f"app;dur={wall_ms:.3f}, cpu;dur={cpu_ms:.3f}"


class ServerTimingMiddleware:
    """Count each request and add ``Server-Timing: app;dur=..., cpu;dur=...``.

    ``app`` is wall-clock milliseconds from the request reaching the app until
    the app returned its response, ``cpu`` the CPU milliseconds the request's
    own thread spent meanwhile (time.thread_time), so the difference is time
    spent waiting: sleeping, the GIL, the fanout pool. The middleware is the
    app's outermost, and it passes the app's status and headers on only once
    the app has returned (WSGI lets headers wait until the first body chunk),
    so the figure covers all of the app: its middlewares, the view, and
    Flask's teardown after the response was made, which is a sixth of /up's
    CPU. What a server spends beyond it is the server's own (wsgistack bench).
    Flask builds the body before it returns; an app streaming a body it makes
    while it is read would have that part left out. No app here uses WSGI's
    write() callable: it is not offered.

    With ``metrics`` (app/metrics.py), the same clocks and status feed the
    Prometheus metrics: one frame and one reading of each clock per request
    for both (the metrics' cost on the floor: docs/metrics.md). A request that
    raises past the app is counted as a 500, or a 504 for mod_wsgi 6's
    RequestTimeout (raised in a request past request-timeout; app.wsgi
    answers the client a 504).
    """

    def __init__(self, wsgi_app, counter: RequestCounter, metrics: AppMetrics | None = None):
        self.wsgi_app = wsgi_app
        self.counter = counter
        self.metrics = metrics

    def __call__(self, environ, start_response):
        self.counter.increment()
        metrics = self.metrics
        if metrics is not None:
            metrics.started()
        wall_start = time.perf_counter()
        cpu_start = time.thread_time()
        started: list = []

        def held_start_response(status, headers, exc_info=None):
            started[:] = [status, headers, exc_info]
            return _no_write

        try:
            body = self.wsgi_app(environ, held_start_response)
        except BaseException as exc:
            if metrics is not None:
                status = "504" if type(exc).__name__ == "RequestTimeout" else "500"
                cpu = time.thread_time() - cpu_start
                metrics.ended(environ, status, time.perf_counter() - wall_start, cpu)
            raise
        cpu = time.thread_time() - cpu_start
        wall = time.perf_counter() - wall_start
        status, headers, exc_info = started
        if metrics is not None:
            metrics.ended(environ, status[:3], wall, cpu)
        value = format_server_timing(wall * 1000, cpu * 1000)
        start_response(status, [*headers, ("Server-Timing", value)], exc_info)
        return body


def _no_write(data: bytes) -> None:
    raise NotImplementedError("the app's Server-Timing middleware offers no write() callable")
