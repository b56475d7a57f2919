"""The container images and compose.yaml, checked against a real Docker engine.

The images are built once per session (``docker compose build``: with warm
layers that takes seconds) and each stack's profile is brought up once with
``docker compose up -d --wait`` under the project name ``wsgistack-test`` on
high ports (28080-28082, Locust 28089), so a stack a developer has running on
8080-8082 is never touched. Everything is taken down again at the end.

The Docker tests skip, saying why, where no Docker engine answers
(``docker/install-engine.sh`` installs and starts one); CI turns that skip
into a failure. The lint and compose-file checks need no engine.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.compose import (
    ARBITRARY_USER,
    HOST_PORTS,
    IMAGES,
    LOCUST_PROJECT,
    LOCUST_WEB_PORT,
    PROJECT,
    ROOT,
    SERVICES,
    STACKS,
    STOP_SIGNALS,
    UP_TIMEOUT,
    build_images,
    compose,
    compose_problem,
    docker,
    engine_problem,
    run,
)
from wsgistack.runner import http_get as runner_http_get
from wsgistack.settings import Settings


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    return runner_http_get(f"http://127.0.0.1:{port}{path}", timeout=timeout)


def _seconds(duration: str | int | float) -> float:
    """Compose's durations ("45s", "1m30s") in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    total, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for char in duration:
        if char.isdigit() or char == ".":
            number += char
        else:
            total += float(number) * units[char]
            number = ""
    return total + (float(number) if number else 0.0)


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def compose_cli() -> None:
    """Docker Compose v2 is installed (an engine is not needed)."""
    problem = compose_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def engine() -> None:
    """A Docker engine answers; skip with the reason otherwise."""
    problem = engine_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def images(engine) -> dict[str, str]:
    """Every image built once (warm layers make this quick), then reused."""
    # leftovers of an interrupted run would hold the test ports
    for project in (PROJECT, LOCUST_PROJECT):
        compose("--profile", "*", "down", "--timeout", "5", check=False, project=project)
    build_images()
    return IMAGES


@pytest.fixture(scope="session", params=STACKS)
def compose_stack(request, images) -> Iterator[str]:
    """One stack's profile up and healthy (`up --wait`); down when the next one starts."""
    profile = request.param
    result = compose(
        "--profile", profile, "up", "--detach", "--wait", timeout=UP_TIMEOUT, check=False
    )
    if result.returncode != 0:
        logs = compose("--profile", profile, "logs", "--no-color", "--tail", "40", check=False)
        compose("--profile", profile, "down", "--timeout", "5", check=False)
        pytest.fail(f"`up --wait` failed for {profile}:\n{result.stderr[-3000:]}\n{logs.stdout}")
    yield profile
    compose("--profile", profile, "down", "--remove-orphans", "--timeout", "20", check=False)


def container_of(service: str) -> str:
    ids = compose("ps", "--quiet", service).stdout.split()
    assert ids, f"no running container for {service}"
    return ids[0]


def inspect(ref: str, template: str, kind: str = "container"):
    return json.loads(docker(kind, "inspect", "--format", "{{json " + template + "}}", ref).stdout)


# ---------------------------------------------------------------------------
# lint and compose file: no engine needed
# ---------------------------------------------------------------------------


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    # a pinned dev dependency: missing means a broken venv, not a reason to skip
    assert Path(hadolint).exists(), "hadolint missing: pip install -r requirements-dev.txt"
    result = run([hadolint, "Dockerfile"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def compose_config(compose_cli) -> dict:
    return json.loads(compose("--profile", "*", "config", "--format", "json").stdout)


@pytest.mark.server
def test_compose_keeps_the_timeout_ladder(compose_config) -> None:
    # the defaults of compose.yaml against the ladder wsgistack/settings.py derives
    settings = Settings.from_env({})
    assert settings.APP_TIMEOUT < settings.PROXY_TIMEOUT < settings.STOP_GRACE_PERIOD
    knobs = compose_config["services"]["uwsgi-app"]["environment"]
    assert int(knobs["REQUEST_TIMEOUT"]) == settings.REQUEST_TIMEOUT
    for stack_name, services in SERVICES.items():
        for service in services:
            grace = _seconds(compose_config["services"][service]["stop_grace_period"])
            assert grace >= settings.STOP_GRACE_PERIOD, (stack_name, service, grace)


@pytest.mark.server
def test_compose_services_are_locked_down(compose_config) -> None:
    for name, service in compose_config["services"].items():
        assert service.get("read_only") is True, name
        assert any(mount.split(":")[0] == "/tmp" for mount in service["tmpfs"]), name
        assert service.get("cap_drop") == ["ALL"], name
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)
    # the uwsgi-protocol socket is for nginx only
    assert not compose_config["services"]["uwsgi-app"].get("ports")


def test_env_example_documents_every_compose_variable() -> None:
    # every ${VAR:-default} of compose.yaml, with the same default, in .env.example
    lines = (ROOT / "compose.yaml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    defaults = dict(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}", text))
    documented = {
        name: value.strip().strip('"')
        for name, value in re.findall(
            r"^#?([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), re.M
        )
    }
    missing = sorted(set(defaults) - set(documented))
    assert not missing, f".env.example lacks {missing}"
    differing = {k: (v, documented[k]) for k, v in defaults.items() if documented[k] != v}
    assert not differing, f"compose.yaml default vs .env.example: {differing}"


# ---------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------


@pytest.mark.server
@pytest.mark.parametrize("target", sorted(IMAGES))
def test_image_runs_as_non_root(images, target: str) -> None:
    image = images[target]
    user = inspect(image, ".Config.User", kind="image")
    assert user and user.split(":")[0] not in ("0", "root"), user
    uid = docker("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip()
    assert uid != "0"


@pytest.mark.server
@pytest.mark.parametrize("target", sorted(IMAGES))
def test_image_stops_with_the_graceful_signal(images, target: str) -> None:
    assert inspect(images[target], ".Config.StopSignal", kind="image") == STOP_SIGNALS[target]


# ---------------------------------------------------------------------------
# the stacks under compose
# ---------------------------------------------------------------------------


@pytest.mark.server
def test_stack_serves_the_app(compose_stack: str) -> None:
    status, body = http_get(HOST_PORTS[compose_stack], "/fib/10")
    assert status == 200, body
    assert json.loads(body)["value"] == "55"


@pytest.mark.server
def test_compose_reports_every_service_healthy(compose_stack: str) -> None:
    lines = compose("--profile", compose_stack, "ps", "--format", "json").stdout.splitlines()
    health = {row["Service"]: row["Health"] for row in map(json.loads, filter(None, lines))}
    assert health == dict.fromkeys(SERVICES[compose_stack], "healthy")


@pytest.mark.server
def test_root_filesystem_is_read_only(compose_stack: str) -> None:
    for service in SERVICES[compose_stack]:
        container = container_of(service)
        assert inspect(container, ".HostConfig.ReadonlyRootfs") is True
        probe = docker("exec", container, "touch", "/srv/probe", check=False)
        assert probe.returncode != 0 and "Read-only file system" in probe.stderr, service
        assert docker("exec", container, "id", "-u").stdout.strip() != "0", service


@pytest.mark.server
@pytest.mark.parametrize("compose_stack", ["uwsgi"], indirect=True)
def test_uwsgi_socket_is_not_published(compose_stack: str) -> None:
    ports = inspect(container_of("uwsgi-app"), ".NetworkSettings.Ports")
    assert not ports.get("3031/tcp"), ports
    # compose says ":0" (or fails) for a port it did not publish
    published = compose("port", "uwsgi-app", "3031", check=False)
    assert published.returncode != 0 or published.stdout.strip() == ":0", published.stdout


@pytest.mark.server
def test_locust_master_sees_its_workers(images) -> None:
    # workers connect to the master whether or not the target is up
    project = LOCUST_PROJECT
    try:
        compose("--profile", "loadtest", "up", "--detach", "--wait",
                "--scale", "locust-worker=2", timeout=UP_TIMEOUT, project=project)  # fmt: skip
        deadline, workers, body = time.monotonic() + 30, [], b""
        while time.monotonic() < deadline and len(workers) < 2:
            try:
                status, body = http_get(LOCUST_WEB_PORT, "/stats/requests")
            except OSError:  # the web UI still starting: docker's port proxy resets
                status = 0
            workers = json.loads(body).get("workers", []) if status == 200 else []
            time.sleep(0.5)
        assert len(workers) == 2, body
    finally:
        compose("--profile", "loadtest", "down", "--timeout", "10", check=False, project=project)


# ---------------------------------------------------------------------------
# the images outside compose: any UID, read-only, graceful stop
# ---------------------------------------------------------------------------

# each stack as plain containers, started in this order: (name, image target,
# network alias); "proxy" is the one that publishes the HTTP port
LAYOUT = {
    "uwsgi": (("app", "uwsgi", "uwsgi-app"), ("proxy", "nginx", None)),
    "apache": (("proxy", "apache", None),),
    "gunicorn": (("proxy", "gunicorn", None),),
    "granian": (("proxy", "granian", None),),
    "freethreaded": (("proxy", "freethreaded", None),),
}
CONTAINER_PORTS = {
    "nginx": 8080,
    "apache": 8081,
    "gunicorn": 8082,
    "granian": 8085,
    "freethreaded": 8085,
}


@dataclass
class Standalone:
    """One stack run with `docker run`: its containers and the published port."""

    containers: dict[str, str] = field(default_factory=dict)
    port: int = 0


def _wait_healthy(container: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = inspect(container, ".State.Health.Status")
        if status == "healthy":
            return
        if not inspect(container, ".State.Running"):
            break
        time.sleep(0.5)
    logs = docker("logs", "--tail", "30", container, check=False)
    pytest.fail(f"{container} not healthy: {status}\n{logs.stdout}{logs.stderr}")


@contextmanager
def standalone(stack_name: str, images: dict[str, str], user: str | None) -> Iterator[Standalone]:
    """The stack's images as plain containers: read-only, tmpfs /tmp, optional --user."""
    tag = f"{PROJECT}-{uuid.uuid4().hex[:8]}"
    running = Standalone()
    docker("network", "create", tag)
    try:
        for name, target, alias in LAYOUT[stack_name]:
            args = ["run", "--detach", "--name", f"{tag}-{name}", "--network", tag]
            args += ["--read-only", "--tmpfs", "/tmp", "--health-interval", "1s"]
            if user:
                args += ["--user", user]
            if alias:
                args += ["--network-alias", alias]
            if target in CONTAINER_PORTS:
                args += ["--publish", f"127.0.0.1::{CONTAINER_PORTS[target]}"]
            container = docker(*args, images[target]).stdout.strip()
            running.containers[name] = container
            _wait_healthy(container)
        proxy = running.containers["proxy"]
        port = inspect(proxy, ".NetworkSettings.Ports")
        running.port = int(next(iter(port.values()))[0]["HostPort"])
        yield running
    finally:
        for container in running.containers.values():
            docker("rm", "--force", container, check=False)
        docker("network", "rm", tag, check=False)


@pytest.mark.server
@pytest.mark.parametrize("stack_name", STACKS)
def test_runs_under_an_arbitrary_uid(images, stack_name: str) -> None:
    with standalone(stack_name, images, user=ARBITRARY_USER) as running:
        status, body = http_get(running.port, "/fib/10")
        assert status == 200 and json.loads(body)["value"] == "55", body
        for container in running.containers.values():
            assert docker("exec", container, "id", "-u").stdout.strip() == "12345"


# (stack, the container stopped while a request is in flight)
GRACEFUL_STOPS = [
    ("uwsgi", "proxy"),
    ("uwsgi", "app"),
    ("apache", "proxy"),
    ("gunicorn", "proxy"),
    ("granian", "proxy"),
    ("freethreaded", "proxy"),
]


@pytest.mark.server
@pytest.mark.parametrize(("stack_name", "stopped"), GRACEFUL_STOPS)
def test_stop_lets_the_request_in_flight_finish(images, stack_name: str, stopped: str) -> None:
    with standalone(stack_name, images, user=None) as running:
        answer: dict[str, object] = {}

        def slow_request() -> None:
            try:
                answer["status"], answer["body"] = http_get(running.port, "/io?ms=3000", 30)
            except OSError as error:  # the connection cut: what a bad stop does
                answer["error"] = repr(error)

        client = threading.Thread(target=slow_request)
        client.start()
        time.sleep(1)  # the request is in the app now
        started = time.monotonic()
        docker("stop", "--time", "20", running.containers[stopped], timeout=60)
        client.join(30)
        assert answer.get("status") == 200, answer
        # stopped by its own graceful stop, not killed at the deadline
        assert time.monotonic() - started < 15
        assert inspect(running.containers[stopped], ".State.ExitCode") != 137


@pytest.mark.server
@pytest.mark.parametrize("compose_stack", ["uwsgi"], indirect=True)
def test_a_headless_locust_run_against_the_uwsgi_profile_passes(compose_stack: str) -> None:
    """The loadtest profile's image, on the compose network, against nginx ->
    uWSGI: Locust's exit code says the answers were right and the thresholds held."""
    result = compose(
        "--profile", "uwsgi", "--profile", "loadtest", "run", "--rm", "--no-deps",
        "locust-master", "locust", "--config", "/srv/loadtests/locust.conf", "--headless",
        "--users", "10", "--spawn-rate", "10", "--run-time", "10s",
        "--host", "http://uwsgi-nginx:8080", "SequenceUser", "IoUser",
        timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Aggregated" in result.stdout + result.stderr
