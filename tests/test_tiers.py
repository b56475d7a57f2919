"""The tiers' rule (tests/conftest.py): the folder decides which tests are
``server`` tests, and a fast test cannot start a server."""

from __future__ import annotations

import re
import socketserver
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import may_run_in_fast_test

ROOT = Path(__file__).resolve().parents[1]


def test_the_fast_tier_holds_no_integration_test_and_every_other_test():
    # a hand-written marker anywhere would stop this collection (exit code 4)
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not server", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-3000:]
    fast = {line.split("::")[0] for line in listed.stdout.splitlines() if "::" in line}
    assert fast and not [path for path in fast if path.startswith("tests/integration/")]
    every_other = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if "integration" not in path.parts
    }
    assert fast == every_other
    selected, collected, deselected = map(
        int, re.search(r"(\d+)/(\d+) tests collected \((\d+) deselected\)", listed.stdout).groups()
    )
    assert selected + deselected == collected and deselected > 0


@pytest.mark.parametrize(
    "argv",
    [
        ["docker", "compose", "--profile", "uwsgi", "up", "--wait"],
        ["docker", "run", "--rm", "wsgistack-uwsgi"],
        ["/usr/sbin/nginx", "-p", "/tmp/run", "-c", "nginx.conf"],
        ["uwsgi", "--ini", "uwsgi.ini"],
        ["/usr/sbin/apache2", "-DFOREGROUND", "-f", "httpd.conf"],
        ["gunicorn", "app.wsgi:application"],
        [sys.executable, "-m", "wsgistack.cli", "up", "devserver"],
        [sys.executable, "-m", "locust", "--headless"],
        ["wrk", "http://127.0.0.1:8080/up"],
    ],
)
def test_a_fast_test_cannot_start_a_server(argv):
    assert not may_run_in_fast_test(argv)
    # refused before the program starts: none of these needs to be installed
    with pytest.raises(pytest.fail.Exception, match="is in the fast tier"):
        subprocess.run(argv, capture_output=True, timeout=5)


def test_a_fast_test_cannot_serve_in_process():
    refused = pytest.raises(pytest.fail.Exception, match=r"serves on \('127.0.0.1', \d+\)")
    server = socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
    with server, refused:
        server.serve_forever()


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/sbin/nginx", "-t", "-p", "/tmp/conf", "-c", "nginx.conf"],
        ["/usr/sbin/apache2", "-t", "-d", "/tmp/conf", "-f", "httpd.conf"],
        ["uwsgi", "--ini", "uwsgi.ini", "--get", "harakiri"],
        ["kubectl", "kustomize", "deploy/kubernetes/base"],
        ["docker", "compose", "--file", "compose.yaml", "--profile", "*", "config"],
        ["docker", "compose", "version"],
        ["/usr/bin/python3.11", "-m", "locust", "-f", "loadtests/fib.py", "--list"],
    ],
)
def test_the_checkers_may_run_in_a_fast_test(argv):
    assert may_run_in_fast_test(argv)
