"""The stacks under test, behind one small interface, so the behaviour suite is
written once for every stack: native ones started with ``wsgistack up`` (the
command a person runs), and the compose profiles started with
``docker compose up --wait`` (what most users meet first).

Both expose: ``base_url``, ``settings``, ``slots``, ``start()``, ``wait_ready()``,
``reload()``, ``terminate()`` (a graceful stop, as an operator sends it),
``wait_exit(timeout)``, ``stop()`` and ``log_tail()``.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration import compose
from wsgistack.runner import check_binaries, check_system_python, find_free_port, http_get
from wsgistack.settings import Settings
from wsgistack.stacks import StackError, get_stack
from wsgistack.tls import make_certificate
from wsgistack.wait import wait_until

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
SUITE_KNOBS = set(SUITE_SETTINGS)
# let the app accept sleeps past the request timeout, to test the timeout
SUITE_APP_ENV = {"FLASK_IO_MAX_MS": "60000"}


@functools.cache
def test_pki() -> Path:
    """A certificate for localhost signed by a throwaway CA (``ca.pem``), made
    once per test session with the code `wsgistack up` uses, readable by the
    unprivileged user the servers run as."""
    folder = Path(tempfile.mkdtemp(prefix="wsgistack-test-pki-"))
    make_certificate("openssl", folder, folder / "cert.pem", folder / "key.pem")
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)  # a test key: the servers' user must read it
    return folder


def wait_for_up(
    base_url: str, name: str, timeout: float, alive, log_tail, path: str = "/readyz"
) -> None:
    """Poll ``path`` (the proxy's /readyz, or the app's READY_PATH where no
    proxy is in front) until it answers 200; ``alive()`` raises if the stack died."""

    def ready() -> bool:
        alive()
        return http_get(base_url + path, timeout=1)[0] == 200

    wait_until(
        ready,
        timeout=timeout,
        interval=0.2,
        what=f"{name} answering 200 at {base_url}{path}",
        ignore=(OSError,),
        detail=log_tail,
    )


@dataclass
class NativeTarget:
    """A stack run by ``wsgistack up STACK`` in a subprocess."""

    stack: str
    log_path: Path
    overrides: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        port = find_free_port()
        overrides = {**SUITE_SETTINGS, **self.overrides}
        # the internal metrics ports too: several native stacks run at once
        for knob in ("METRICS_PORT", "STATUS_PORT"):
            overrides.setdefault(knob, find_free_port())
        if overrides.get("TLS") and "TLS_CERT" not in overrides:
            pki = test_pki()
            overrides.update(
                TLS_PORT=find_free_port(),
                TLS_CERT=str(pki / "cert.pem"),
                TLS_KEY=str(pki / "key.pem"),
            )
            self.ca_file = pki / "ca.pem"
        self.settings = Settings.from_env({}, **overrides, PORT=port)
        self.base_url = f"http://127.0.0.1:{port}"
        self.https_url = f"https://127.0.0.1:{self.settings.TLS_PUBLIC_PORT}"
        self._log = None

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
        def alive() -> None:
            if self.proc.poll() is not None:
                raise AssertionError(f"wsgistack up {self.stack} exited:\n{self.log_tail()}")

        spec = get_stack(self.stack)
        path = "/readyz" if spec.proxied else self.settings.READY_PATH
        wait_for_up(self.base_url, self.stack, timeout, alive, self.log_tail, path)

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
        if self._log is not None:
            self._log.close()

    def beside_proxy(self, script: str) -> subprocess.CompletedProcess:
        """A shell script run where the proxy runs: here, natively."""
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)

    def processes(self, name: str) -> list[int]:
        """Pids of this stack's processes whose command line holds ``name``."""
        children: dict[int, list[int]] = {}
        names: dict[int, bytes] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                names[int(entry.name)] = (entry / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            if name.encode() in names.get(pid, b""):
                found.append(pid)
        return found

    def log_tail(self, lines: int = 40) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# ... and its HTTPS port (TLS=1)
COMPOSE_HTTPS_PORT_VARIABLES = {
    "uwsgi": "UWSGI_HTTPS_PORT",
    "apache": "APACHE_HTTPS_PORT",
    "gunicorn": "GUNICORN_HTTPS_PORT",
}

# the variable compose.yaml publishes each profile's HTTP port from
COMPOSE_PORT_VARIABLES = {
    "uwsgi": "UWSGI_HTTP_PORT",
    "apache": "APACHE_HTTP_PORT",
    "gunicorn": "GUNICORN_HTTP_PORT",
    "granian": "GRANIAN_HTTP_PORT",
    "freethreaded": "GRANIAN_FT_HTTP_PORT",
}
# the other ports a profile publishes: free ones too, so that a suite project
# never holds a port of the container tests' project
COMPOSE_OTHER_PORT_VARIABLES = {
    "freethreaded": ("GUNICORN_FT_HTTP_PORT", "GRANIAN_GIL_HTTP_PORT", "APACHE_FT_HTTP_PORT"),
}


# numbers the compose targets of a session
_TARGETS = itertools.count()


@dataclass
class ComposeTarget:
    """A compose profile brought up with ``docker compose up --wait``, in a
    project of its own, on a free port, with the suite's settings."""

    profile: str
    log_path: Path
    overrides: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        port = find_free_port()
        overrides = {**SUITE_SETTINGS, **self.overrides}
        # the HTTPS port is published whether TLS is on or not: a free one
        self.https_port = find_free_port()
        if overrides.get("TLS"):
            overrides["TLS_PUBLIC_PORT"] = self.https_port
        self.settings = Settings.from_env({}, **overrides, PORT=port)
        self.base_url = f"http://127.0.0.1:{port}"
        self.https_url = f"https://127.0.0.1:{self.settings.TLS_PUBLIC_PORT}"
        # one project per target (docker-uwsgi and docker-uwsgi-edge run side by
        # side, and so do a session's stack and a fresh one of the same name,
        # whose `down` must not take the session's down with it)
        self.project = f"wsgistack-suite-{self.log_path.stem}-{os.getpid()}-{next(_TARGETS)}"
        self.other_ports = {
            variable: str(find_free_port())
            for variable in COMPOSE_OTHER_PORT_VARIABLES.get(self.profile, ())
        }
        if self.profile in COMPOSE_HTTPS_PORT_VARIABLES:
            self.other_ports[COMPOSE_HTTPS_PORT_VARIABLES[self.profile]] = str(self.https_port)
        self._stopping: subprocess.Popen | None = None
        self._engine = False

    @property
    def slots(self) -> int:
        return self.settings.WORKER_SLOTS

    def _env(self) -> dict[str, str]:
        given = SUITE_KNOBS | set(self.overrides)
        knobs = {k: str(v) for k, v in self.settings.as_env().items() if k in given}
        return {
            **knobs,
            **SUITE_APP_ENV,
            COMPOSE_PORT_VARIABLES[self.profile]: str(self.settings.PORT),
            **self.other_ports,
            "STOP_GRACE_PERIOD": f"{self.settings.STOP_GRACE_PERIOD}s",
            # a restarted container would hide a crash from the suite
            "RESTART_POLICY": "no",
        }

    def _compose(self, *args: str, timeout: float = 180, check: bool = True):
        return compose.compose(
            "--profile",
            self.profile,
            *args,
            project=self.project,
            env=self._env(),
            timeout=timeout,
            check=check,
        )

    def start(self) -> ComposeTarget:
        problem = compose.engine_problem()
        if problem:
            pytest.skip(problem)
        self._engine = True
        compose.build_images(cpython=self.profile == compose.CPYTHON_PROFILE)
        result = self._compose("up", "--detach", "--wait", check=False)
        if result.returncode != 0:
            logs = self._compose("logs", "--no-color", "--tail", "40", check=False)
            self.stop()
            raise AssertionError(f"compose up failed: {result.stderr[-3000:]}\n{logs.stdout}")
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 40.0) -> None:
        wait_for_up(self.base_url, self.profile, timeout, lambda: None, self.log_tail)

    def reload(self) -> None:
        raise NotImplementedError("reload is a behaviour of the native stacks")

    def terminate(self) -> None:
        """What an operator does: ``docker compose stop``, in the background."""
        command = compose.compose_command("--profile", self.profile, "stop", project=self.project)
        self._stopping = subprocess.Popen(
            command,
            env=compose.compose_env(self._env()),
            cwd=compose.ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_exit(self, timeout: float) -> int | None:
        try:
            if self._stopping.wait(timeout=timeout) != 0:
                return self._stopping.returncode
        except subprocess.TimeoutExpired:
            return None
        # every container of the stack exited by itself, not killed at the deadline
        states = self._compose("ps", "--all", "--format", "{{.ExitCode}}").stdout.split()
        return max((int(code) for code in states), default=0)

    def stop(self) -> None:
        if not self._engine:
            return
        self.log_path.write_text(self.log_tail(200))
        self._compose("down", "--volumes", "--timeout", "5", check=False)

    @functools.cached_property
    def ca_file(self) -> Path:
        """The throwaway CA the proxy's entrypoint made (TLS=1 without a
        certificate), read from the container (/tmp is a tmpfs docker cp cannot see)."""
        service = compose.SERVICES[self.profile][0]
        pem = self._compose("exec", "-T", service, "cat", "/tmp/wsgistack/tls/ca.pem").stdout
        path = self.log_path.with_suffix(".ca.pem")
        path.write_text(pem)
        return path

    def beside_proxy(self, script: str) -> subprocess.CompletedProcess:
        """A shell script run where the proxy runs: in its container."""
        service = compose.SERVICES[self.profile][0]
        return self._compose("exec", "-T", service, "sh", "-c", script, check=False)

    def recreate(self, service: str) -> None:
        """A new container for ``service``, as a deploy of a new release makes
        it (``up --force-recreate``), leaving the others running."""
        self._compose("up", "--detach", "--wait", "--no-deps", "--force-recreate", service)

    def log_tail(self, lines: int = 40) -> str:
        logs = self._compose("logs", "--no-color", "--tail", str(lines), check=False)
        return logs.stdout


# suite names for a native stack run with other settings (conftest.STACK_SETTINGS)
VARIANTS = {
    "uwsgi-threads": "uwsgi",
    "uwsgi-edge": "uwsgi",
    "docker-uwsgi-edge": "docker-uwsgi",
    "apache-edge": "apache",
    "docker-apache-edge": "docker-apache",
}


def make_target(name: str, log_path: Path, overrides: dict[str, int]):
    """``docker-<profile>`` is a compose stack; any other name a native one."""
    if name.startswith("docker-"):
        profile = VARIANTS.get(name, name).removeprefix("docker-")
        return ComposeTarget(profile, log_path, overrides)
    return NativeTarget(VARIANTS.get(name, name), log_path, overrides)
