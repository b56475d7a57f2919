"""The container images and compose.yaml, checked against a real Docker engine.

The images are built once per session (``docker compose build``: with warm
layers that takes seconds) and each stack's profile is brought up once with
``docker compose up -d --wait`` under the project name ``wsgistack-test`` on
high ports (28080-28082, Locust 28089), so a stack a developer has running on
8080-8082 is never touched. Each stack is also brought up with a production
``SERVER_NAMES=example.org``, in the project ``wsgistack-test-prod`` on
28083-28085, to check health whatever the Host header. Everything is taken
down again at the end.

The Docker tests skip, saying why, where no Docker engine answers
(``docker/install-engine.sh`` installs and starts one); CI turns that skip
into a failure. The checks of the Dockerfile (hadolint: tests/test_lint.py) and
of compose.yaml (tests/configs/test_compose_file.py) need no engine.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from tests.integration import http as client
from tests.integration.compose import (
    ARBITRARY_USER,
    CPYTHON_NAMES,
    EXPORTERS,
    HOST_PORTS,
    IMAGES,
    LOCUST_PROJECT,
    LOCUST_WEB_PORT,
    PRODUCTION_PORTS,
    PRODUCTION_PROJECT,
    PROJECT,
    SERVICES,
    STACKS,
    STOP_SIGNALS,
    UP_TIMEOUT,
    build_images,
    compose,
    compose_run,
    docker,
    engine_problem,
    memory_rule,
    rendered_config,
)
from wsgistack.runner import http_get as runner_http_get
from wsgistack.settings import Settings
from wsgistack.wait import wait_until


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    return runner_http_get(f"http://127.0.0.1:{port}{path}", timeout=timeout)


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def engine() -> None:
    """A Docker engine answers; skip with the reason otherwise."""
    problem = engine_problem()
    if problem:
        pytest.skip(problem)


class Images(dict):
    """The images by target; asking for one waits until its part of the
    session's build is done (the CPython ones come last: compose.py)."""

    def __getitem__(self, target: str) -> str:
        build_images(cpython=target in CPYTHON_NAMES)
        return super().__getitem__(target)


@pytest.fixture(scope="session")
def images(engine) -> Images:
    """The images, built once per session (warm layers make this quick)."""
    # leftovers of an interrupted run would hold the test ports
    for project in (PROJECT, LOCUST_PROJECT):
        compose("--profile", "*", "down", "--timeout", "5", check=False, project=project)
    build_images(cpython=False)
    return Images(IMAGES)


# module scope: down when the next one starts, or when the module's tests are
# done (the CPython ones run at the session's end: conftest.py), rather than
# idling through the other modules' tests, healthchecked every 2 s
@pytest.fixture(scope="module", params=STACKS)
def compose_stack(request, images) -> Iterator[str]:
    """One stack's profile up and healthy (`up --wait`); down when the next one starts."""
    profile = request.param
    build_images(cpython=profile in CPYTHON_NAMES)
    result = compose(
        "--profile", profile, "up", "--detach", "--wait", timeout=UP_TIMEOUT, check=False
    )
    # `up --wait` exits 0 with an unhealthy container (Compose 2.40): ask each
    health = {}
    if result.returncode == 0:
        for service in SERVICES[profile]:
            ids = compose("ps", "--quiet", service).stdout.split()
            health[service] = inspect(ids[0], ".State.Health.Status") if ids else "not running"
    if result.returncode != 0 or set(health.values()) != {"healthy"}:
        logs = compose("--profile", profile, "logs", "--no-color", "--tail", "40", check=False)
        compose("--profile", profile, "down", "--timeout", "5", check=False)
        failure = f"`up --wait` failed for {profile}: {health}\n{result.stderr[-3000:]}"
        pytest.fail(f"{failure}\n{logs.stdout}")
    yield profile
    compose("--profile", profile, "down", "--remove-orphans", "--timeout", "20", check=False)


def container_of(service: str, project: str = PROJECT) -> str:
    ids = compose("ps", "--quiet", service, project=project).stdout.split()
    assert ids, f"no running container for {service}"
    return ids[0]


def inspect(ref: str, template: str, kind: str = "container"):
    return json.loads(docker(kind, "inspect", "--format", "{{json " + template + "}}", ref).stdout)


# ---------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", sorted(IMAGES))
def test_image_runs_as_non_root(images, target: str) -> None:
    image = images[target]
    user = inspect(image, ".Config.User", kind="image")
    assert user and user.split(":")[0] not in ("0", "root"), user
    uid = docker("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip()
    assert uid != "0"


@pytest.mark.parametrize("target", ["uwsgi", "nginx"])
def test_the_uwsgi_stacks_images_with_no_knobs_run_processes_of_one_thread(images, target) -> None:
    """The images as `docker run` starts them, no knob set: the entrypoint
    resolves uWSGI's own shape (wsgistack/settings.py) and renders it; uWSGI
    reads its file back, nginx's limits count the same slots."""
    shape = Settings.from_env({}, server="uwsgi")
    run_with = ["run", "--rm", "--read-only", "--tmpfs", "/tmp:size=64m", images[target]]
    if target == "uwsgi":
        ini = "/tmp/wsgistack/uwsgi.ini"
        ran = docker(*run_with, "sh", "-c", f"uwsgi --ini {ini} --get processes --get threads")
        assert ran.stdout.split() == [str(shape.WSGI_PROCESSES), str(shape.WSGI_THREADS)]
    else:
        site = "/tmp/wsgistack/nginx/snippets/proxy-to-app.conf"
        ran = docker(*run_with, "grep", "-h", "^limit_conn in_flight", site)
        assert ran.stdout.strip() == f"limit_conn in_flight {shape.PROXY_MAX_CONNS};"
    assert (shape.WSGI_PROCESSES, shape.WSGI_THREADS) == (8, 1)
    assert "WSGI_PROCESSES=8 WSGI_THREADS=1 " in ran.stderr, ran.stderr


def test_uwsgi_image_warns_when_the_memory_limit_breaks_the_rule(images) -> None:
    run_with = ["run", "--rm", "--read-only", "--tmpfs", "/tmp:size=64m"]
    run_with += ["--env", "WSGI_PROCESSES=2", "--env", "RELOAD_ON_RSS_MB=256", "--memory"]
    # 2 x (256 + 32) + 32 + 64 = 672 MB needed
    small = docker(*run_with, "512m", images["uwsgi"], "true")
    assert "memory_rule: warning: the memory limit (512 MB)" in small.stderr, small.stderr
    assert "= 672 MB" in small.stderr, small.stderr
    enough = docker(*run_with, "672m", images["uwsgi"], "true")
    assert "memory_rule" not in enough.stderr, enough.stderr


@pytest.mark.parametrize("target", sorted(IMAGES))
def test_image_stops_with_the_graceful_signal(images, target: str) -> None:
    assert inspect(images[target], ".Config.StopSignal", kind="image") == STOP_SIGNALS[target]


# ---------------------------------------------------------------------------
# the stacks under compose
# ---------------------------------------------------------------------------


def test_stack_serves_the_app(compose_stack: str) -> None:
    status, body = http_get(HOST_PORTS[compose_stack], "/fib/10")
    assert status == 200, body
    assert json.loads(body)["value"] == "55"


def test_compose_reports_every_service_healthy(compose_stack: str) -> None:
    lines = compose("--profile", compose_stack, "ps", "--format", "json").stdout.splitlines()
    health = {row["Service"]: row["Health"] for row in map(json.loads, filter(None, lines))}
    services = SERVICES[compose_stack] + EXPORTERS.get(compose_stack, ())
    assert health == dict.fromkeys(services, "healthy")


def test_root_filesystem_is_read_only(compose_stack: str) -> None:
    for service in SERVICES[compose_stack]:
        container = container_of(service)
        assert inspect(container, ".HostConfig.ReadonlyRootfs") is True
        probe = docker("exec", container, "touch", "/srv/probe", check=False)
        assert probe.returncode != 0 and "Read-only file system" in probe.stderr, service
        assert docker("exec", container, "id", "-u").stdout.strip() != "0", service


@pytest.mark.parametrize("compose_stack", ["uwsgi"], indirect=True)
def test_uwsgi_socket_is_not_published(compose_stack: str) -> None:
    ports = inspect(container_of("uwsgi-app"), ".NetworkSettings.Ports")
    assert not ports.get("3031/tcp"), ports
    # compose says ":0" or nothing (or fails) for a port it did not publish
    published = compose("port", "uwsgi-app", "3031", check=False)
    assert published.returncode != 0 or published.stdout.strip() in ("", ":0"), published.stdout


@pytest.mark.parametrize("compose_stack", ["uwsgi"], indirect=True)
def test_only_nginx_reaches_the_uwsgi_socket(compose_stack: str) -> None:
    """The same uwsgi-protocol request to uwsgi-app:3031 (what healthcheck.py
    sends): answered from nginx's container, refused from a Locust container
    on the project's network, by name and by the app's address alike."""
    probe = ["/usr/local/bin/healthcheck.py"]
    app = container_of("uwsgi-app")
    addresses = [n["IPAddress"] for n in inspect(app, ".NetworkSettings.Networks").values()]
    targets = ["uwsgi-app", *addresses]
    nginx = docker("exec", container_of("uwsgi-nginx"), *probe, "uwsgi://uwsgi-app:3031/readyz")
    assert "200" in nginx.stdout, nginx.stdout + nginx.stderr
    # the loadtest profile's container, on the networks compose gives it
    for target in targets:
        status, result = compose_run(
            "--profile",
            "uwsgi",
            "--profile",
            "loadtest",
            "run",
            "--no-deps",
            "--entrypoint",
            probe[0],
            "locust-master",
            f"uwsgi://{target}:3031/readyz",
            timeout=60,
        )
        assert status == 1, f"Locust reached uWSGI at {target}: {result.stdout}{result.stderr}"
        assert "unhealthy" in result.stderr, result.stderr


# resident memory in MB of every process in a container, by command line
PROCESS_RSS = """
import json, pathlib
rss = {}
for proc in pathlib.Path("/proc").glob("[0-9]*"):
    try:
        args = (proc / "cmdline").read_bytes().replace(b"\\0", b" ").decode().strip()
        status = (proc / "status").read_text().splitlines()
    except OSError:
        continue
    kb = [int(line.split()[1]) for line in status if line.startswith("VmRSS:")]
    rss.setdefault(args, []).extend(kb[0] // 1024 for _ in kb)
print(json.dumps(rss))
"""


@pytest.mark.parametrize("compose_stack", ["uwsgi"], indirect=True)
def test_uwsgi_memory_is_what_the_rule_assumes(compose_stack: str) -> None:
    """The rule's figures against the running stack: the master fits its
    allowance, a worker that served requests sits below RELOAD_ON_RSS_MB (or
    it would be recycled after each one), and the container has the limit
    compose.yaml sets."""
    service = rendered_config()["services"]["uwsgi-app"]
    app = container_of("uwsgi-app")
    assert inspect(app, ".HostConfig.Memory") == int(service["mem_limit"])
    for _ in range(20):
        assert http_get(HOST_PORTS["uwsgi"], "/fib/sequence?n=1000")[0] == 200
    rss = json.loads(docker("exec", app, "/usr/bin/python3", "-c", PROCESS_RSS).stdout)
    masters = [mb for args, mbs in rss.items() if "uWSGI master" in args for mb in mbs]
    workers = [mb for args, mbs in rss.items() if "uWSGI worker" in args for mb in mbs]
    # the worker count the entrypoint resolved from the knobs (empty: uWSGI's own)
    processes = Settings.from_env(service["environment"], server="uwsgi").WSGI_PROCESSES
    assert len(masters) == 1 and len(workers) == processes, rss
    assert masters[0] <= memory_rule.MASTER_MB, rss
    # with the room docs/configuration.md asks of RELOAD_ON_RSS_MB: at least 1.5
    # x a served worker (below its RSS a worker is recycled after every request)
    assert max(workers) * 1.5 <= int(service["environment"]["RELOAD_ON_RSS_MB"]), rss


def test_locust_master_sees_its_workers(images) -> None:
    # workers connect to the master whether or not the target is up
    project = LOCUST_PROJECT
    try:
        compose(
            "--profile",
            "loadtest",
            "up",
            "--detach",
            "--wait",
            "--scale",
            "locust-worker=2",
            timeout=UP_TIMEOUT,
            project=project,
        )

        def workers() -> list:
            status, body = http_get(LOCUST_WEB_PORT, "/stats/requests")
            return json.loads(body).get("workers", []) if status == 200 else []

        wait_until(
            lambda: len(workers()) == 2,
            timeout=30,
            interval=0.5,
            what="the Locust master seeing 2 workers",
            # the web UI still starting: docker's port proxy resets
            ignore=(OSError,),
        )
    finally:
        compose("--profile", "loadtest", "down", "--timeout", "10", check=False, project=project)


# ---------------------------------------------------------------------------
# production host names: health whatever the Host header
# ---------------------------------------------------------------------------

PRODUCTION_NAME = "example.org"
# Host headers a probe may send: the served name, the container's or a load
# balancer's address, a name nobody configured, none at all (HTTP/1.0)
PROBE_HOSTS = (PRODUCTION_NAME, "127.0.0.1", "10.11.12.13:8080", "unknown.invalid", None)
PROBES = ("/livez", "/readyz")
# the stacks with a proxy in front, which refuses unknown names and answers
# /livez itself (gunicorn alone has neither)
PROXIED_STACKS = ("uwsgi", "apache")


def production(*args: str, **kwargs):
    """``SERVER_NAMES=example.org docker compose ...`` in the production project."""
    env = {"SERVER_NAMES": PRODUCTION_NAME}
    return compose(*args, project=PRODUCTION_PROJECT, ports=PRODUCTION_PORTS, env=env, **kwargs)


@pytest.fixture(scope="module", params=STACKS)
def production_stack(request, images) -> Iterator[str]:
    """`SERVER_NAMES=example.org docker compose --profile P up -d --wait`. Its
    exit status says nothing (Compose 2.40 exits 0 with an unhealthy
    container): the tests read each container's health themselves."""
    profile = request.param
    build_images(cpython=profile in CPYTHON_NAMES)
    production("--profile", profile, "down", "--timeout", "5", check=False)
    production("--profile", profile, "up", "--detach", "--wait", timeout=UP_TIMEOUT, check=False)
    yield profile
    production("--profile", profile, "down", "--remove-orphans", "--timeout", "10", check=False)


def production_get(stack: str, path: str, host: str | None, timeout: float = 10) -> client.Answer:
    base_url = f"http://127.0.0.1:{PRODUCTION_PORTS[stack]}"
    if host is None:  # HTTP/1.0 without a Host header
        started = time.monotonic()
        data = client.raw(base_url, f"GET {path} HTTP/1.0\r\n\r\n".encode(), timeout)
        status, fields, body = client.parse_raw(data)
        headers = http.client.HTTPMessage()
        for name, value in fields.items():
            headers[name] = value
        return client.Answer(status, headers, body, time.monotonic() - started)
    return client.request(base_url, path, headers={"Host": host}, timeout=timeout)


def test_production_names_leave_every_container_healthy(production_stack: str) -> None:
    health = {
        service: inspect(container_of(service, PRODUCTION_PROJECT), ".State.Health.Status")
        for service in SERVICES[production_stack]
    }
    assert health == dict.fromkeys(SERVICES[production_stack], "healthy")


def test_production_name_is_served(production_stack: str) -> None:
    answer = production_get(production_stack, "/fib/10", PRODUCTION_NAME)
    assert answer.status == 200 and answer.json["value"] == "55", answer


@pytest.mark.parametrize("production_stack", PROXIED_STACKS, indirect=True)
def test_unknown_host_is_misdirected(production_stack: str) -> None:
    for host in ("127.0.0.1", "unknown.invalid", None):
        answer = production_get(production_stack, "/fib/10", host)
        assert answer.is_problem(421), (host, answer)


def test_probes_answer_whatever_the_host(production_stack: str) -> None:
    for path in PROBES:
        for host in PROBE_HOSTS:
            answer = production_get(production_stack, path, host)
            assert answer.status == 200, (path, host, answer)
            assert json.loads(answer.body) == {"status": "ok"}, (path, host, answer)


def test_probes_stay_out_of_the_access_log(production_stack: str) -> None:
    for path in PROBES:
        for host in PROBE_HOSTS:
            production_get(production_stack, path, host)
    # a request that is logged, after the probes: once it shows, they would have
    marker = f"/fib/10?marker={uuid.uuid4().hex}"
    assert production_get(production_stack, marker, PRODUCTION_NAME).status == 200

    def logs() -> str:
        return production("--profile", production_stack, "logs", "--no-color").stdout

    def logged() -> str | None:
        text = logs()
        return text if marker in text else None

    text = wait_until(
        logged,
        timeout=10,
        interval=0.5,
        what=f"{marker} in the access log",
        detail=lambda: logs()[-3000:],
    )
    probed = [line for line in text.splitlines() if any(p in line for p in PROBES)]
    assert not probed, "\n".join(probed[:10])


@pytest.mark.parametrize("production_stack", PROXIED_STACKS, indirect=True)
def test_liveness_does_not_wait_for_busy_workers(production_stack: str) -> None:
    """/livez is the proxy's own answer: with every app worker busy it still
    answers at once, while /readyz waits for a worker."""
    # the stack's own shape, as it reports it (each profile has its defaults)
    shape = production_get(production_stack, "/info", PRODUCTION_NAME).json["configured"]
    slots = shape["processes"] * shape["threads"]
    with ThreadPoolExecutor(max_workers=slots) as pool:
        busy = [
            pool.submit(production_get, production_stack, "/io?ms=3000", PRODUCTION_NAME, 30)
            for _ in range(slots)
        ]
        # fixed: nothing outside the app shows the requests arrived; 1 s is far
        # more than their trip takes
        time.sleep(1)
        live = production_get(production_stack, "/livez", "127.0.0.1")
        ready = production_get(production_stack, "/readyz", "127.0.0.1")
    assert live.status == 200 and live.elapsed < 1.0, live
    # the workers were busy indeed: readiness waited for one (or gave up)
    assert ready.elapsed > 1.0 or ready.status != 200, ready
    assert [future.result().status for future in busy] == [200] * slots


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
    def logs() -> str:
        tail = docker("logs", "--tail", "30", container, check=False)
        return tail.stdout + tail.stderr

    def healthy() -> bool:
        if inspect(container, ".State.Health.Status") == "healthy":
            return True
        if not inspect(container, ".State.Running"):
            pytest.fail(f"{container} exited before it was healthy:\n{logs()}")
        return False

    wait_until(healthy, timeout=timeout, interval=0.5, what=f"{container} healthy", detail=logs)


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
        # fixed: nothing outside the app shows the request arrived; 1 s is far
        # more than its trip takes
        time.sleep(1)
        started = time.monotonic()
        docker("stop", "--time", "20", running.containers[stopped], timeout=60)
        client.join(30)
        assert answer.get("status") == 200, answer
        # stopped by its own graceful stop, not killed at the deadline
        assert time.monotonic() - started < 15
        assert inspect(running.containers[stopped], ".State.ExitCode") != 137


@pytest.mark.parametrize("compose_stack", ["uwsgi"], indirect=True)
def test_a_headless_locust_run_against_the_uwsgi_profile_passes(compose_stack: str) -> None:
    """The loadtest profile's image, on the compose network, against nginx ->
    uWSGI: Locust's exit code says the answers were right and the thresholds held."""
    status, result = compose_run(
        "--profile",
        "uwsgi",
        "--profile",
        "loadtest",
        "run",
        "--no-deps",
        "locust-master",
        "locust",
        "--config",
        "/srv/loadtests/locust.conf",
        "--headless",
        "--users",
        "10",
        "--spawn-rate",
        "10",
        "--run-time",
        "10s",
        "--host",
        "http://uwsgi-nginx:8080",
        "SequenceUser",
        "IoUser",
        timeout=180,
    )
    assert status == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Aggregated" in result.stdout + result.stderr
