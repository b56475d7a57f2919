"""The free-threaded image: its servers really run without the GIL, and the
app's shared state stays exact when threads of one process run in parallel.

The image (the Dockerfile's ``freethreaded`` target, CPython built with
--disable-gil from Debian's source package) is run with ``docker run``, one
process of 8 threads, with no healthcheck: nothing but the test sends a
request, so the per-process request counter must come out exact.

The request hammer alone cannot tell a broken counter from a sound one: one
``+= 1`` per millisecond-long request races too rarely (without the lock it
still counted 2000 of 2000, twice). So the counter is also hammered directly,
8 threads in parallel on the image's interpreter: without its lock that lost
618 191 of 800 000 increments; with it, none.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.compose import IMAGES, build_images, docker, engine_problem
from wsgistack.runner import http_get

# the CPython the image was built from (compose.yaml's PYTHON_FT_VERSION)
PYTHON_FT_VERSION = os.environ.get("PYTHON_FT_VERSION", "3.13")
# the free-threaded servers and the command that starts each in the image
SERVERS = {
    "granian": None,  # the image's CMD
    "gunicorn": ["gunicorn", "--config", "/srv/deploy/gunicorn/gunicorn.conf.py"],
}
THREADS = 8
# requests of the hammer, and the clients sending them at once (more than the
# server's threads, so every thread is busy all the time)
HAMMER_REQUESTS = 2000
HAMMER_CLIENTS = 24


def get_json(base_url: str, path: str) -> dict:
    status, body = http_get(base_url + path, timeout=30)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


@pytest.fixture(scope="module", params=sorted(SERVERS))
def ft_server(request) -> Iterator[str]:
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    build_images()
    args = ["run", "--detach", "--read-only", "--tmpfs", "/tmp", "--no-healthcheck"]
    args += ["--env", "WSGI_PROCESSES=1", "--env", f"WSGI_THREADS={THREADS}"]
    args += ["--publish", "127.0.0.1::8085", IMAGES["freethreaded"]]
    args += SERVERS[request.param] or []
    container = docker(*args).stdout.strip()
    try:
        # "127.0.0.1:49153"
        address = docker("port", container, "8085/tcp").stdout.split()[0]
        base_url = f"http://127.0.0.1:{address.rsplit(':', 1)[1]}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_get(base_url + "/up", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                logs = docker("logs", "--tail", "30", container, check=False)
                pytest.fail(f"{request.param} not ready:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.3)
        yield base_url
    finally:
        docker("rm", "--force", container, check=False)


@pytest.mark.server
def test_the_server_runs_with_the_gil_off(ft_server: str) -> None:
    info = get_json(ft_server, "/info")
    # False, not missing: sys._is_gil_enabled() exists and says no GIL. An
    # extension module not declared free-threading safe would turn it on.
    assert info["gil_enabled"] is False, info
    assert info["python"].startswith(PYTHON_FT_VERSION + "."), info
    assert info["configured"] == {"processes": 1, "threads": THREADS}, info


# 8 threads increment one app.timing.RequestCounter 100 000 times each, at once
COUNTER_HAMMER = """
import sys, threading
from app.timing import RequestCounter
counter, threads, times = RequestCounter(), 8, 100_000
barrier = threading.Barrier(threads)
def hammer():
    barrier.wait()
    for _ in range(times):
        counter.increment()
pool = [threading.Thread(target=hammer) for _ in range(threads)]
for thread in pool:
    thread.start()
for thread in pool:
    thread.join()
print(sys._is_gil_enabled(), counter.value, threads * times)
"""


@pytest.mark.server
def test_the_counter_holds_with_threads_running_in_parallel() -> None:
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    build_images()
    out = docker("run", "--rm", IMAGES["freethreaded"], "python", "-c", COUNTER_HAMMER).stdout
    gil, counted, expected = out.split()
    assert gil == "False"
    assert int(counted) == int(expected)


@pytest.mark.server
def test_the_request_counter_is_exact_under_a_hammer(ft_server: str) -> None:
    """Every request of a concurrent hammer counted once: the counter's lock
    holds with threads of one process running Python in parallel."""
    before = get_json(ft_server, "/info")

    def one(i: int) -> tuple[int, int]:
        # a little CPU each (about 1 ms), so that the threads overlap in Python code
        status, _ = http_get(ft_server + f"/fib/sequence?n={200 + i % 50}", timeout=60)
        return status, i

    with ThreadPoolExecutor(HAMMER_CLIENTS) as pool:
        statuses = [status for status, _ in pool.map(one, range(HAMMER_REQUESTS))]
    after = get_json(ft_server, "/info")

    assert statuses == [200] * HAMMER_REQUESTS
    assert after["pid"] == before["pid"], "one process served everything"
    # the hammer, plus the /info that reads the counter
    assert after["requests_served"] - before["requests_served"] == HAMMER_REQUESTS + 1
