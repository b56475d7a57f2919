"""The behaviour suite's stacks, and which behaviours each one must show.

Declared here and nowhere else: a test marked ``@pytest.mark.behaviour("x")``
runs against every stack whose set below holds "x". A stack that lacks a
behaviour is not skipped, it is simply not asked.
"""

from __future__ import annotations

import pytest

from tests.integration.targets import make_target

# the behaviours a production stack behind a proxy shows
PROXIED = {
    "endpoints",  # every endpoint answers correctly, Server-Timing intact
    "hardened_headers",  # no server version leaked, security headers present
    "concurrency",  # processes x threads are real
    # a request past REQUEST_TIMEOUT gets a JSON 504 within REQUEST_TIMEOUT + 2 s,
    # idle and while other requests go on (none of which fails), its slot freed
    "request_timeout",
    "overload",  # far too many requests get fast JSON 503/502s, none hangs
    "bad_input",  # the app's bad parameters get 4xx JSON through the server
    "proxy_limits",  # malformed lines, huge headers/bodies, unknown Host, slow clients
    "graceful_stop",  # SIGTERM lets in-flight and queued requests finish
    "graceful_reload",  # a reload under steady traffic loses no request
}

# nginx + uWSGI shows more: what nginx admits fits uWSGI's buffer, a crashed
# worker is a 502 (not a 504), and one client address cannot take every slot
NGINX_UWSGI = PROXIED | {"header_limits", "crash_is_502", "client_fairness"}

# what a compose stack shows: a reload is an orchestrator's job there (new
# containers), not a signal to a running one; every host client reaches the
# proxy from Docker's proxy address, so fairness per client cannot show
CONTAINERIZED = PROXIED - {"graceful_reload"}

# gunicorn alone has no proxy in front: no per-request timeout (its gthread
# `timeout` is a worker heartbeat), no overload shedding, no Host check, no body
# limit, no slow-client defence, no security headers (deploy/gunicorn/)
GUNICORN = {"endpoints", "concurrency", "bad_input", "graceful_stop", "graceful_reload"}

# granian alone, like gunicorn: no proxy in front, so no per-request timeout,
# no overload shedding, no Host check, no body limit, no slow-body defence, no
# security headers; and a stop finishes the requests in flight but resets the
# connections still queued in the kernel's backlog (deploy/granian/serve.py)
GRANIAN = {"endpoints", "concurrency", "bad_input", "graceful_reload"}

BEHAVIOURS: dict[str, set[str]] = {
    "uwsgi": NGINX_UWSGI,
    # uWSGI with threads: harakiri is one deadline per worker, re-armed by every
    # request, so under traffic a stuck request is cut by nginx's read timeout
    # (REQUEST_TIMEOUT + 5) instead: what the suite asserts for it
    "uwsgi-threads": {"request_timeout_at_proxy"},
    "apache": PROXIED,
    "gunicorn": GUNICORN,
    "docker-uwsgi": CONTAINERIZED | {"header_limits", "follows_recreated_app"},
    "docker-apache": CONTAINERIZED,
    "docker-gunicorn": GUNICORN - {"graceful_reload"},
    "granian": GRANIAN,
    "docker-granian": GRANIAN - {"graceful_reload"},
    # granian on free-threaded CPython: its workers are threads of one process,
    # so the one-pid-per-process check of "concurrency" cannot show there
    "docker-freethreaded": GRANIAN - {"graceful_reload", "concurrency"},
    # the development server is a baseline for comparison, not for production
    "devserver": {"endpoints"},
}


# settings a stack needs beyond the suite's (targets.SUITE_SETTINGS)
STACK_SETTINGS: dict[str, dict[str, int]] = {
    "devserver": {"WSGI_PROCESSES": 1, "WSGI_THREADS": 1},
    # uWSGI's default shape: processes of one thread each (deploy/uwsgi/)
    "uwsgi": {"WSGI_PROCESSES": 6, "WSGI_THREADS": 1},
    "docker-uwsgi": {"WSGI_PROCESSES": 6, "WSGI_THREADS": 1},
    "uwsgi-threads": {"WSGI_PROCESSES": 2, "WSGI_THREADS": 4},
}


def stacks_with(behaviour: str) -> list[str]:
    return [stack for stack, behaviours in BEHAVIOURS.items() if behaviour in behaviours]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "behaviour(name): a behaviour of the suite, run on every stack that declares it"
    )


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("behaviour")
    if marker is None:
        return
    name = marker.args[0]
    fixture = "fresh_stack" if "fresh_stack" in metafunc.fixturenames else "stack"
    metafunc.parametrize(fixture, stacks_with(name), indirect=True, scope=None)


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("behaviour") is not None:
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def _running_stacks(tmp_path_factory):
    """One running instance per stack, shared by the tests that do not stop it;
    a stack that failed to start is remembered, not started again per test."""
    started: dict = {}
    yield started, tmp_path_factory.mktemp("stack-logs")
    for target in started.values():
        if not isinstance(target, BaseException):
            target.stop()


@pytest.fixture
def stack(request, _running_stacks):
    """The stack under test, started once per session and left running."""
    started, logs = _running_stacks
    name = request.param
    if name not in started:
        target = make_target(name, logs / f"{name}.log", STACK_SETTINGS.get(name, {}))
        try:
            started[name] = target.start()
        except BaseException as exc:
            started[name] = exc
            target.stop()
            raise
    target = started[name]
    if isinstance(target, pytest.skip.Exception):
        pytest.skip(str(target))
    if isinstance(target, BaseException):
        pytest.fail(f"{name} did not start (see the first test that used it): {target}")
    target.wait_ready()
    return target


@pytest.fixture
def fresh_stack(request, tmp_path):
    """A stack of its own, for tests that stop it."""
    name = request.param
    target = make_target(name, tmp_path / f"{name}.log", STACK_SETTINGS.get(name, {}))
    try:
        yield target.start()
    finally:
        target.stop()
