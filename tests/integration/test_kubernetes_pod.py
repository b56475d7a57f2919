"""The Kubernetes pod's wiring, run for real with plain `docker run`.

No cluster runs here, so the pod of deploy/kubernetes is played by two
containers made from the rendered manifest itself: each container's image,
environment (ConfigMap + env), CPU and memory limits, read-only root, writable
/tmp, dropped capabilities and user, and the socket folder as a host folder
mounted into both (the emptyDir). What this proves: the images serve through
the unix socket on the shared volume, the worker counts follow the CPU quota
(`docker run --cpus` sets the same cgroup quota as limits.cpu), and nginx's
preStop command drains a request in flight. What it cannot prove: the
kubelet's probes, endpoint removal and the sidecar stop order
(docs/kubernetes.md).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.compose import (
    IMAGES,
    PORT_BASE,
    PROJECT,
    build_images,
    docker,
    engine_problem,
)
from tests.integration.http import Answer, request
from tests.kubernetes.manifests import (
    ROOT,
    SERVER,
    container,
    container_env,
    cpus,
    knobs,
    mebibytes,
    pod_spec,
    render,
)
from wsgistack.settings import Settings
from wsgistack.wait import wait_until

# a port of this checkout's test range (compose.py uses PORT_BASE + 0..2 and + 9)
POD_PORT = PORT_BASE + 5
# the pod's containers and their images, in start order (uWSGI is the sidecar)
POD_IMAGES = {"uwsgi": "uwsgi", "nginx": "nginx"}
# the Host a kubelet's httpGet probe sends: the pod's IP and port
KUBELET_HOST = "10.244.1.7:8080"
READY_TIMEOUT = 90


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    build_images(cpython=False)
    return IMAGES


@dataclass
class Pod:
    port: int
    socket_dir: Path
    containers: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, host: str = "localhost", timeout: float = 30) -> Answer:
        return request(
            f"http://127.0.0.1:{self.port}", path, headers={"Host": host}, timeout=timeout
        )

    def logs(self, name: str) -> str:
        result = docker("logs", self.containers[name], check=False)
        return result.stdout + result.stderr


def _docker_args(objects: tuple[dict, ...], name: str, socket_dir: Path, **overrides) -> list[str]:
    """`docker run` options for one container of the pod, from the manifest."""
    spec = pod_spec(objects)
    c = container(objects, name)
    user = spec["securityContext"]
    args = ["--user", f"{user['runAsUser']}:{user['runAsGroup']}"]
    security = c["securityContext"]
    if security["readOnlyRootFilesystem"]:
        args.append("--read-only")
    args += [f"--cap-drop={cap}" for cap in security["capabilities"]["drop"]]
    if not security["allowPrivilegeEscalation"]:
        args += ["--security-opt", "no-new-privileges=true"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    socket_folder = container_env(objects, name)["UWSGI_SOCKET"].rsplit("/", 1)[0]
    for mount in c["volumeMounts"]:
        assert "emptyDir" in volumes[mount["name"]], mount
        if mount["mountPath"] == socket_folder:
            # the one volume both containers share: a host folder here
            args += ["--volume", f"{socket_dir}:{mount['mountPath']}"]
        else:
            # a volume of this container alone: a tmpfs, as compose does
            args += ["--tmpfs", f"{mount['mountPath']}:mode=1777"]
    limits = c["resources"]["limits"]
    cpu = overrides.get("cpus", limits["cpu"])
    if cpu:
        args += ["--cpus", str(cpus(cpu))]
    memory = overrides.get("memory", limits["memory"])
    if memory:
        args += ["--memory", f"{int(mebibytes(memory))}m"]
    env = container_env(objects, name) | overrides.get("env", {})
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    # the images' HEALTHCHECK is Docker's, not the kubelet's (and speaks TCP
    # to uWSGI): the probes are checked below by requests
    args.append("--no-healthcheck")
    return args


@contextmanager
def pod(images: dict[str, str], target: str = "base", **overrides) -> Iterator[Pod]:
    """The target's pod as two containers; ``overrides``: per-container
    ``{"uwsgi": {"cpus": "1", "memory": None, "env": {...}}}`` changes to the
    manifest (None: no limit)."""
    objects = render(target)
    socket_dir = Path(tempfile.mkdtemp(prefix="wst-k8s-socket-"))
    # an emptyDir is writable by the pod's user (fsGroup); so is this folder
    socket_dir.chmod(0o777)
    running = Pod(POD_PORT, socket_dir)
    tag = f"{PROJECT}-pod-{uuid.uuid4().hex[:8]}"
    try:
        for name, target_image in POD_IMAGES.items():
            args = ["run", "--detach", "--name", f"{tag}-{name}"]
            args += _docker_args(objects, name, socket_dir, **overrides.get(name, {}))
            if name == "nginx":
                port = container(objects, "nginx")["ports"][0]["containerPort"]
                args += ["--publish", f"127.0.0.1:{POD_PORT}:{port}"]
            running.containers[name] = docker(*args, images[target_image]).stdout.strip()
        _wait_ready(running)
        yield running
    finally:
        for name in running.containers.values():
            docker("rm", "--force", name, check=False)
        shutil.rmtree(socket_dir, ignore_errors=True)


def _wait_ready(running: Pod) -> None:
    wait_until(
        lambda: running.get("/readyz", timeout=5).status == 200,
        timeout=READY_TIMEOUT,
        interval=0.5,
        what="the pod answering 200 at /readyz",
        ignore=(OSError,),
        detail=lambda: (
            f"--- uwsgi\n{running.logs('uwsgi')[-3000:]}"
            f"\n--- nginx\n{running.logs('nginx')[-3000:]}"
        ),
    )


def _worker_processes(container_id: str, marker: str) -> int:
    """Processes whose command line contains ``marker`` (docker top: ps on the host)."""
    table = docker("top", container_id, "-o", "pid,args").stdout
    return sum(marker in line for line in table.splitlines()[1:])


def _listening_ports(container_id: str) -> list[int]:
    """The TCP ports listening in the container (IPv4: /proc/net/tcp, state 0A)."""
    table = docker("exec", container_id, "cat", "/proc/net/tcp").stdout
    return [
        int(line.split()[1].rsplit(":", 1)[1], 16)
        for line in table.splitlines()[1:]
        if line.split()[3] == "0A"
    ]


def test_the_pod_serves_through_the_socket_on_the_shared_volume(images) -> None:
    objects = render("base")
    with pod(images) as running:
        answer = running.get("/fib/10")
        assert answer.status == 200 and answer.json["value"] == "55", answer.body
        # the socket is a unix socket in the shared folder, made by uWSGI
        sockets = [p for p in running.socket_dir.iterdir() if stat.S_ISSOCK(p.stat().st_mode)]
        assert [p.name for p in sockets] == ["uwsgi.sock"]
        # uWSGI's socket is no TCP port (the image's default is 0.0.0.0:3031):
        # the only one listening is its metrics exporter's (METRICS_PORT). The
        # exporter is a daemon the master attaches once the workers are up, so
        # the app may answer before it listens (seen in CI: no port at all).
        ports = wait_until(
            lambda: _listening_ports(running.containers["uwsgi"]),
            timeout=30,
            interval=0.3,
            what="a TCP port listening in the uwsgi container",
        )
        assert ports == [Settings.from_env(knobs(objects)).METRICS_PORT], ports
        # the knobs of the ConfigMap reached the app, the CPU limits the sizing
        info = running.get("/info").json
        # the shape the entrypoint resolved from the ConfigMap (empty: uWSGI's own)
        shape = Settings.from_env(knobs(objects), server=SERVER)
        assert info["configured"] == {
            "processes": shape.WSGI_PROCESSES,
            "threads": shape.WSGI_THREADS,
        }
        uwsgi_cpus = cpus(container(objects, "uwsgi")["resources"]["limits"]["cpu"])
        assert info["cpus"]["quota"] == uwsgi_cpus
        # NGINX_WORKERS is empty: nginx's 500m limit, rounded up, one worker
        assert "NGINX_WORKERS=1" in running.logs("nginx")
        assert _worker_processes(running.containers["nginx"], "nginx: worker process") == 1
        workers = _worker_processes(running.containers["uwsgi"], "uWSGI worker")
        assert workers == shape.WSGI_PROCESSES


# the health contract in nginx (answered whatever the Host) comes with this snippet
HEALTH_SNIPPET = ROOT / "deploy" / "nginx" / "snippets" / "health.conf"


@pytest.mark.xfail(
    not HEALTH_SNIPPET.exists(),
    reason="nginx's catch-all answers an unknown Host 421 until the health contract "
    "(deploy/nginx/snippets/health.conf) is in this checkout",
    strict=True,
)
def test_the_probes_are_answered_as_the_kubelet_asks(images) -> None:
    nginx = container(render("base"), "nginx")
    with pod(images) as running:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = nginx[probe]["httpGet"]["path"]
            # the kubelet's Host is the pod's IP, in no SERVER_NAMES
            answer = running.get(path, host=KUBELET_HOST, timeout=nginx[probe]["timeoutSeconds"])
            assert answer.status == 200, (probe, path, answer.status, answer.body[:300])


@pytest.mark.parametrize(("quota", "expected"), [("1", 1), (None, None)])
def test_worker_counts_follow_the_cpu_quota(images, quota: str | None, expected) -> None:
    # NGINX_WORKERS empty follows its container's quota; uWSGI's WSGI_PROCESSES
    # empty is its own 8 processes of one thread, whatever the quota
    derive = {"WSGI_PROCESSES": "", "NGINX_WORKERS": ""}
    uwsgi = Settings.from_env(derive, server=SERVER)
    # without a quota the worker count is the host's: its memory is not the
    # manifest's sizing any more, so no memory limit either
    memory = {} if quota else {"memory": None}
    overrides = {name: {"cpus": quota, "env": derive, **memory} for name in POD_IMAGES}
    with pod(images, **overrides) as running:
        info = running.get("/info").json
        detected = info["cpus"]
        if expected is None:
            # no quota: the affinity mask, i.e. the host's CPUs
            assert detected["quota"] is None
            expected = detected["affinity"] or detected["host"]
            assert expected == len(os.sched_getaffinity(0))
        else:
            assert detected["quota"] == float(quota)
        assert detected["available"] == expected
        assert info["configured"]["processes"] == uwsgi.WSGI_PROCESSES
        workers = _worker_processes(running.containers["uwsgi"], "uWSGI worker")
        assert workers == uwsgi.WSGI_PROCESSES
        assert _worker_processes(running.containers["nginx"], "nginx: worker process") == expected
        # and both say so in their log at start
        shape = f"WSGI_PROCESSES={uwsgi.WSGI_PROCESSES} WSGI_THREADS={uwsgi.WSGI_THREADS}"
        for name in POD_IMAGES:
            log = running.logs(name)
            assert re.search(rf"wsgistack\.cpus: {expected} CPUs? available", log), log[-2000:]
            assert f"{shape} NGINX_WORKERS={expected}" in log


def test_nginx_prestop_drains_the_request_in_flight(images) -> None:
    objects = render("base")
    nginx = container(objects, "nginx")
    command = nginx["lifecycle"]["preStop"]["exec"]["command"]
    sleep = int(re.search(r"\bsleep (\d+)\b", " ".join(command))[1])
    grace = pod_spec(objects)["terminationGracePeriodSeconds"]
    with pod(images) as running:
        slow_ms = (sleep + 3) * 1000
        answers: dict[str, object] = {}

        def slow_request() -> None:
            try:
                answers["slow"] = running.get(f"/io?ms={slow_ms}", timeout=grace)
            except OSError as error:  # a cut connection: what a fast stop does
                answers["slow"] = repr(error)

        client = threading.Thread(target=slow_request)
        client.start()
        # fixed: nothing outside uWSGI shows the request arrived; 1 s is far more
        # than its trip takes
        time.sleep(1)
        started = time.monotonic()
        hook = threading.Thread(
            target=lambda: docker(
                "exec", running.containers["nginx"], *command, timeout=grace, check=False
            )
        )
        hook.start()
        # during the sleep the pod still serves: endpoints may still send here
        # (fixed: halfway through the preStop sleep is the moment under test)
        time.sleep(sleep / 2)
        assert running.get("/fib/10").status == 200
        client.join(grace)
        slow = answers.get("slow")
        assert isinstance(slow, Answer) and slow.status == 200, slow
        hook.join(grace)
        # nginx exited by itself, gracefully, before the grace period ran out
        nginx_id = running.containers["nginx"]
        wait_until(
            lambda: (
                docker("inspect", "-f", "{{.State.Running}}", nginx_id).stdout.strip() == "false"
            ),
            timeout=10,
            interval=0.2,
            what="nginx gone after its preStop hook",
        )
        assert docker("inspect", "-f", "{{.State.ExitCode}}", nginx_id).stdout.strip() == "0"
        assert time.monotonic() - started < grace
        # then the kubelet stops the sidecar with what is left of the grace
        # period: uWSGI, with nothing in flight, stops gracefully within it
        left = int(grace - (time.monotonic() - started))
        docker("stop", "--time", str(left), running.containers["uwsgi"], timeout=left + 30)
        code = docker("inspect", "-f", "{{.State.ExitCode}}", running.containers["uwsgi"])
        assert code.stdout.strip() == "0", running.logs("uwsgi")[-2000:]
