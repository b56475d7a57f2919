"""The app's Prometheus metrics: what every request cost, by route.

    app_requests_total{route, method, status}      requests answered
    app_request_duration_seconds{route}            wall time until the answer starts (histogram)
    app_request_cpu_seconds_total{route}           CPU time of the request's own thread
    app_requests_in_flight                         requests running now (all processes)

Label values are bounded whatever clients send, so a scan of 10,000 URLs adds
no series: ``route`` is the URL rule that matched (``/fib/<n>``, never the
URL; ``<unmatched>`` for a 404 or 405), ``method`` one of the methods HTTP
defines (``other`` for the rest), ``status`` the three digits of the answer.
No query string, ID or header is ever a label.

Under the app servers the metrics live in prometheus_client's multiprocess
mode, its documented way for forking servers: every worker process writes its
values to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by each server's config
before the app is imported, emptied when the server starts), and the
server's exporter (wsgistack/exporter.py) adds up every file when scraped,
those of workers that were recycled or killed included, so the counters stay
exact and monotonic across worker restarts. Without that variable (the
development server, the unit tests) nothing is counted unless the config says
``METRICS=True``, and then into a registry of the app's own
(``app.extensions["metrics"].registry``).
https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

from app.timing import CPU_KEY

# the route label of a request no URL rule matched (404, 405)
UNMATCHED = "<unmatched>"
# every method HTTP defines (RFC 9110, PATCH: RFC 5789); any other is "other"
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
# the usual latency ladder, in seconds; the buckets stop at REQUEST_TIMEOUT,
# past which the app server cuts the request, and include its half, where the
# slow-requests alert draws its line (deploy/prometheus/rules/alerts.yml), so
# that the quantile there is exact rather than interpolated
LADDER = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)
# where a request's route is left for the middleware (by _note_route)
ROUTE_KEY = "wsgistack.route"


def buckets(request_timeout: float) -> tuple[float, ...]:
    """The histogram's upper bounds for a request timeout of that many seconds."""
    timeout = float(request_timeout)
    return tuple(sorted({b for b in LADDER if b < timeout} | {timeout / 2, timeout}))


# this process's pid, kept current across forks. prometheus_client calls
# os.getpid() at every write, to notice a fork; that is a third of a
# counter's cost, and the servers all run Python's at-fork hooks (os.fork,
# multiprocessing, uWSGI's python plugin: PyOS_AfterFork_Child; mod_wsgi
# starts Python after its fork), so the pid is read once per process instead.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def process_id() -> int:
    return _pid


def multiprocess() -> bool:
    """Whether prometheus_client writes to PROMETHEUS_MULTIPROC_DIR (decided
    when it was first imported, from the environment)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class AppMetrics:
    """The metrics of one process; ``registry`` None in multiprocess mode,
    where the exporter reads the files instead of a registry."""

    def __init__(self, registry: CollectorRegistry | None, request_timeout: float) -> None:
        self.registry = registry
        self.requests = Counter(
            "app_requests",
            "Requests the app answered, by route (the URL rule), method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "app_request_duration_seconds",
            "Seconds from the request reaching the app to its answer starting, by route.",
            ["route"],
            buckets=buckets(request_timeout),
            registry=registry,
        )
        self.cpu = Counter(
            "app_request_cpu_seconds",
            "CPU seconds spent by the requests' own threads, by route.",
            ["route"],
            registry=registry,
        )
        # livesum: the sum over the processes alive now (a killed worker's
        # requests are no longer in flight)
        self.in_flight = Gauge(
            "app_requests_in_flight",
            "Requests the app is running now.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._children: dict[tuple, Any] = {}

    def child(self, metric, *labels: str):
        # labels() takes a lock and builds a tuple each time; the children
        # are few (bounded labels), so keep them
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children.setdefault(key, metric.labels(*labels))
        return found


class MetricsMiddleware:
    """Counts and times every answer of the app, errors and 404s included."""

    def __init__(self, wsgi_app, metrics: AppMetrics) -> None:
        self.wsgi_app = wsgi_app
        self.metrics = metrics

    def __call__(self, environ, start_response):
        metrics = self.metrics
        status = "500"  # unless the app starts an answer

        def record_status(status_line, headers, exc_info=None):
            nonlocal status
            status = status_line[:3]
            return start_response(status_line, headers, exc_info)

        metrics.in_flight.inc()
        wall_start = time.perf_counter()
        try:
            return self.wsgi_app(environ, record_status)
        except BaseException as exc:
            # mod_wsgi 6 raises its RequestTimeout in a request past
            # request-timeout, and app.wsgi answers the client a 504
            if type(exc).__name__ == "RequestTimeout":
                status = "504"
            raise
        finally:
            wall = time.perf_counter() - wall_start
            # measured by ServerTimingMiddleware (app/timing.py), inside this
            # one: the thread's CPU clock is a system call, read once; none
            # for a request that raised past the app
            cpu = environ.get(CPU_KEY, 0.0)
            metrics.in_flight.dec()
            route = environ.get(ROUTE_KEY, UNMATCHED)
            method = environ.get("REQUEST_METHOD", "")
            method = method if method in METHODS else "other"
            metrics.child(metrics.requests, route, method, status).inc()
            metrics.child(metrics.duration, route).observe(wall)
            metrics.child(metrics.cpu, route).inc(cpu)


def _note_route(endpoint: str | None, values: dict | None) -> None:
    # a URL value preprocessor runs first for every request that reaches
    # Flask's dispatch, before any before_request function (which may refuse
    # it), once the URL rule is matched or not
    rule = request.url_rule
    request.environ[ROUTE_KEY] = rule.rule if rule is not None else UNMATCHED


def init_app(app: Flask) -> None:
    """Measure the app: in multiprocess mode under the servers, or into a
    registry of its own when the config says ``METRICS=True``."""
    if multiprocess():
        registry = None
        if not getattr(values.ValueClass, "_wsgistack", False):
            values.ValueClass = values.MultiProcessValue(process_id)
            values.ValueClass._wsgistack = True
    elif app.config.get("METRICS"):
        registry = CollectorRegistry()
    else:
        return
    timeout = app.config.get("REQUEST_TIMEOUT") or os.environ.get("REQUEST_TIMEOUT") or 30
    metrics = AppMetrics(registry, float(timeout))
    app.extensions["metrics"] = metrics
    app.url_value_preprocessor(_note_route)
    app.wsgi_app = MetricsMiddleware(app.wsgi_app, metrics)
