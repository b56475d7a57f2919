"""The server tier's machinery.

- The behaviour suite: a test marked ``@pytest.mark.behaviour("x")`` runs
  against every stack that declares "x" in tests/integration/guarantees.py,
  started once per session (or fresh, for the tests that stop it).
- The order: the tests that need the images run after the native ones, and
  the image build starts in the background as soon as the collection is done,
  so that it overlaps the native tests instead of preceding them (on a fresh
  machine it is the CPython builds' 10 minutes).
"""

from __future__ import annotations

import pytest

from tests.integration import compose
from tests.integration.guarantees import BEHAVIOURS, STACK_SETTINGS
from tests.integration.targets import make_target


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


# the modules whose every test runs containers of the project's images; any
# other test does when one of its parameters is a compose stack ("docker-...")
IMAGE_MODULES = {
    "test_containers",
    "test_copied_defaults",
    "test_freethreaded",
    "test_swarm",
    "test_kubernetes_pod",
    "test_bench_interpreter_images",
    "test_jobs",
    "test_metrics",
}
# the modules whose every test runs an image on CPython built from source;
# any other test does when a parameter names one (compose.CPYTHON_NAMES)
CPYTHON_MODULES = {"test_freethreaded", "test_bench_interpreter_images"}


def _module(item) -> str:
    module = getattr(item, "module", None)
    return module.__name__.rpartition(".")[2] if module is not None else ""


def _params_by_name(item) -> dict:
    callspec = getattr(item, "callspec", None)
    return callspec.params if callspec else {}


def _params(item) -> list:
    return [v for v in _params_by_name(item).values() if isinstance(v, str)]


def images_needed(item) -> int:
    """0: no image; 1: images on Debian's python3; 2: a CPython-from-source one too."""
    if _module(item) in CPYTHON_MODULES or compose.CPYTHON_NAMES & set(_params(item)):
        return 2
    if _module(item) in IMAGE_MODULES or any(v.startswith("docker-") for v in _params(item)):
        return 1
    return 0


# the shared stacks (the `stack` fixture), by name: the node ID of the last
# test in the session's order that uses each
_last_use: dict[str, str] = {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """The native tests first, then the container tests, those of the images on
    CPython from source last: the build's long part runs meanwhile (a stable
    sort: each group keeps pytest's order). Then the last test of each shared
    stack, which stops it (the `stack` fixture)."""
    items.sort(key=images_needed)
    _last_use.clear()
    for item in items:
        name = _params_by_name(item).get("stack")
        # `_running_stacks`: this file's `stack`, not a module's own of that name
        if name is not None and "_running_stacks" in item.fixturenames:
            _last_use[name] = item.nodeid


def pytest_collection_finish(session):
    # only the order of the tests depends on images_needed: a container test
    # it misses still waits for the build in compose.build_images()
    if session.config.option.collectonly:
        return
    if any(images_needed(item) for item in session.items):
        compose.start_building_images()


def pytest_sessionfinish(session):
    compose.stop_building_images()


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
    """The stack under test, started once per session and left running until
    the last test that uses it is done. A stack left running idles at a cost:
    Docker runs a container's healthcheck every HEALTHCHECK_INTERVAL (2 s in
    the tests), a process in the container each time; 7 idle containers took
    a fifth of the 2 cores (docs/tests.md)."""
    started, logs = _running_stacks
    name = request.param
    if _last_use.get(name) == request.node.nodeid:
        request.addfinalizer(lambda: _retire(started, name))
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


def _retire(started: dict, name: str) -> None:
    """Stop a shared stack; a test that asks for it later starts it again."""
    target = started.pop(name, None)
    if target is not None and not isinstance(target, BaseException):
        target.stop()


@pytest.fixture
def fresh_stack(request, tmp_path):
    """A stack of its own, for tests that stop it."""
    name = request.param
    target = make_target(name, tmp_path / f"{name}.log", STACK_SETTINGS.get(name, {}))
    try:
        yield target.start()
    finally:
        target.stop()
