"""Server-Timing header and the per-process request counter.

Both live in a WSGI middleware around ``app.wsgi_app`` rather than in
before/after_request hooks, so every response gets the header and is
counted: errors, 404s, 405s and anything Flask answers on its own.
"""

import threading
import time

# the request thread's CPU seconds until its answer started, left in the
# environ for the metrics
CPU_KEY = "wsgistack.cpu_seconds"


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
    app's outermost but for the metrics' (which read the CPU figure it leaves
    in the environ, CPU_KEY), and it passes the app's status and headers on only once
    the app has returned (WSGI lets headers wait until the first body chunk),
    so the figure covers all of the app: its middlewares, the view, and
    Flask's teardown after the response was made, which is a sixth of /up's
    CPU. What a server spends beyond it is the server's own (wsgistack bench).
    Flask builds the body before it returns; an app streaming a body it makes
    while it is read would have that part left out. No app here uses WSGI's
    write() callable: it is not offered.
    """

    def __init__(self, wsgi_app, counter: RequestCounter) -> None:
        self.wsgi_app = wsgi_app
        self.counter = counter

    def __call__(self, environ, start_response):
        self.counter.increment()
        wall_start = time.perf_counter()
        cpu_start = time.thread_time()
        started: list = []

        def held_start_response(status, headers, exc_info=None):
            started[:] = [status, headers, exc_info]
            return _no_write

        body = self.wsgi_app(environ, held_start_response)
        cpu = time.thread_time() - cpu_start
        # for the metrics (app/metrics.py), around this middleware: one clock read, not two
        environ[CPU_KEY] = cpu
        value = format_server_timing((time.perf_counter() - wall_start) * 1000, cpu * 1000)
        status, headers, exc_info = started
        start_response(status, [*headers, ("Server-Timing", value)], exc_info)
        return body


def _no_write(data: bytes) -> None:
    raise NotImplementedError("the app's Server-Timing middleware offers no write() callable")
