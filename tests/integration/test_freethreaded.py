"""The images on the CPython built from Debian's source package: their servers
really run without the GIL (or, in the control build, with it), and the app's
shared state stays exact when threads of one process run in parallel.

The images: ``freethreaded`` (CPython built with --disable-gil; granian and
gunicorn gthread), ``apache-freethreaded`` (mod_wsgi 6 on the same interpreter,
WSGIFreeThreading On) and ``gil`` (the control: the same source, flags and
servers, with the GIL). Each server is run with ``docker run``, one process of
8 threads, with no healthcheck: nothing but the test sends a request, so the
per-process request counter must come out exact.

The request hammer alone cannot tell a broken counter from a sound one: one
``+= 1`` per millisecond-long request races too rarely (without the lock it
still counted 2000 of 2000, twice). So the counter is also hammered directly,
8 threads in parallel on the image's interpreter: without its lock that lost
618 191 of 800 000 increments; with it, none.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.integration.compose import IMAGES, build_images, docker, engine_problem
from wsgistack.runner import http_get
from wsgistack.wait import wait_until

# the CPython the image was built from (compose.yaml's PYTHON_FT_VERSION)
PYTHON_FT_VERSION = os.environ.get("PYTHON_FT_VERSION", "3.13")
GUNICORN = ["gunicorn", "--config", "/srv/deploy/gunicorn/gunicorn.conf.py"]


@dataclass(frozen=True)
class Server:
    image: str  # the Dockerfile target (compose.IMAGES)
    command: list[str] | None  # None: the image's CMD
    port: int
    # what /info's gil_enabled must say
    gil_enabled: bool
    env: tuple[str, ...] = ()


# the servers on the built interpreters, and how each is started
SERVERS = {
    "granian": Server("freethreaded", None, 8085, gil_enabled=False),
    "gunicorn": Server("freethreaded", GUNICORN, 8085, gil_enabled=False),
    "apache": Server("apache-freethreaded", None, 8081, gil_enabled=False),
    # the control build: the GIL on, the same servers
    "gil-granian": Server("gil", None, 8085, gil_enabled=True),
    "gil-gunicorn": Server("gil", GUNICORN, 8085, gil_enabled=True),
}
# mod_wsgi on the free-threaded interpreter without WSGIFreeThreading On: it
# starts Python with the GIL forced on (PyConfig.enable_gil = 1, mod_wsgi
# 6.1.1's wsgi_interp.c), so the directive, not the build, decides
APACHE_WITHOUT_DIRECTIVE = Server(
    "apache-freethreaded", None, 8081, gil_enabled=True, env=("MOD_WSGI_FREE_THREADING=0",)
)
THREADS = 8
# requests of the hammer, and the clients sending them at once (more than the
# server's threads, so every thread is busy all the time)
HAMMER_REQUESTS = 2000
HAMMER_CLIENTS = 24


def get_json(base_url: str, path: str) -> dict:
    status, body = http_get(base_url + path, timeout=30)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


@contextmanager
def serving(name: str, server: Server) -> Iterator[str]:
    """The server running in a container of its own, one process of THREADS
    threads; its base URL once the app answers."""
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    build_images()
    args = ["run", "--detach", "--read-only", "--tmpfs", "/tmp", "--no-healthcheck"]
    args += ["--env", "WSGI_PROCESSES=1", "--env", f"WSGI_THREADS={THREADS}"]
    for assignment in server.env:
        args += ["--env", assignment]
    args += ["--publish", f"127.0.0.1::{server.port}", IMAGES[server.image]]
    args += server.command or []
    container = docker(*args).stdout.strip()
    try:
        # "127.0.0.1:49153"
        address = docker("port", container, f"{server.port}/tcp").stdout.split()[0]
        base_url = f"http://127.0.0.1:{address.rsplit(':', 1)[1]}"

        def logs() -> str:
            tail = docker("logs", "--tail", "30", container, check=False)
            return tail.stdout + tail.stderr

        wait_until(
            lambda: http_get(base_url + "/up", timeout=2)[0] == 200,
            timeout=60,
            interval=0.3,
            what=f"{name} answering /up",
            ignore=(OSError,),
            detail=logs,
        )
        yield base_url
    finally:
        docker("rm", "--force", container, check=False)


@pytest.fixture(scope="module", params=sorted(SERVERS))
def ft_server(request) -> Iterator[tuple[str, Server]]:
    with serving(request.param, SERVERS[request.param]) as base_url:
        yield base_url, SERVERS[request.param]


def test_the_server_runs_with_the_gil_its_build_says(ft_server: tuple[str, Server]) -> None:
    base_url, server = ft_server
    info = get_json(base_url, "/info")
    # False, not missing, on the free-threaded builds: sys._is_gil_enabled()
    # exists and says no GIL. An extension module not declared free-threading
    # safe would turn it on; so would mod_wsgi without WSGIFreeThreading On.
    assert info["gil_enabled"] is server.gil_enabled, info
    assert info["python"].startswith(PYTHON_FT_VERSION + "."), info
    assert info["configured"] == {"processes": 1, "threads": THREADS}, info


def test_mod_wsgi_without_the_directive_keeps_the_gil_on() -> None:
    """WSGIFreeThreading is what turns the GIL off under mod_wsgi: the same
    image without it (MOD_WSGI_FREE_THREADING=0) serves with the GIL on."""
    with serving("apache without WSGIFreeThreading", APACHE_WITHOUT_DIRECTIVE) as base_url:
        info = get_json(base_url, "/info")
    assert info["gil_enabled"] is True, info


# the interpreter /opt/venv/bin/python runs: its version and configure arguments
INTERPRETER = (
    "import platform, sys, sysconfig; "
    "print(platform.python_version()); print(sys._is_gil_enabled()); "
    "print(sysconfig.get_config_var('CONFIG_ARGS'))"
)


def interpreter(image: str) -> tuple[str, str, list[str]]:
    out = docker(
        "run", "--rm", "--entrypoint", "/opt/venv/bin/python", IMAGES[image], "-c", INTERPRETER
    ).stdout
    version, gil, config_args = out.splitlines()
    return version, gil, shlex.split(config_args)


def test_the_gil_build_is_the_free_threaded_build_but_for_the_gil() -> None:
    """The control build's whole point: the same CPython, configured with the
    same arguments but --disable-gil, so that the benchmark's gil/freethreaded
    difference is free-threading's and nothing else's."""
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    build_images()
    ft = interpreter("freethreaded")
    gil = interpreter("gil")
    apache = interpreter("apache-freethreaded")
    assert ft[:2] == (ft[0], "False") and gil[:2] == (ft[0], "True"), (ft, gil)
    assert "--disable-gil" in ft[2], ft
    assert [arg for arg in ft[2] if arg != "--disable-gil"] == gil[2], (ft, gil)
    # mod_wsgi's image runs the very same interpreter
    assert apache == ft, (apache, ft)


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


def test_the_counter_holds_with_threads_running_in_parallel() -> None:
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    build_images()
    out = docker("run", "--rm", IMAGES["freethreaded"], "python", "-c", COUNTER_HAMMER).stdout
    gil, counted, expected = out.split()
    assert gil == "False"
    assert int(counted) == int(expected)


def test_the_request_counter_is_exact_under_a_hammer(ft_server: tuple[str, Server]) -> None:
    """Every request of a concurrent hammer counted once: the counter's lock
    holds with threads of one process running Python in parallel."""
    base_url, _ = ft_server
    before = get_json(base_url, "/info")

    def one(i: int) -> tuple[int, int]:
        # a little CPU each (about 1 ms), so that the threads overlap in Python code
        status, _ = http_get(base_url + f"/fib/sequence?n={200 + i % 50}", timeout=60)
        return status, i

    with ThreadPoolExecutor(HAMMER_CLIENTS) as pool:
        statuses = [status for status, _ in pool.map(one, range(HAMMER_REQUESTS))]
    after = get_json(base_url, "/info")

    assert statuses == [200] * HAMMER_REQUESTS
    assert after["pid"] == before["pid"], "one process served everything"
    # the hammer, plus the /info that reads the counter
    assert after["requests_served"] - before["requests_served"] == HAMMER_REQUESTS + 1
