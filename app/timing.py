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

    ``app`` is wall-clock milliseconds until the response starts, ``cpu`` is
    CPU milliseconds spent by the request's own thread (time.thread_time),
    so the difference is time spent waiting: sleeping, the GIL, the fanout
    pool. The body is already built when Flask calls start_response, so the
    figure covers the whole view.
    """

    def __init__(self, wsgi_app, counter: RequestCounter) -> None:
        self.wsgi_app = wsgi_app
        self.counter = counter

    def __call__(self, environ, start_response):
        self.counter.increment()
        wall_start = time.perf_counter()
        cpu_start = time.thread_time()

        def timed_start_response(status, headers, exc_info=None):
            cpu = time.thread_time() - cpu_start
            # for the metrics (app/metrics.py): one clock read, not two
            environ[CPU_KEY] = cpu
            value = format_server_timing((time.perf_counter() - wall_start) * 1000, cpu * 1000)
            return start_response(status, [*headers, ("Server-Timing", value)], exc_info)

        return self.wsgi_app(environ, timed_start_response)
