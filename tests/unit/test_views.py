"""Every endpoint with valid input: bodies, defaults, headers, timing."""

import json
import os
import platform
import re
import socket
import time

import pytest

from app import create_app
from app.fib import fib_doubling
from wsgistack import cpus

SERVER_TIMING = re.compile(r"app;dur=(\d+\.\d{3}), cpu;dur=(\d+\.\d{3})")


def server_timing(response):
    """Parse Server-Timing into (app_ms, cpu_ms)."""
    match = SERVER_TIMING.fullmatch(response.headers["Server-Timing"])
    assert match, response.headers["Server-Timing"]
    return float(match[1]), float(match[2])


@pytest.mark.parametrize("path", ["/up", "/livez", "/readyz"])
def test_health(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.content_type == "application/json"
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("method", ["doubling", "iterative", "naive"])
def test_fib_methods(client, method):
    response = client.get(f"/fib/10?method={method}")
    assert response.status_code == 200
    assert response.get_json() == {"n": 10, "method": method, "value": "55", "digits": 2}


def test_fib_defaults_to_doubling(client):
    body = client.get("/fib/10").get_json()
    assert list(body) == ["n", "method", "value", "digits"]
    assert body["method"] == "doubling"


@pytest.mark.parametrize("n, value", [(0, "0"), (1, "1"), (2, "1"), (93, "12200160415121876738")])
def test_fib_values_are_strings(client, n, value):
    body = client.get(f"/fib/{n}").get_json()
    assert body["value"] == value
    assert body["digits"] == len(value)


@pytest.mark.parametrize("method", ["doubling", "iterative"])
def test_fib_at_the_limit(client, method):
    body = client.get(f"/fib/20000?method={method}").get_json()
    assert body["digits"] == 4180
    assert body["value"] == str(fib_doubling(20000))


def test_fib_naive_at_the_limit(client):
    assert client.get("/fib/30?method=naive").get_json()["value"] == "832040"


def test_fib_leading_zeros(client):
    assert client.get("/fib/007").get_json()["n"] == 7
    assert client.get("/fib/" + "0" * 3000 + "12").get_json()["value"] == "144"


def test_fib_ignores_unknown_parameters(client):
    response = client.get("/fib/12?_=1712345&x=1&x=2")
    assert response.status_code == 200
    assert response.get_json()["value"] == "144"


def test_sequence(client):
    response = client.get("/fib/sequence?n=5")
    assert response.status_code == 200
    assert response.get_json() == {"n": 5, "values": ["0", "1", "1", "2", "3"]}


def test_sequence_route_wins_over_fib_n(client):
    # 'sequence' must never reach /fib/<n> and fail as a bad number
    assert client.get("/fib/sequence?n=1").get_json() == {"n": 1, "values": ["0"]}


def test_sequence_at_the_limit(client):
    values = client.get("/fib/sequence?n=2000").get_json()["values"]
    assert len(values) == 2000
    assert all(isinstance(v, str) for v in values)
    assert values[-1] == str(fib_doubling(1999))


def test_io_default(client):
    start = time.perf_counter()
    response = client.get("/io")
    elapsed_ms = (time.perf_counter() - start) * 1000
    body = response.get_json()
    assert body["ms"] == 100
    assert 100 <= body["slept_ms"] <= elapsed_ms
    app_ms, cpu_ms = server_timing(response)
    assert app_ms >= 100
    assert cpu_ms < app_ms  # sleeping costs no cpu


def test_io_zero(client):
    body = client.get("/io?ms=0").get_json()
    assert body["ms"] == 0
    assert body["slept_ms"] >= 0


def test_io_default_is_capped_by_limit():
    client = create_app({"IO_MAX_MS": 20}).test_client()
    assert client.get("/io").get_json()["ms"] == 20


def test_fanout_default_runs_concurrently(client):
    start = time.perf_counter()
    body = client.get("/fanout").get_json()
    elapsed_ms = (time.perf_counter() - start) * 1000
    assert body["calls"] == 8
    assert body["ms"] == 100
    assert body["pool_size"] == 16
    # 8 x 100 ms run in parallel: about 100 ms, nowhere near 800
    assert 100 <= body["elapsed_ms"] <= elapsed_ms < 400


def test_fanout_queues_when_calls_exceed_pool():
    client = create_app({"FANOUT_POOL_SIZE": 2}).test_client()
    body = client.get("/fanout?calls=6&ms=30").get_json()
    assert body["pool_size"] == 2
    # 6 calls on 2 threads run in three waves
    assert 90 <= body["elapsed_ms"] < 6 * 30


def test_fanout_max_calls(client):
    body = client.get("/fanout?calls=32&ms=20").get_json()
    assert body["calls"] == 32
    # two waves on 16 threads
    assert 40 <= body["elapsed_ms"] < 32 * 20


def test_info(client):
    body = client.get("/info").get_json()
    assert list(body) == [
        "hostname",
        "pid",
        "thread_id",
        "server_software",
        "python",
        "implementation",
        "gil_enabled",
        "configured",
        "cpus",
        "requests_served",
        "client",
        "request_id",
        "authorization",
    ]
    assert body["hostname"] == socket.gethostname()
    assert body["pid"] == os.getpid()
    assert isinstance(body["thread_id"], int)
    assert body["python"] == platform.python_version()
    assert body["implementation"] == platform.python_implementation()
    assert isinstance(body["gil_enabled"], bool)
    assert body["configured"] == {"processes": None, "threads": None}
    assert body["requests_served"] == 1
    assert body["client"] == {"address": "127.0.0.1", "scheme": "http"}
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert body["authorization"] is None


def test_info_reports_the_cpus_the_worker_default_follows(client):
    body = client.get("/info").get_json()["cpus"]
    assert set(body) == {"available", "quota", "quota_source", "affinity", "host"}
    assert body["available"] == cpus.available_cpus() >= 1
    assert body["host"] == os.cpu_count()


def test_info_names_the_authorization_scheme_never_the_credentials(client):
    body = client.get("/info", headers={"Authorization": "Bearer s3cret"}).get_json()
    assert body["authorization"] == "Bearer"
    assert "s3cret" not in json.dumps(body)


def test_info_server_software_and_configuration(monkeypatch):
    monkeypatch.setenv("WSGI_PROCESSES", "2")
    monkeypatch.setenv("WSGI_THREADS", "4")
    client = create_app().test_client()
    response = client.get("/info", environ_overrides={"SERVER_SOFTWARE": "gunicorn/23.0.0"})
    body = response.get_json()
    assert body["server_software"] == "gunicorn/23.0.0"
    assert body["configured"] == {"processes": 2, "threads": 4}


def test_info_counts_every_request(client):
    client.get("/up")
    client.get("/fib/5")
    client.get("/no-such-page")  # errors count too
    client.post("/up")
    assert client.get("/info").get_json()["requests_served"] == 5


def test_counter_is_per_app():
    first, second = create_app().test_client(), create_app().test_client()
    first.get("/up")
    assert second.get("/info").get_json()["requests_served"] == 1


@pytest.mark.parametrize(
    "method, url, status",
    [
        ("GET", "/up", 200),
        ("GET", "/fib/10", 200),
        ("GET", "/fib/sequence?n=3", 200),
        ("GET", "/io?ms=0", 200),
        ("GET", "/fanout?ms=0", 200),
        ("GET", "/info", 200),
        ("HEAD", "/up", 200),
        ("OPTIONS", "/up", 204),
        ("GET", "/fib/x", 400),
        ("GET", "/fib/99999", 422),
        ("GET", "/nowhere", 404),
        ("DELETE", "/up", 405),
        ("GET", "/up?" + "a" * 2000, 414),
    ],
)
def test_server_timing_on_every_response(client, method, url, status):
    response = client.open(url, method=method)
    assert response.status_code == status
    app_ms, cpu_ms = server_timing(response)
    assert app_ms >= 0
    assert cpu_ms >= 0
    assert response.headers.getlist("Server-Timing") == [response.headers["Server-Timing"]]
    assert "Server" not in response.headers


def test_server_timing_measures_cpu(client):
    app_ms, cpu_ms = server_timing(client.get("/fib/27?method=naive"))
    # pure cpu work: the two figures are close and clearly above zero
    assert cpu_ms > 1
    assert cpu_ms <= app_ms * 1.1 + 1


@pytest.mark.parametrize("url", ["/up", "/fib/10", "/fib/sequence?n=3", "/io?ms=0", "/info"])
def test_head(client, url):
    get, head = client.get(url), client.head(url)
    assert head.status_code == 200
    assert head.data == b""
    assert head.content_type == get.content_type


def test_options(client):
    response = client.options("/fib/10")
    assert response.status_code == 204
    assert response.data == b""
    assert "Content-Type" not in response.headers
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
