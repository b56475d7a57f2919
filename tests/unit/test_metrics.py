"""The app's Prometheus metrics (app/metrics.py), in a registry of the app's
own (METRICS=True): what is counted, under which labels, and that no label
value comes from the client."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from app import create_app
from app.metrics import UNMATCHED, buckets


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
