"""Start, wait for, reload and stop a stack of real servers: written once, used by
``wsgistack up``, the tests and the benchmark.

A stack is a list of server processes in start order (app server first, proxy
last); they stop in the reverse order, so a proxy drains its in-flight requests
before the app server behind it goes. Each server runs in its own
process group, so a Ctrl-C on the terminal reaches only the runner, which then
stops every server with the signal that server drains on.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from wsgistack.settings import Settings
from wsgistack.wait import wait_until

# the unprivileged account servers run as when the runner is root: Apache
# refuses to serve as root, and no server here needs root on a high port
UNPRIVILEGED_USER = "nobody"
READY_TIMEOUT = 30.0
STARTUP_FAILURE_GRACE = 3.0


class StackError(RuntimeError):
    """The stack cannot start; the message says why and what to do."""


@dataclass
class Server:
    """One server process of a stack."""

    name: str
    argv: list[str]
    # the signal this server drains in-flight requests on before exiting
    stop_signal: int = signal.SIGTERM
    # how to reload it without dropping requests; None: it cannot
    reload: Callable[[subprocess.Popen], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class StackSpec:
    """What a stack needs and how to build its servers."""

    name: str
    description: str
    default_port: int
    # binary -> how to install it, checked before anything starts
    binaries: dict[str, str]
    servers: Callable[[Settings, Path], list[Server]]
    # needs the app's virtualenv to be built on Debian's /usr/bin/python3
    # (uWSGI's python3 plugin and mod_wsgi embed that interpreter)
    needs_system_python: bool = False
    # the app server it runs (wsgistack.settings.APP_SERVERS), whose own knob
    # defaults apply where it has any (the environment and the command line win)
    server: str = ""
    # a proxy in front answers the readiness probe /readyz (with the app's
    # READY_PATH); without one, the probe asks the app's READY_PATH itself
    proxied: bool = False


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StackError(
                f"port {host}:{port} is taken ({exc.strerror}); stop what uses it "
                f"(`ss -ltnp 'sport = :{port}'` shows it) or pick another with --port"
            ) from None


def find_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_binaries(spec: StackSpec) -> None:
    missing = [f"{binary} ({hint})" for binary, hint in spec.binaries.items() if not _which(binary)]
    if missing:
        raise StackError(
            f"the {spec.name} stack needs: "
            + "; ".join(missing)
            + ". `make deps` installs them as root."
        )


def check_system_python(spec: StackSpec) -> None:
    if not spec.needs_system_python:
        return
    system = Path("/usr/bin/python3")
    if not system.exists():
        raise StackError("Debian's /usr/bin/python3 is missing: `apt-get install python3`")
    out = subprocess.run(
        [str(system), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = "{}.{}".format(*sys.version_info[:2])
    if out != ours or sys.prefix == sys.base_prefix:
        raise StackError(
            f"the {spec.name} stack embeds Debian's Python {out}, so the app must be installed "
            f"in a virtualenv made with /usr/bin/python3 (this one is Python {ours} at "
            f"{sys.prefix}); `make venv` makes it"
        )


def _which(binary: str) -> str | None:
    # Debian puts apache2 and nginx in /usr/sbin, which a non-root PATH may lack
    return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")


def binary(name: str) -> str:
    path = _which(name)
    if path is None:
        raise StackError(f"{name} not found")
    return path


# straight to the server, never through a proxy named in the environment
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with _DIRECT.open(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class RunningStack:
    """A started stack. Use as a context manager: it stops everything on exit."""

    def __init__(self, spec: StackSpec, settings: Settings, run_dir: Path, log: IO | None):
        self.spec = spec
        self.settings = settings
        self.run_dir = run_dir
        self.log = log
        self.procs: dict[str, subprocess.Popen] = {}
        self.servers: list[Server] = []
        self._pumps: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        host = self.settings.BIND_ADDRESS
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.settings.PORT}"

    def start(self) -> None:
        self.servers = self.spec.servers(self.settings, self.run_dir)
        for server in self.servers:
            self.procs[server.name] = self._spawn(server)
        self.wait_ready()

    def _spawn(self, server: Server) -> subprocess.Popen:
        env = {
            **os.environ,
            **self.settings.as_env(),
            # read the bytecode pip compiled, write none into the source tree
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "HOME": str(self.run_dir),
            **server.env,
        }
        kwargs: dict = {}
        if os.geteuid() == 0:
            kwargs.update(
                user=UNPRIVILEGED_USER, group=_group_of(UNPRIVILEGED_USER), extra_groups=[]
            )
        read_fd, write_fd = os.pipe()
        # servers open /dev/stdout by path (nginx's access_log, Apache's
        # CustomLog): let the unprivileged account reopen the pipe
        os.fchmod(write_fd, 0o666)
        try:
            proc = subprocess.Popen(
                server.argv,
                env=env,
                cwd=self.run_dir,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                # own process group: a terminal's Ctrl-C reaches the runner only
                start_new_session=True,
                **kwargs,
            )
        finally:
            os.close(write_fd)
        pump = threading.Thread(
            target=_pump_lines, args=(read_fd, server.name, self.log), daemon=True
        )
        pump.start()
        self._pumps.append(pump)
        return proc

    @property
    def ready_url(self) -> str:
        """The readiness probe: the proxy's /readyz, else the app's READY_PATH."""
        return self.base_url + ("/readyz" if self.spec.proxied else self.settings.READY_PATH)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        url = self.ready_url

        def ready() -> bool:
            self.check_alive()
            return http_get(url, timeout=1.0)[0] == 200

        what = f"{self.spec.name}: {url} answering 200"
        wait_until(
            ready, timeout=timeout, interval=0.1, what=what, ignore=(OSError,), error=StackError
        )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                raise StackError(
                    f"{self.spec.name}: {name} exited with status {code}; see its log above"
                )

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def reload(self) -> None:
        """Reload every server that can be reloaded without dropping requests."""
        for server in self.servers:
            if server.reload is not None:
                server.reload(self.procs[server.name])

    def stop(self, grace: float | None = None) -> dict[str, int | None]:
        """Stop servers in order with their drain signal; kill what outlives ``grace``."""
        grace = self.settings.STOP_GRACE_PERIOD if grace is None else grace
        deadline = time.monotonic() + grace
        codes: dict[str, int | None] = {}
        for server in reversed(self.servers):
            proc = self.procs.get(server.name)
            if proc is None:
                continue
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(server.stop_signal)
            try:
                codes[server.name] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                codes[server.name] = None
            # whatever the server left behind in its group (workers) goes too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for pump in self._pumps:
            pump.join(timeout=2)
        return codes

    def __enter__(self) -> RunningStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pump_lines(read_fd: int, name: str, sink: IO | None) -> None:
    """Copy a server's output line by line, each line prefixed with the server's name."""
    with open(read_fd, "rb") as source:
        for raw in source:
            line = f"{name:>8} | {raw.decode(errors='replace').rstrip()}\n"
            out = sink if sink is not None else sys.stdout
            with contextlib.suppress(ValueError, OSError):
                out.write(line)
                out.flush()


def _group_of(user: str) -> int:
    return pwd.getpwnam(user).pw_gid


@contextlib.contextmanager
def run_stack(
    spec: StackSpec,
    settings: Settings,
    log: IO | None = None,
    keep_run_dir: bool = False,
) -> Iterator[RunningStack]:
    """Check, start and wait for a stack; stop it and remove its run folder on exit."""
    check_binaries(spec)
    check_system_python(spec)
    check_port_free(settings.BIND_ADDRESS or "0.0.0.0", settings.PORT)
    run_dir = Path(tempfile.mkdtemp(prefix=f"wsgistack-{spec.name}-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(UNPRIVILEGED_USER)
        os.chown(run_dir, user.pw_uid, user.pw_gid)
    # the run folder of the settings is this fresh one, whatever the environment said
    settings = Settings.from_env(
        settings.as_env(),
        RUN_DIR=str(run_dir),
        UWSGI_SOCKET=_run_dir_socket(settings, run_dir),
        # the self-signed certificate's default place moves with the run folder
        **{
            name: str(run_dir / Path(value).relative_to(settings.RUN_DIR))
            for name in ("TLS_CERT", "TLS_KEY")
            if Path(value := getattr(settings, name)).is_relative_to(settings.RUN_DIR)
        },
        # natively, the app lives in the virtualenv wsgistack itself runs from
        VENV=settings.VENV or sys.prefix,
    )
    stack = RunningStack(spec, settings, run_dir, log)
    try:
        try:
            stack.start()
        except BaseException:
            # nothing is in flight yet: no grace period to wait out
            stack.stop(grace=STARTUP_FAILURE_GRACE)
            raise
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        if not keep_run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def _run_dir_socket(settings: Settings, run_dir: Path) -> str:
    # a unix socket path from the environment's run folder moves into the new one
    if settings.UWSGI_SOCKET.startswith("/"):
        return str(run_dir / "uwsgi.sock")
    return settings.UWSGI_SOCKET
