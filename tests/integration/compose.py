"""Docker and Compose from the tests: one place for the commands, the test
project's ports and the checks that an engine answers. Used by the container
tests and by the behaviour suite's compose targets."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

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
        "valkey",
        "worker",
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
    # Valkey flushes its append-only file and exits; the job workers' soft
    # shutdown (REMAP_SIGTERM=SIGQUIT in the image, docs/jobs.md)
    "valkey": "SIGTERM",
    "worker": "SIGTERM",
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


# The session's image build: started in the background as soon as the
# collection holds a container test (conftest.py), so that it runs while the
# native tests do, instead of before them; build_images() waits for it. The
# CPU-heavy steps inside it run niced (docker/build-python.sh,
# docker/pip-install.sh), so the native tests' timings keep their CPU.
_build: subprocess.Popen | None = None
_build_log: Path | None = None
_built = False


def start_building_images() -> bool:
    """Start ``docker compose build`` of every image in the background, once;
    whether it started (not without an engine: the container tests then say why)."""
    global _build, _build_log
    if _build is not None or _built:
        return True
    if compose_problem() is not None or run(["docker", "info"], check=False).returncode != 0:
        return False
    fd, name = tempfile.mkstemp(prefix="wsgistack-build-", suffix=".log")
    _build_log = Path(name)
    with os.fdopen(fd, "w") as log:
        _build = subprocess.Popen(
            compose_command("--profile", "*", "build"),
            cwd=ROOT,
            env=compose_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return True


def stop_building_images() -> None:
    """At the session's end: a background build nobody waited for is stopped."""
    if _build is not None and _build.poll() is None:
        _build.terminate()
        try:
            _build.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _build.kill()


def build_images() -> None:
    """Every image built, once per test session: waits for the background
    build, or builds now when none was started (warm layers make it quick)."""
    global _built
    if _built:
        return
    if _build is None:
        result = compose("--profile", "*", "build", timeout=BUILD_TIMEOUT, check=False)
        returncode, output = result.returncode, result.stdout + result.stderr
    else:
        try:
            returncode = _build.wait(timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            _build.kill()
            returncode = _build.wait()
        output = _build_log.read_text(errors="replace") if _build_log else ""
    if returncode != 0:
        hint = ""
        if "debian:trixie-slim" in output:
            hint = "\nwithout Docker Hub, build the base image first: docker/build-base-image.sh"
        log = f" (log: {_build_log})" if _build is not None else ""
        pytest.fail(f"docker compose build failed{log}{hint}\n{output[-6000:]}")
    _built = True


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
