"""Suite-wide rules: the two tiers, and what CI makes of a skip.

The tier of a test is its folder, never a decorator:

- ``tests/integration/``: every test there starts a server (natively, in-process
  or in a container), talks to a Docker engine or builds an image; this file
  marks each one ``server``. ``make test`` runs them after the fast tier.
- everywhere else, the fast tier (``make test-fast``, ``-m "not server"``): the
  app in-process, the wsgistack package, the rendered configs and lint. A config
  check that runs a server's own binary in its checking mode (``nginx -t``,
  ``apache2 -t``, ``uwsgi --get``, ``kubectl kustomize``, ``docker compose
  config``) is fast: it starts nothing and needs no network or engine.

Enforced, not remembered: a hand-written ``server`` marker stops the collection
(move the test instead), and while a fast test runs (its fixtures included) an
audit hook refuses to start any program but the checkers of ``FAST_PROGRAMS``,
and socketserver refuses to serve. tests/test_tiers.py tests the rule.

In CI (``CI`` set, as ``.ci/run`` does) a skipped test counts as a failure: CI
runs on a machine where ``make test`` installed every server, tool and the
Docker engine, so a skip there means something is missing. On a developer's
machine a test whose server or tool is missing skips, saying what installs it.
"""

from __future__ import annotations

import os
import re
import shlex
import socketserver
import sys
from pathlib import Path

import pytest

SERVER_TESTS = Path(__file__).resolve().parent / "integration"

# What a fast test may run: tools that check or render files and start nothing.
# A program, and the arguments of which it needs one (None: any).
FAST_PROGRAMS: dict[str, set[str] | None] = {
    "ruff": None,
    "shellcheck": None,
    "hadolint": None,
    "gixy": None,  # a static analyser of nginx configs
    "openssl": None,  # the test certificates
    "kubectl": {"kustomize"},
    "nginx": {"-t", "-v", "-V"},  # check the config; print the version
    "apache2": {"-t", "-v", "-V"},
    "uwsgi": {"--get", "--version"},  # an option's value as strict mode parses the config
    "docker": {"config", "version"},  # `docker compose config`, `docker stack config`: no engine
    "python": {"--list", "--collect-only"},  # Locust listing its users, pytest its tests
    "git": {"ls-files"},  # the tracked files, for the docs' layout check
    "promtool": {"check", "test"},  # Prometheus' config checker and rule unit tests
    # fontconfig's font list: matplotlib asks it once per machine, when it builds
    # its font cache on the first chart (~/.cache/matplotlib)
    "fc-list": None,
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def may_run_in_fast_test(argv: list[str]) -> bool:
    """Whether a fast test may start this command line (FAST_PROGRAMS)."""
    program = Path(argv[0]).name
    if re.fullmatch(r"python[\d.]*", program):
        program = "python"  # python3, python3.11
    if program not in FAST_PROGRAMS:
        return False
    needed = FAST_PROGRAMS[program]
    return needed is None or not needed.isdisjoint(argv[1:])


# the fast test running now (its node id), None during a server test
_fast_test: str | None = None


def _refuse(what: str) -> None:
    pytest.fail(
        f"{_fast_test} {what}, but it is in the fast tier: a test that starts a server "
        "goes in tests/integration/ (a checker that starts nothing: tests/conftest.py "
        "FAST_PROGRAMS)"
    )


def _audit(event: str, args: tuple) -> None:
    if event != "subprocess.Popen" or _fast_test is None:
        return
    executable, command = args[0], args[1]
    if isinstance(command, str | bytes):
        argv = shlex.split(os.fsdecode(command))
    else:
        argv = [os.fsdecode(part) for part in command or [executable]]
    if not may_run_in_fast_test(argv):
        _refuse(f"runs {shlex.join(argv)[:200]}")


sys.addaudithook(_audit)
_serve_forever = socketserver.BaseServer.serve_forever


def _serve_forever_unless_fast(self, *args, **kwargs):
    if _fast_test is not None:
        _refuse(f"serves on {self.server_address}")
    return _serve_forever(self, *args, **kwargs)


socketserver.BaseServer.serve_forever = _serve_forever_unless_fast


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    # first: `-m server` and `-m "not server"` select on what this sets
    for item in items:
        if item.get_closest_marker("server") is not None:
            raise pytest.UsageError(
                f"{item.nodeid}: a hand-written `server` marker. The tier of a test is "
                "its folder: one that starts a server goes in tests/integration/"
            )
        if SERVER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.server)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A fast test, its fixtures included, runs under the guard above."""
    global _fast_test
    _fast_test = None if item.get_closest_marker("server") else item.nodeid
    try:
        yield
    finally:
        _fast_test = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # an expected failure (xfail) is reported as skipped too: not a skip
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"a test skipped in CI, which counts as a failure: {reason}"
