"""The behaviour suite: what every stack must do under load and faults, checked
over HTTP against real servers on 127.0.0.1. Which stack must show which
behaviour is declared once, in conftest.py.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from tests.integration.http import (
    concurrently,
    parse_raw,
    raw,
    request,
    server_timing,
)


def fib_reference(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def worker_pids(stack) -> set[int]:
    """The worker processes, seen by filling every slot with a slow request."""
    answers = concurrently(stack.base_url, ["/io?ms=300"] * stack.slots)
    assert all(not isinstance(a, Exception) and a.status == 200 for a in answers), answers
    return {a.json["pid"] for a in answers}


def wait_for_all_workers(stack, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(worker_pids(stack)) == stack.settings.WSGI_PROCESSES:
            return True
    return False


# --- 1. endpoints -----------------------------------------------------------


@pytest.mark.behaviour("endpoints")
@pytest.mark.parametrize("n", [0, 1, 2, 10, 93, 94, 1000, 20000])
@pytest.mark.parametrize("method", ["doubling", "iterative"])
def test_fib_values_are_exact(stack, n, method):
    answer = request(stack.base_url, f"/fib/{n}?method={method}")
    assert answer.status == 200
    assert answer.json["value"] == str(fib_reference(n))


@pytest.mark.behaviour("endpoints")
def test_every_endpoint_answers(stack):
    naive = request(stack.base_url, "/fib/20?method=naive")
    assert naive.status == 200 and naive.json["value"] == str(fib_reference(20))

    sequence = request(stack.base_url, "/fib/sequence?n=1000")
    assert sequence.status == 200
    assert sequence.json["values"] == [str(fib_reference(i)) for i in range(1000)]

    io = request(stack.base_url, "/io?ms=50")
    assert io.status == 200 and io.json["slept_ms"] >= 50 and io.elapsed >= 0.05

    fanout = request(stack.base_url, "/fanout?calls=8&ms=200")
    assert fanout.status == 200 and fanout.json["calls"] == 8
    # concurrent on the pool: about one call's time, far from 8 x 200 ms
    assert fanout.elapsed < 0.8

    up = request(stack.base_url, "/up")
    assert up.status == 200 and up.json == {"status": "ok"}

    info = request(stack.base_url, "/info").json
    assert info["configured"] == {
        "processes": stack.settings.WSGI_PROCESSES,
        "threads": stack.settings.WSGI_THREADS,
    }
    assert info["requests_served"] >= 1


@pytest.mark.behaviour("endpoints")
@pytest.mark.parametrize("path", ["/up", "/fib/30", "/io?ms=20", "/fib/-1", "/nowhere"])
def test_server_timing_survives_the_server(stack, path):
    answer = request(stack.base_url, path)
    metrics = server_timing(answer.headers["Server-Timing"])
    assert set(metrics) == {"app", "cpu"}
    assert 0 <= metrics["app"] <= answer.elapsed * 1000
    if path.startswith("/io"):
        assert metrics["app"] >= 20


# --- hardened headers -------------------------------------------------------

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.mark.behaviour("hardened_headers")
@pytest.mark.parametrize("path", ["/fib/10", "/nowhere", "/fib/x"])
def test_no_version_leaks_and_security_headers_are_set(stack, path):
    answer = request(stack.base_url, path)
    server = answer.headers.get("Server", "")
    assert not re.search(r"\d", server), f"version leaked: Server: {server}"
    assert "X-Powered-By" not in answer.headers
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, name
    assert "default-src 'none'" in answer.headers.get("Content-Security-Policy", "")


# --- 2. processes x threads -------------------------------------------------


@pytest.mark.behaviour("concurrency")
def test_processes_and_threads_are_real(stack):
    # one second per request: long against the noise of a shared 2-core machine
    start = time.monotonic()
    answers = concurrently(stack.base_url, ["/io?ms=1000"] * stack.slots)
    elapsed = time.monotonic() - start
    assert all(not isinstance(a, Exception) and a.status == 200 for a in answers), answers
    pids = {a.json["pid"] for a in answers}
    assert len(pids) == stack.settings.WSGI_PROCESSES, pids
    # every slot served one at once: well under the two rounds (2 s) of any less
    assert elapsed < 1.6, f"{stack.slots} concurrent 1 s requests took {elapsed:.2f} s"


# --- 3. request timeout -----------------------------------------------------


@pytest.mark.behaviour("request_timeout")
def test_a_request_past_the_timeout_gets_a_json_504_in_time(stack):
    timeout = stack.settings.REQUEST_TIMEOUT
    answer = request(stack.base_url, f"/io?ms={timeout * 3000}", timeout=timeout * 4)
    assert answer.status in (503, 504)
    assert answer.is_problem(), answer.body
    # the app server's own kill fires first (within a second of its timer),
    # before the proxy's timeout
    assert timeout - 0.5 <= answer.elapsed <= stack.settings.PROXY_TIMEOUT + 1
    # the worker comes back (respawned, its app loaded again): every process serves
    assert wait_for_all_workers(stack)


# --- 4. overload ------------------------------------------------------------


@pytest.mark.behaviour("overload")
def test_overload_is_refused_fast_and_the_stack_recovers(stack):
    capacity = stack.slots + stack.settings.LISTEN_BACKLOG
    flood = capacity * 5
    answers = concurrently(stack.base_url, ["/io?ms=1000"] * flood, timeout=30)
    errors = [a for a in answers if isinstance(a, Exception)]
    assert not errors, errors[:3]
    statuses = sorted({a.status for a in answers})
    assert set(statuses) <= {200, 502, 503}, statuses
    refused = [a for a in answers if a.status != 200]
    # far beyond capacity: some must be refused, and refusals come fast
    assert refused, "no request was refused"
    assert all(a.is_problem() for a in refused), refused[0].body
    assert max(a.elapsed for a in refused) < 1.0
    # nothing hangs past the timeout
    assert max(a.elapsed for a in answers) < stack.settings.PROXY_TIMEOUT + 1
    # and afterwards the stack serves normally
    assert request(stack.base_url, "/fib/10").status == 200
    assert wait_for_all_workers(stack)


# --- 5. bad input -----------------------------------------------------------

BAD_PARAMETERS = [
    ("/fib/-1", 400),
    ("/fib/abc", 400),
    ("/fib/1.5", 400),
    (f"/fib/{'9' * 5000}", 422),
    ("/fib/10?method=quantum", 400),
    ("/fib/sequence", 400),
    ("/fib/sequence?n=1&n=2", 400),
    ("/fib/sequence?n=999999", 422),
    ("/io?ms=-5", 400),
    ("/fanout?calls=0", 422),
    ("/nowhere", 404),
    ("/io?" + "x=1&" * 400, 414),
]


@pytest.mark.behaviour("bad_input")
@pytest.mark.parametrize(("path", "status"), BAD_PARAMETERS)
def test_bad_parameters_get_json_4xx(stack, path, status):
    answer = request(stack.base_url, path)
    assert answer.status == status
    assert answer.is_problem(status), answer.body[:200]


@pytest.mark.behaviour("bad_input")
def test_wrong_method_gets_json_405(stack):
    answer = request(stack.base_url, "/fib/10", method="DELETE")
    assert answer.status == 405 and answer.is_problem(405)
    assert "GET" in answer.headers["Allow"]


@pytest.mark.behaviour("proxy_limits")
def test_bad_requests_are_refused_by_the_server_and_no_worker_dies(stack):
    before = worker_pids(stack)
    base = stack.base_url
    host = urlsplit(base).netloc

    # a malformed request line
    status, headers, _ = parse_raw(raw(base, b"GARBAGE\r\n\r\n"))
    assert 400 <= status < 500
    # an oversized header
    answer = request(base, "/up", headers={"X-Big": "a" * 20000})
    assert 400 <= answer.status < 500 and answer.is_problem(), answer.body[:200]
    # an oversized body
    too_big = b"x" * (stack.settings.MAX_BODY_BYTES + 1)
    answer = request(base, "/io", method="POST", body=too_big)
    assert answer.status == 413 and answer.is_problem(413), answer.body[:200]
    # an unknown Host
    answer = request(base, "/fib/10", headers={"Host": "evil.example"})
    assert 400 <= answer.status < 500 and answer.is_problem(), answer.body[:200]
    # a request with a Host we serve still works
    assert request(base, "/fib/10", headers={"Host": host}).status == 200

    assert worker_pids(stack) == before, "a worker died"


@pytest.mark.behaviour("proxy_limits")
def test_a_slow_client_is_cut_off(stack):
    """A client trickling its headers byte by byte is dropped after the client
    timeout, and meanwhile the stack serves everyone else."""
    url = urlsplit(stack.base_url)
    limit = stack.settings.CLIENT_TIMEOUT
    trickle = b"GET /up HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    start = time.monotonic()
    cut_off = None
    with socket.create_connection((url.hostname, url.port), timeout=0.3) as sock:
        for sent, byte in enumerate(trickle):
            if time.monotonic() - start > limit + 8:
                break
            if sent % 5 == 0:
                assert request(stack.base_url, "/up", timeout=5).status == 200
            try:
                sock.sendall(bytes([byte]))
                sock.recv(4096)  # a 408 or the end of the stream: cut off
            except TimeoutError:
                continue  # still connected and nothing said: keep trickling
            except OSError:
                pass  # reset: cut off
            cut_off = time.monotonic() - start
            break
    assert cut_off is not None, "the slow client was never cut off"
    assert cut_off <= limit + 3, f"cut off after {cut_off:.1f} s, limit {limit} s"


# --- 6. graceful stop -------------------------------------------------------


@pytest.mark.behaviour("graceful_stop")
def test_sigterm_lets_in_flight_requests_finish(fresh_stack):
    results: list = []

    def slow_request():
        try:
            results.append(request(fresh_stack.base_url, "/io?ms=2000", timeout=15))
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results.append(exc)

    threads = [threading.Thread(target=slow_request) for _ in range(fresh_stack.slots // 2)]
    for thread in threads:
        thread.start()
    time.sleep(0.7)  # let them reach the app
    start = time.monotonic()
    fresh_stack.terminate()
    for thread in threads:
        thread.join(timeout=20)
    code = fresh_stack.wait_exit(fresh_stack.settings.STOP_GRACE_PERIOD)
    stopped_after = time.monotonic() - start

    assert [getattr(r, "status", r) for r in results] == [200] * len(threads)
    assert code == 0, fresh_stack.log_tail()
    assert stopped_after < fresh_stack.settings.STOP_GRACE_PERIOD
    with pytest.raises(OSError):
        request(fresh_stack.base_url, "/up", timeout=2)


# --- 7. zero-downtime reload -----------------------------------------------


@pytest.mark.behaviour("graceful_reload")
def test_reload_under_steady_traffic_loses_nothing(stack):
    before = worker_pids(stack)
    stop = threading.Event()
    outcomes: list = []

    def client():
        while not stop.is_set():
            try:
                outcomes.append(request(stack.base_url, "/io?ms=50", timeout=10).status)
            except Exception as exc:  # noqa: BLE001 - a lost request is the failure
                outcomes.append(exc)

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(1)
    stack.reload()
    # a chain reload restarts workers one by one; allow them time
    time.sleep(6)
    stop.set()
    for thread in clients:
        thread.join(timeout=15)

    lost = [o for o in outcomes if o != 200]
    assert len(outcomes) > 100
    assert not lost, f"{len(lost)} of {len(outcomes)} requests lost: {lost[:5]}"
    # the reload really happened: new worker processes serve
    assert worker_pids(stack).isdisjoint(before)
