"""Where the load goes: a native stack started for the run, or a compose stack
already up, or an image of the interpreter axis run for the run; what answers
there (its Python), and its warm-up."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from wsgistack.bench.plan import Concurrency, StackRun
from wsgistack.runner import StackError, http_get, run_stack
from wsgistack.settings import Settings
from wsgistack.stacks import get_stack
from wsgistack.wait import wait_until

# seconds an idle stack gets to stop before it is killed: the benchmark stops a
# stack only after its load has ended, so there is nothing in flight to drain
IDLE_STOP_GRACE = 5.0
# the published ports of the compose stacks (compose.yaml), and the variables moving them
DOCKER_PORT_VARIABLES = {
    "uwsgi": "UWSGI_HTTP_PORT",
    "apache": "APACHE_HTTP_PORT",
    "gunicorn": "GUNICORN_HTTP_PORT",
    "granian": "GRANIAN_HTTP_PORT",
}
# a swarm run's stack name: "swarm-2" is nginx in front of 2 uWSGI replicas
SWARM_PREFIX = "swarm-"
# a stack name of the benchmark's own, so that it never removes a user's stack
SWARM_BENCH_NAME = "wsgistack-bench"
_SERVER_CPU = re.compile(r"\bcpu;dur=([0-9.]+)")
# no proxy from the environment: the load stays on 127.0.0.1
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Endpoint:
    """A started stack: where it answers and which processes are its servers."""

    stack: str
    concurrency: Concurrency
    base_url: str
    # the server processes' roots; none for containers (out of sight from here)
    pids: list[int]
    # the Python serving the app, as its /info says
    python: str = ""
    # the interpreter axis: its name, and the build's flags that matter to speed
    interpreter: str = ""
    python_build: str = ""
    # the round of the plan this start is in (repeats.interleave)
    repeat: int = 1
    # the app server's metrics (METRICS_PORT), where in reach: native stacks
    metrics_url: str = ""

    def run_id(self, workload: str) -> str:
        """A run's name in the report's files: stack, processes x threads,
        workload, and the round after the first."""
        round_ = f"-r{self.repeat}" if self.repeat > 1 else ""
        return f"{self.stack}-{self.concurrency.label}-{workload}{round_}"


def python_description(base_url: str) -> str:
    """The Python serving the app, as its /info says: "CPython 3.11.2" (+ " no-GIL")."""
    with contextlib.suppress(OSError, ValueError):
        status, body = http_get(base_url + "/info", timeout=3)
        if status == 200:
            info = json.loads(body)
            gil = "" if info.get("gil_enabled", True) else " no-GIL"
            return f"{info.get('implementation', '')} {info.get('python', '')}{gil}".strip()
    return ""


def stack_env(concurrency: Concurrency, port: int, **overrides) -> Settings:
    """The stack's knobs from the environment, with the processes x threads under test on top."""
    return Settings.from_env(
        WSGI_PROCESSES=concurrency.processes,
        WSGI_THREADS=concurrency.threads,
        PORT=port,
        # the benchmark's traffic stays on this machine
        BIND_ADDRESS="127.0.0.1",
        **overrides,
    )


def compress(path: Path) -> None:
    """path -> path.gz: access logs of thousands of requests a second compress ~15 x.
    Appended: a stack started again in a later round adds to its .gz (zcat reads
    every part)."""
    with open(path, "rb") as source, gzip.open(f"{path}.gz", "ab") as target:
        shutil.copyfileobj(source, target)
    path.unlink()


@contextlib.contextmanager
def native_endpoint(run: StackRun, port: int, log_dir: Path, **overrides) -> Iterator[Endpoint]:
    """A native stack started at the run's processes x threads; its log in log_dir,
    compressed once it stopped cleanly (left as it is for a stack that failed)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = stack_env(run.concurrency, port, **overrides)
    path = log_dir / f"{run.stack}-{run.concurrency.label}.log"
    with (
        open(path, "a", encoding="utf-8") as log,
        run_stack(get_stack(run.stack), settings, log=log) as stack,
    ):
        pids = [proc.pid for proc in stack.procs.values()]
        try:
            metrics = stack.settings
            # the development server has no metrics endpoint
            has_metrics = metrics.METRICS and run.stack != "devserver"
            yield Endpoint(
                run.stack,
                run.concurrency,
                stack.base_url,
                pids,
                python_description(stack.base_url),
                metrics_url=f"http://127.0.0.1:{metrics.METRICS_PORT}/metrics"
                if has_metrics
                else "",
            )
        finally:
            stack.stop(grace=IDLE_STOP_GRACE)
    compress(path)


def swarm_stack_name(replicas: int) -> str:
    """The name a swarm run has in the results: the replicas are its point."""
    return f"{SWARM_PREFIX}{replicas}"


@contextlib.contextmanager
def swarm_endpoint(stack: str, port: int) -> Iterator[Endpoint]:
    """The swarm stack (deploy/swarm/stack.yaml, images tagged IMAGE_TAG) deployed
    with the run's number of app replicas on ``port`` for the ``with`` block,
    removed after it; its
    processes x threads (per replica) as its /info reports it."""
    from wsgistack import swarm  # docker-only: imported when a swarm run starts

    replicas = int(stack.removeprefix(SWARM_PREFIX))
    try:
        tag = os.environ.get("IMAGE_TAG", "latest")
        with swarm.deployed(replicas, name=SWARM_BENCH_NAME, port=port, image_tag=tag) as base_url:
            status, body = http_get(base_url + "/info", timeout=5)
            configured = json.loads(body).get("configured") or {} if status == 200 else {}
            pxt = Concurrency(configured.get("processes") or 0, configured.get("threads") or 0)
            yield Endpoint(stack, pxt, base_url, [], python_description(base_url))
    except swarm.SwarmError as exc:
        raise StackError(f"swarm: {exc}") from None


def docker_port(stack: str) -> int:
    return int(os.environ.get(DOCKER_PORT_VARIABLES[stack], get_stack(stack).default_port))


def docker_endpoint(stack: str) -> Endpoint:
    """A compose stack that is already up; its processes x threads as its /info reports it."""
    base_url = f"http://127.0.0.1:{docker_port(stack)}"
    hint = f"start it with `docker compose --profile {stack} up -d --wait`"
    try:
        status, body = http_get(base_url + "/info", timeout=3)
    except OSError as exc:
        raise StackError(
            f"the compose stack {stack} is not up at {base_url} ({exc}); {hint}"
        ) from None
    if status != 200:
        raise StackError(f"the compose stack {stack} at {base_url} answers {status}; {hint}")
    configured = json.loads(body).get("configured") or {}
    pxt = Concurrency(configured.get("processes") or 0, configured.get("threads") or 0)
    # its processes live in containers: their CPU is not sampled from here
    return Endpoint(stack, pxt, base_url, [], python_description(base_url))


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _wait_for_info(base_url: str, container: str, timeout: float) -> None:
    """Until the app answers /info; a container that ended or never answers is an error."""

    def log_tail() -> str:
        return _docker("logs", "--tail", "5", container).stderr.strip().replace("\n", " | ")

    def answers() -> bool:
        with contextlib.suppress(OSError):
            if http_get(base_url + "/info", timeout=2)[0] == 200:
                return True
        state = _docker("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
        if state not in ("created", "running"):
            raise StackError(
                f"the container ended ({state}) before {base_url} answered: {log_tail()}"
            )
        return False

    wait_until(
        answers,
        timeout=timeout,
        interval=0.3,
        what=f"the container answering /info at {base_url}",
        error=StackError,
        detail=log_tail,
    )


# image -> the speed flags of its interpreter's build: probed once per image
_BUILD_FLAGS: dict[str, str] = {}


def _build_flags(image: str, container: str) -> str:
    """The image's interpreter's speed flags, read in its running ``container``
    the first time; "" if the probe failed (tried again next time)."""
    from wsgistack.bench import interpreters

    if image not in _BUILD_FLAGS:
        probe = _docker(
            "exec", container, interpreters.VENV_PYTHON, "-c", interpreters.PYTHON_PROBE
        )
        if probe.returncode != 0:
            return ""
        build = json.loads(probe.stdout)
        _BUILD_FLAGS[image] = interpreters.speed_flags(build["config_args"], build["opt"])
    return _BUILD_FLAGS[image]


@contextlib.contextmanager
def container_endpoint(run: StackRun, port: int, log_dir: Path, cpuset: str) -> Iterator[Endpoint]:
    """The run's server in its interpreter's image (interpreters.py), run at the run's
    processes x threads on the CPUs of ``cpuset``, published on 127.0.0.1:``port``;
    removed after the ``with`` block, its log in log_dir. Its processes are the
    host's too: the container's PID 1 (the server: the entrypoint execs it) is the
    root whose tree is sampled, as a native stack's."""
    from wsgistack.bench import interpreters

    image = interpreters.image_of(run)
    name = f"{image.name}:{interpreters.image_tag()}"
    started = _docker(
        "run",
        "--detach",
        "--cpuset-cpus",
        cpuset,
        "--read-only",
        "--tmpfs",
        "/tmp",
        # nothing but the benchmark sends a request
        "--no-healthcheck",
        "--env",
        f"WSGI_PROCESSES={run.concurrency.processes}",
        "--env",
        f"WSGI_THREADS={run.concurrency.threads}",
        "--publish",
        f"127.0.0.1:{port}:{image.port}",
        "--label",
        "wsgistack.bench=interpreter",
        name,
        *image.command,
    )
    if started.returncode != 0:
        raise StackError(f"docker run {name}: {started.stderr.strip()[-400:]}")
    container = started.stdout.strip()
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{run.stack}-{run.concurrency.label}.log"
    try:
        base_url = f"http://127.0.0.1:{port}"
        # 16 processes start on 2 cores in a few seconds; an image's first start longer
        _wait_for_info(base_url, container, timeout=120)
        pid = int(_docker("inspect", "--format", "{{.State.Pid}}", container).stdout)
        yield Endpoint(
            run.stack,
            run.concurrency,
            base_url,
            [pid],
            python_description(base_url),
            run.interpreter,
            _build_flags(name, container),
        )
    finally:
        logs = _docker("logs", container)
        path.write_text(logs.stdout + logs.stderr, encoding="utf-8")
        _docker("stop", "--time", str(int(IDLE_STOP_GRACE)), container)
        _docker("rm", "--force", container)
        compress(path)


@contextlib.contextmanager
def open_endpoint(
    run: StackRun, port: int, out_dir: Path, docker: bool, overrides: dict, cpuset: str = ""
):
    if run.interpreter:
        with container_endpoint(run, port, out_dir / "logs", cpuset) as endpoint:
            yield endpoint
    elif run.stack.startswith(SWARM_PREFIX):
        with swarm_endpoint(run.stack, port) as endpoint:
            yield endpoint
    elif docker:
        yield docker_endpoint(run.stack)
    else:
        with native_endpoint(run, port, out_dir / "logs", **overrides) as endpoint:
            yield endpoint


def _get_cpu_ms(url: str) -> float | None:
    """GET url; the app's CPU ms from its Server-Timing, None if it sent none or failed."""
    try:
        with _DIRECT.open(url, timeout=30) as resp:
            resp.read()
            header = resp.headers.get("Server-Timing") or ""
    except urllib.error.HTTPError as exc:
        header = exc.headers.get("Server-Timing") or ""
    except OSError:
        # a warm-up request that fails is measured again by the run that follows
        return None
    match = _SERVER_CPU.search(header)
    return float(match[1]) if match else None


def warm_up(endpoint: Endpoint, path: str, rounds: int = 2) -> list[float]:
    """Send every worker thread of the stack a few requests of ``path`` at once, so
    no measurement meets a cold process (imports, first connections); the app's
    CPU ms per request from their Server-Timing, where they carry it."""
    slots = max(1, endpoint.concurrency.slots)
    count = min(rounds * slots, 64)
    with ThreadPoolExecutor(max_workers=min(slots, 32)) as pool:
        answers = list(pool.map(lambda _: _get_cpu_ms(endpoint.base_url + path), range(count)))
    return [ms for ms in answers if ms is not None]
