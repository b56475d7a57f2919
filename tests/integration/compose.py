"""Docker and Compose from the tests: one place for the commands, the test
project's ports and the checks that an engine answers. Used by the container
tests and by the behaviour suite's compose targets."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from wsgistack.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
# the compose project, published ports and image tag of the tests: far from a
# developer's defaults, and overridable so that two checkouts can run their
# container tests side by side on one engine
PROJECT = os.environ.get("WSGISTACK_TEST_PROJECT", "wsgistack-test")
PORT_BASE = int(os.environ.get("WSGISTACK_TEST_PORT_BASE", "28080"))
HOST_PORTS = {
    "uwsgi": PORT_BASE,
    "apache": PORT_BASE + 1,
    "gunicorn": PORT_BASE + 2,
    "granian": PORT_BASE + 10,
    # granian on the free-threaded interpreter; the profile's other services
    # at + the offsets below
    "freethreaded": PORT_BASE + 11,
}
# the freethreaded profile's other services, beside granian-ft's port: clear of
# every stack's production port (+ 3; the production twins of these land at
# + 3 too: + 19, + 24, + 25), the swarm test's (+ 17), the pod's (+ 5), Locust's (+ 9)
GUNICORN_FT_OFFSET = 5
GRANIAN_GIL_OFFSET = 10
APACHE_FT_OFFSET = 11
LOCUST_WEB_PORT = PORT_BASE + 9
IMAGE_TAG = os.environ.get("IMAGE_TAG", "latest")
# Locust gets a project of its own, so that it never touches the stack under test
LOCUST_PROJECT = f"{PROJECT}-locust"
# the stacks with a production SERVER_NAMES, in a project and on ports of their
# own, so that they may run while the default stack is up
PRODUCTION_PROJECT = f"{PROJECT}-prod"
PRODUCTION_PORTS = {stack: port + 3 for stack, port in HOST_PORTS.items()}
STACKS = tuple(HOST_PORTS)
# the compose services of each stack; the first one answers HTTP
SERVICES = {
    "uwsgi": ("uwsgi-nginx", "uwsgi-app"),
    "apache": ("apache",),
    "gunicorn": ("gunicorn",),
    "granian": ("granian",),
    "freethreaded": ("granian-ft", "gunicorn-ft", "granian-gil", "apache-ft"),
}
# the Prometheus exporters that run beside a stack's proxy in its profile
EXPORTERS = {"uwsgi": ("uwsgi-nginx-exporter",), "apache": ("apache-exporter",)}
IMAGES = {
    target: f"wsgistack-{target}:{IMAGE_TAG}"
    for target in (
        "uwsgi",
        "nginx",
        "apache",
        "gunicorn",
        "locust",
        "granian",
        "freethreaded",
        "gil",
        "apache-freethreaded",
        "prometheus",
        "exporters",
    )
}
STOP_SIGNALS = {
    "uwsgi": "SIGTERM",  # with hook-master-start = unix_signal:15 gracefully_kill_them_all
    "nginx": "SIGQUIT",
    "apache": "SIGWINCH",
    "gunicorn": "SIGTERM",
    "locust": "SIGTERM",
    "granian": "SIGTERM",
    "freethreaded": "SIGTERM",
    "gil": "SIGTERM",
    "apache-freethreaded": "SIGWINCH",
    # Prometheus closes its storage cleanly on SIGTERM; the exporters hold nothing
    "prometheus": "SIGTERM",
    "exporters": "SIGTERM",
}
# an arbitrary UID with GID 0, as OpenShift runs containers
ARBITRARY_USER = "12345:0"
# a cold build of every image, both CPython stages included, beside the tests
BUILD_TIMEOUT = 1800
UP_TIMEOUT = 180


def run(args: list[str], *, timeout: float = 120, check: bool = True, env=None):
    result = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result


# a stack's HTTPS port in the tests: its HTTP port + this (free: the ports in
# use are PORT_BASE to PORT_BASE + 25)
HTTPS_OFFSET = 400


def compose_env(extra: dict[str, str] | None = None, ports=HOST_PORTS) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        UWSGI_HTTP_PORT=str(ports["uwsgi"]),
        APACHE_HTTP_PORT=str(ports["apache"]),
        GUNICORN_HTTP_PORT=str(ports["gunicorn"]),
        # the HTTPS ports (published whether TLS is on or not), beside them
        UWSGI_HTTPS_PORT=str(ports["uwsgi"] + HTTPS_OFFSET),
        APACHE_HTTPS_PORT=str(ports["apache"] + HTTPS_OFFSET),
        GRANIAN_HTTP_PORT=str(ports["granian"]),
        GRANIAN_FT_HTTP_PORT=str(ports["freethreaded"]),
        GUNICORN_FT_HTTP_PORT=str(ports["freethreaded"] + GUNICORN_FT_OFFSET),
        GRANIAN_GIL_HTTP_PORT=str(ports["freethreaded"] + GRANIAN_GIL_OFFSET),
        APACHE_FT_HTTP_PORT=str(ports["freethreaded"] + APACHE_FT_OFFSET),
        LOCUST_WEB_PORT=str(LOCUST_WEB_PORT),
        # `up --wait` returns one interval after the servers are ready
        HEALTHCHECK_INTERVAL="2s",
        IMAGE_TAG=IMAGE_TAG,
    )
    # compose refuses a missing secret file; an empty one is ignored by the build
    if not Path(env.get("CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")).is_file():
        env["CA_BUNDLE"] = "/dev/null"
    env.update(extra or {})
    return env


def compose_command(*args: str, project: str = PROJECT) -> list[str]:
    """``docker compose`` on this project, ignoring a developer's .env."""
    command = ["docker", "compose", "--project-name", project, "--project-directory", str(ROOT)]
    return [*command, "--file", str(ROOT / "compose.yaml"), "--env-file", os.devnull, *args]


def compose(
    *args: str,
    timeout: float = 120,
    check: bool = True,
    project: str = PROJECT,
    env: dict[str, str] | None = None,
    ports: dict[str, int] = HOST_PORTS,
):
    return run(
        compose_command(*args, project=project),
        timeout=timeout,
        check=check,
        env=compose_env(env, ports),
    )


def compose_run(
    *args: str, timeout: float = 180, project: str = PROJECT
) -> tuple[int, subprocess.CompletedProcess]:
    """``docker compose run ARGS`` (profiles, options, service, command) and the
    one-off container's exit status. Compose 2.40 on Engine 20.10 exits 0
    whatever the container's status, so it is read from the container, which
    is then removed."""
    name = f"{project}-run-{uuid.uuid4().hex[:8]}"
    profiles = args[: args.index("run")]
    rest = args[len(profiles) + 1 :]
    result = compose(
        *profiles, "run", "--name", name, *rest, timeout=timeout, check=False, project=project
    )
    try:
        state = run(["docker", "inspect", "--format", "{{.State.ExitCode}}", name], check=False)
        status = int(state.stdout.strip()) if state.returncode == 0 else result.returncode or -1
    finally:
        run(["docker", "rm", "--force", name], check=False)
    return status, result


# The session's image build (docker/build-images.sh): started in the background
# as early as possible (by `make test` right after the engine, which passes its
# folder in WSGISTACK_IMAGE_BUILD; else when the collection holds a container
# test), in two parts, so that it overlaps the tests that need no image or no
# CPython image; build_images() waits for the part a test needs. Its CPU-heavy
# steps run niced (docker/build-python.sh, docker/pip-install.sh), so the
# tests' timings keep their CPU.
BUILD_SCRIPT = ROOT / "docker" / "build-images.sh"
# the compose profile of the images on CPython built from source
CPYTHON_PROFILE = "freethreaded"
# the suite's names that run one of those images: stacks, targets, profiles
CPYTHON_NAMES = {"docker-freethreaded", "freethreaded", "gil", "apache-freethreaded"}
_build: Path | None = None
_ready: set[str] = set()


def start_building_images() -> bool:
    """The background build, started once (or adopted from `make test`);
    whether there is one (not without an engine: the container tests say why)."""
    global _build
    if _build is not None:
        return True
    given = os.environ.get("WSGISTACK_IMAGE_BUILD", "")
    if given and Path(given, "pid").is_file():
        _build = Path(given)
        return True
    if engine_problem() is not None:
        return False
    started = run([str(BUILD_SCRIPT), "--background"], env=compose_env(), check=False)
    if started.returncode != 0:
        return False
    _build = Path(started.stdout.strip())
    return True


def _build_alive() -> bool:
    try:
        os.kill(int((_build / "pid").read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def build_images(cpython: bool = True) -> None:
    """The images built, once per test session: every image but the CPython
    ones (cpython=False), or every image. Waits for the background build's
    parts, starting it if need be."""
    parts = ["rest", "cpython"] if cpython else ["rest"]
    if _ready.issuperset(parts):
        return
    if not start_building_images():
        return  # no engine: the caller's engine_problem() skips, saying why
    for part in parts:
        rc_file, log = _build / f"{part}.rc", _build / f"{part}.log"
        wait_until(
            lambda rc_file=rc_file: rc_file.is_file() or not _build_alive(),
            timeout=BUILD_TIMEOUT,
            interval=1,
            what=f"the image build ({part}, log: {log})",
        )
        output = log.read_text(errors="replace") if log.is_file() else ""
        status = rc_file.read_text().strip() if rc_file.is_file() else "none: the build died"
        if status != "0":
            hint = ""
            if "debian:trixie-slim" in output:
                hint = (
                    "\nwithout Docker Hub, build the base image first: docker/build-base-image.sh"
                )
            pytest.fail(
                f"docker compose build ({part}) exited {status} (log: {log}){hint}\n"
                f"{output[-6000:]}"
            )
        _ready.add(part)


def stop_building_images() -> None:
    """At the session's end: a build this session started and nobody waited
    for is stopped (one `make test` started is left to its own end)."""
    if _build is None or os.environ.get("WSGISTACK_IMAGE_BUILD") or not _build_alive():
        return
    with contextlib.suppress(OSError, ValueError):
        os.killpg(int((_build / "pid").read_text()), signal.SIGTERM)


def docker(*args: str, timeout: float = 60, check: bool = True):
    return run(["docker", *args], timeout=timeout, check=check)


def compose_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client on PATH (docker/install-engine.sh installs Docker)"
    if run(["docker", "compose", "version"], check=False, timeout=30).returncode != 0:
        return "no Docker Compose v2 (`docker compose`): docker/install-engine.sh installs it"
    return None


def engine_problem() -> str | None:
    problem = compose_problem()
    if problem:
        return problem
    info = run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30)
    if info.returncode != 0:
        return (
            "no Docker engine answers (start one as root with docker/install-engine.sh): "
            + (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        )
    return None


@functools.cache
def rendered_config() -> dict:
    """compose.yaml as Compose renders it, every profile, each knob at its default
    (``docker compose config``: the compose CLI, no engine); a skip without Compose."""
    problem = compose_problem()
    if problem:
        pytest.skip(problem)
    return json.loads(compose("--profile", "*", "config", "--format", "json").stdout)


def _load_memory_rule():
    spec = importlib.util.spec_from_file_location("memory_rule", ROOT / "docker" / "memory_rule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the memory rule of compose.yaml and .env.example (APP_MEMORY), in the file
# the uwsgi image's entrypoint runs
memory_rule = _load_memory_rule()
