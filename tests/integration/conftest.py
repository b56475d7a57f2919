"""The behaviour suite's machinery: a test marked ``@pytest.mark.behaviour("x")``
runs against every stack that declares "x" in tests/integration/guarantees.py,
started once per session (or fresh, for the tests that stop it).
"""

from __future__ import annotations

import pytest

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
