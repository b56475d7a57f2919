"""The app's Prometheus metrics (app/metrics.py), in a registry of the app's
own (METRICS=True): what is counted, under which labels, and that no label
value comes from the client."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest, values
from prometheus_client.mmap_dict import MmapedDict

from app import create_app
from app import metrics as app_metrics
from app.metrics import ROUTE_KEY, UNMATCHED, AppMetrics, buckets


@pytest.fixture
def measured():
    app = create_app({"TESTING": True, "METRICS": True, "REQUEST_TIMEOUT": 30})
    return app, app.extensions["metrics"].registry


def value(registry, name: str, **labels) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_nothing_is_counted_unless_asked():
    assert "metrics" not in create_app({"TESTING": True}).extensions


def test_every_answer_is_counted_by_route_method_and_status(measured):
    app, registry = measured
    client = app.test_client()
    for n in range(5):
        assert client.get(f"/fib/{n}").status_code == 200
    assert client.get("/fib/-1").status_code in (400, 422)
    assert client.post("/up").status_code == 405
    assert client.get("/nowhere/at/all").status_code == 404
    total = "app_requests_total"
    assert value(registry, total, route="/fib/<n>", method="GET", status="200") == 5
    assert (
        sum(
            value(registry, total, route="/fib/<n>", method="GET", status=s) for s in ("400", "422")
        )
        == 1
    )
    assert value(registry, total, route=UNMATCHED, method="POST", status="405") == 1
    assert value(registry, total, route=UNMATCHED, method="GET", status="404") == 1
    assert value(registry, "app_request_duration_seconds_count", route="/fib/<n>") == 6
    assert value(registry, "app_request_cpu_seconds_total", route="/fib/<n>") > 0
    assert value(registry, "app_requests_in_flight") == 0


def test_a_request_refused_before_its_view_keeps_its_route(measured):
    app, registry = measured
    answer = app.test_client().get("/up?" + "x" * 2000)
    assert answer.status_code == 414
    assert value(registry, "app_requests_total", route="/up", method="GET", status="414") == 1


def test_labels_take_no_value_from_the_client(measured):
    """URLs, query strings, unknown methods and IDs: a bounded set of series."""
    app, registry = measured
    client = app.test_client()
    for i in range(300):
        client.get(f"/fib/{i}?id={i}", headers={"X-Request-ID": f"r{i}"})
        client.get(f"/nope/{i}")
        client.open(f"/up?{i}", method=f"M{i}")
    exposed = generate_latest(registry).decode()
    series = [line for line in exposed.splitlines() if line.startswith("app_requests_total{")]
    assert len(series) <= 6, series
    assert "M1" not in exposed and "/nope" not in exposed and "id=" not in exposed
    assert (
        value(registry, "app_requests_total", route=UNMATCHED, method="other", status="405") == 300
    )


def test_the_buckets_end_at_the_request_timeout_and_hold_its_half():
    assert buckets(30)[-1] == 30 and 15 in buckets(30)
    assert buckets(3) == (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 3.0)
    assert list(buckets(30)) == sorted(set(buckets(30)))


def test_an_exception_past_the_app_is_counted_as_a_failure(measured):
    app, registry = measured

    class RequestTimeout(BaseException):
        """What mod_wsgi 6 raises in a request past its request-timeout."""

    def boom(environ, start_response):
        raise RequestTimeout

    middleware = app.wsgi_app
    middleware.wsgi_app = boom
    with pytest.raises(RequestTimeout):
        middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/io"}, lambda *a: None)
    assert value(registry, "app_requests_total", route=UNMATCHED, method="GET", status="504") == 1
    assert value(registry, "app_requests_in_flight") == 0


# --- multiprocess mode: the writes to the worker's files ---------------------


def files_of(folder, pid: int) -> dict[str, dict[str, float]]:
    """Every value a process wrote, by file kind (counter, histogram, gauge_livesum)."""
    found = {}
    for path in folder.glob(f"*_{pid}.db"):
        kind = path.name.rsplit("_", 1)[0]
        found[kind] = {
            key: value for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))
        }
    return found


@pytest.fixture
def worker_files(tmp_path, monkeypatch):
    """AppMetrics of a made-up process PID, writing to tmp_path's files."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)

    def start(pid: int) -> AppMetrics:
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid))
        return AppMetrics(None, 3)

    return start


ANSWERS = [  # route, method, status, wall, cpu: every bucket, +Inf included
    ("/up", "GET", "200", 0.0001, 0.00005),
    ("/up", "GET", "200", 0.3, 0.0002),
    ("/fib/<n>", "GET", "422", 1.2, 0.001),
    ("/io", "GET", "504", 3.0, 0.0),
    ("/io", "GET", "504", 7.5, 0.01),
    (UNMATCHED, "other", "405", 0.002, 0.001),
]


def test_a_requests_writes_are_the_librarys_own(tmp_path, worker_files):
    """The writes of ``ended`` (one lock, straight to the files) leave the
    same values as prometheus_client's own Counter.inc, Histogram.observe and
    Gauge.inc/dec would: checked for the pinned library."""
    # one process after the other: a value is made (a label's child) with the
    # value class of the moment, which is the process's own
    fast = worker_files(101)
    assert fast._files is not None, "multiprocess mode takes the direct writes"
    for route, method, status, wall, cpu in ANSWERS:
        fast.started()
        fast.ended({"REQUEST_METHOD": method, ROUTE_KEY: route}, status, wall, cpu)
    fast.started()  # one still running
    library = worker_files(102)
    for route, method, status, wall, cpu in ANSWERS:
        library.in_flight.inc()
        library.in_flight.dec()
        library.requests.labels(route, method, status).inc()
        library.duration.labels(route).observe(wall)
        library.cpu.labels(route).inc(cpu)
    library.in_flight.inc()
    written, expected = files_of(tmp_path, 101), files_of(tmp_path, 102)
    assert set(written) == {"counter", "histogram", "gauge_livesum"}
    assert written == expected
    assert sum(v for k, v in written["counter"].items() if "app_requests_total" in k) == 6


def test_after_a_fork_the_writes_go_to_the_new_process_files(tmp_path, worker_files, monkeypatch):
    pid = {"value": 201}
    monkeypatch.setattr(app_metrics, "_pid", 201)
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid["value"]))
    metrics = AppMetrics(None, 3)
    environ = {"REQUEST_METHOD": "GET", ROUTE_KEY: "/up"}
    metrics.started()
    metrics.ended(environ, "200", 0.01, 0.001)
    # a fork: the child's pid, as the at-fork hook sets it
    pid["value"] = 202
    monkeypatch.setattr(app_metrics, "_pid", 202)
    for _ in range(3):
        metrics.started()
        metrics.ended(environ, "200", 0.01, 0.001)

    def answered(pid: int) -> float:
        counters = files_of(tmp_path, pid)["counter"]
        return sum(v for k, v in counters.items() if "app_requests_total" in k)

    # the parent's one request stays its own; the child counts from zero
    assert (answered(201), answered(202)) == (1, 3)
    assert files_of(tmp_path, 202)["gauge_livesum"] == {
        k: 0.0 for k in files_of(tmp_path, 202)["gauge_livesum"]
    }
