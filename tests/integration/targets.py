"""The stacks under test, behind one small interface, so the behaviour suite is
written once for every stack: native ones started with ``wsgistack up`` (the
command a person runs), and later the compose stacks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wsgistack.runner import check_binaries, check_system_python, find_free_port, http_get
from wsgistack.settings import Settings
from wsgistack.stacks import StackError, get_stack

# small numbers, so timeouts, overload and slow clients show within seconds
SUITE_SETTINGS = {
    "WSGI_PROCESSES": 2,
    "WSGI_THREADS": 4,
    "REQUEST_TIMEOUT": 3,
    "LISTEN_BACKLOG": 16,
    "CLIENT_TIMEOUT": 2,
    "MAX_BODY_BYTES": 65536,
    "MAX_REQUESTS": 0,
}
# let the app accept sleeps past the request timeout, to test the timeout
SUITE_APP_ENV = {"FLASK_IO_MAX_MS": "60000"}


@dataclass
class NativeTarget:
    """A stack run by ``wsgistack up STACK`` in a subprocess."""

    stack: str
    log_path: Path
    overrides: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        port = find_free_port()
        self.settings = Settings.from_env({}, **{**SUITE_SETTINGS, **self.overrides}, PORT=port)
        self.base_url = f"http://127.0.0.1:{port}"

    @property
    def slots(self) -> int:
        return self.settings.WORKER_SLOTS

    def start(self) -> NativeTarget:
        spec = get_stack(self.stack)
        try:
            check_binaries(spec)
            check_system_python(spec)
        except StackError as exc:
            pytest.skip(str(exc))
        env = {**os.environ, **self.settings.as_env(), **SUITE_APP_ENV}
        env.pop("RUN_DIR", None)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        argv = [sys.executable, "-m", "wsgistack.cli", "up", self.stack]
        argv += ["--port", str(self.settings.PORT)]
        argv += ["--processes", str(self.settings.WSGI_PROCESSES)]
        argv += ["--threads", str(self.settings.WSGI_THREADS)]
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"wsgistack up {self.stack} exited:\n{self.log_tail()}")
            try:
                if http_get(self.base_url + "/up", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.stack} not ready after {timeout} s:\n{self.log_tail()}")

    def reload(self) -> None:
        """What an operator does to roll out a new release: SIGHUP to the supervisor."""
        self.proc.send_signal(signal.SIGHUP)

    def terminate(self) -> None:
        """What Docker, systemd or Ctrl-C do: SIGTERM, then wait for a graceful exit."""
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.terminate()
            if self.wait_exit(self.settings.STOP_GRACE_PERIOD + 5) is None:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
