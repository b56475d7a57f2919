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
import struct
import threading
from bisect import bisect_left
from typing import Any

from flask import Flask
from flask.ctx import RequestContext
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

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
# where a request's route is left for the metrics (by RouteNotingContext)
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
    where the exporter reads the files instead of a registry. The app's
    Server-Timing middleware (app/timing.py) calls ``started`` and ``ended``
    around every request: it already holds the clocks and the status."""

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
        # multiprocess mode: a request's writes go straight to the values
        # (_FileWrites); else through the metrics' own methods
        self._files = _FileWrites(self) if registry is None and multiprocess() else None

    def child(self, metric, *labels: str):
        # labels() takes a lock and builds a tuple each time; the children
        # are few (bounded labels), so keep them
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children.setdefault(key, metric.labels(*labels))
        return found

    def started(self) -> None:
        """A request reached the app: one more in flight."""
        if self._files is not None:
            self._files.started()
        else:
            self.in_flight.inc()

    def ended(self, environ, status: str, wall: float, cpu: float) -> None:
        """A request's answer started (or it raised): count it, by the route
        the app noted (``RouteNotingContext``), its method and status (3 digits)."""
        route = environ.get(ROUTE_KEY, UNMATCHED)
        method = environ.get("REQUEST_METHOD", "")
        if method not in METHODS:
            method = "other"
        if self._files is not None:
            self._files.ended(route, method, status, wall, cpu)
            return
        self.in_flight.dec()
        self.child(self.requests, route, method, status).inc()
        self.child(self.duration, route).observe(wall)
        self.child(self.cpu, route).inc(cpu)


class _FileWrites:
    """The multiprocess mode's writes, cheaper than the metrics' own methods.

    prometheus_client 0.26's ``Counter.inc`` and ``Histogram.observe`` each
    check their arguments, then, per value written, take the library's lock,
    ask whether the process forked, look the value's key up in its file and
    pack the value into a new bytes object that is then copied into the
    file's mmap: six times per request here (docs/metrics.md). This writes
    the same values into the same places under one lock of its own, after
    one fork check, with each value's place in its file looked up once and
    the value packed straight into the mmap (``struct.pack_into``). It relies
    on MmapedValue's attributes (``_value``, ``_file``, ``_key``), MmapedDict's
    (``_m``, ``_positions``: a value keeps its place for the life of the
    file) and Histogram's (``_sum``, ``_buckets``): the pinned
    prometheus_client (requirements.txt), checked against the library's own
    writes by tests/unit/test_metrics.py. Nothing else in the process writes
    these values, so the library's lock is not needed for them. After a fork,
    the first request has the library reopen every value on the new
    process's files (``get``) and looks the places up again."""

    def __init__(self, metrics: AppMetrics) -> None:
        self.metrics = metrics
        self.lock = threading.Lock()
        self.bounds = metrics.duration._upper_bounds
        self._reset()

    def _reset(self) -> None:
        self.pid = process_id()
        self.in_flight = _Slot(self.metrics.in_flight._value)
        # per (route, method, status): the slots of the counter, the
        # histogram's sum and buckets, and the CPU counter
        self.cells: dict[tuple[str, str, str], tuple] = {}

    def _check_fork(self) -> None:
        if self.pid != _pid:
            with self.lock:
                if self.pid != _pid:
                    # the library reopens every value on this process's files
                    self.metrics.in_flight._value.get()
                    self._reset()

    def started(self) -> None:
        self._check_fork()
        slot = self.in_flight
        with self.lock:
            slot.add(1.0)

    def ended(self, route: str, method: str, status: str, wall: float, cpu: float) -> None:
        self._check_fork()
        key = (route, method, status)
        cells = self.cells.get(key)
        if cells is None:
            cells = self.cells.setdefault(key, self._cells(route, method, status))
        count, total, buckets, spent = cells
        # the first bucket the time fits in (wall <= its bound; the last
        # bound is +Inf), as Histogram.observe picks it; the exposition adds
        # them up
        bucket = buckets[bisect_left(self.bounds, wall)]
        with self.lock:
            self.in_flight.add(-1.0)
            count.add(1.0)
            total.add(wall)
            bucket.add(1.0)
            spent.add(cpu)

    def _cells(self, route: str, method: str, status: str) -> tuple:
        metrics = self.metrics
        histogram = metrics.child(metrics.duration, route)
        return (
            _Slot(metrics.child(metrics.requests, route, method, status)._value),
            _Slot(histogram._sum),
            tuple(_Slot(value) for value in histogram._buckets),
            _Slot(metrics.child(metrics.cpu, route)._value),
        )


_pack_into = struct.Struct("dd").pack_into


class _Slot:
    """One value's place in its process's file: what ``MmapedValue.inc``
    writes there (the value, then a timestamp of 0), without its lookups."""

    __slots__ = ("value", "file", "pos")

    def __init__(self, value) -> None:
        self.value = value
        self.file = value._file
        self.pos = value._file._positions[value._key]

    def add(self, amount: float) -> None:
        value = self.value
        value._value += amount
        # the file's mmap of the moment: a new key may have grown the file
        _pack_into(self.file._m, self.pos, value._value, 0.0)


class RouteNotingContext(RequestContext):
    """Flask's request context, which also leaves the URL rule that matched
    (or ``<unmatched>``) in the environ for the metrics. ``match_request`` is
    the hook Flask 3.1 documents for this ("Can be overridden by a subclass to
    hook into the matching of the request"); it runs as the context is
    pushed, before any before_request function (which may refuse the
    request: its route is kept). A URL value preprocessor did the same for 3
    to 4 us more per request: Flask calls it through its request proxies
    (docs/metrics.md)."""

    def match_request(self) -> None:
        super().match_request()
        rule = self.request.url_rule
        self.request.environ[ROUTE_KEY] = rule.rule if rule is not None else UNMATCHED


def init_app(app: Flask) -> AppMetrics | None:
    """Measure the app: in multiprocess mode under the servers, or into a
    registry of its own when the config says ``METRICS=True``; the metrics
    for the Server-Timing middleware to call (None: nothing is measured)."""
    if multiprocess():
        registry = None
        if not getattr(values.ValueClass, "_wsgistack", False):
            values.ValueClass = values.MultiProcessValue(process_id)
            values.ValueClass._wsgistack = True
    elif app.config.get("METRICS"):
        registry = CollectorRegistry()
    else:
        return None
    timeout = app.config.get("REQUEST_TIMEOUT") or os.environ.get("REQUEST_TIMEOUT") or 30
    metrics = AppMetrics(registry, float(timeout))
    app.extensions["metrics"] = metrics
    app.request_context_class = RouteNotingContext
    return metrics
