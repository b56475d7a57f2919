"""nginx -> N uWSGI replicas on Docker Swarm: deploy, scale and remove the stack
of deploy/swarm/stack.yaml, and wait until it really serves.

    wsgistack swarm deploy --replicas 2 [--port 8090] [--tag latest] [--init]
    wsgistack swarm scale --replicas 4
    wsgistack swarm rm [--leave]

"Ready" means: every service runs its desired number of tasks (a task with a
healthcheck counts as running once healthy), and requests through nginx's
published port reach exactly that many distinct replicas (``/info`` reports
each one's host name), so nginx has picked up every replica.

Code that needs a stack for a while (the benchmark) uses ``deployed()``::

    with swarm.deployed(replicas=4, port=8090) as base_url:
        ...  # load base_url

which initializes swarm mode if the engine is not in it (and leaves it again
at the end), deploys, waits until ready, and removes the stack afterwards.
The images are compose.yaml's (``docker compose --profile uwsgi build``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from wsgistack.runner import http_get
from wsgistack.settings import Settings
from wsgistack.wait import wait_until

ROOT = Path(__file__).resolve().parents[1]
STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yaml"
DEFAULT_NAME = "wsgistack"
# not compose's 8080, so that both can run side by side
DEFAULT_PORT = 8090
APP_SERVICE = "uwsgi-app"
PROXY_SERVICE = "uwsgi-nginx"
WORKER_SERVICE = "worker"
IMAGES = ("wsgistack-uwsgi", "wsgistack-nginx", "wsgistack-valkey", "wsgistack-worker")
# the address swarm mode advertises on a one-node swarm (docs/swarm.md)
ADVERTISE_ADDR = "127.0.0.1"
READY_TIMEOUT = 180.0
REMOVE_TIMEOUT = 120.0
POLL = 0.5


class SwarmError(RuntimeError):
    """The engine cannot deploy, scale or remove the stack; the message says why."""


def docker(*args: str, timeout: float = 60, env: Mapping[str, str] | None = None) -> str:
    """Run ``docker ARGS``; its stdout, or SwarmError with its stderr."""
    try:
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except FileNotFoundError:
        raise SwarmError(
            "no docker client on PATH (docker/install-engine.sh installs Docker)"
        ) from None
    except subprocess.TimeoutExpired:
        raise SwarmError(f"docker {' '.join(args)} took more than {timeout:.0f} s") from None
    if result.returncode != 0:
        raise SwarmError(f"docker {' '.join(args)}: {result.stderr.strip() or result.stdout}")
    return result.stdout


def swarm_active() -> bool:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() == "active"


def init_swarm() -> bool:
    """Put the engine into swarm mode if it is not; True if this call did."""
    if swarm_active():
        return False
    docker("swarm", "init", "--advertise-addr", ADVERTISE_ADDR)
    return True


def leave_swarm() -> None:
    docker("swarm", "leave", "--force")


def service_name(name: str, service: str) -> str:
    return f"{name}_{service}"


def stack_env(
    replicas: int, port: int, image_tag: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment `docker stack deploy` fills stack.yaml's ``${VAR}`` from.

    STOP_GRACE_PERIOD follows the timeout ladder of the REQUEST_TIMEOUT in
    effect, and WORKER_STOP_GRACE_PERIOD the job workers' JOB_STOP_TIMEOUT (a
    YAML file cannot add), unless they are set explicitly."""
    env = dict(os.environ)
    env.update(extra or {})
    env.update(APP_REPLICAS=str(replicas), SWARM_HTTP_PORT=str(port), IMAGE_TAG=image_tag)
    settings = Settings.from_env(env)
    env.setdefault("STOP_GRACE_PERIOD", f"{settings.STOP_GRACE_PERIOD}s")
    env.setdefault("WORKER_STOP_GRACE_PERIOD", f"{settings.WORKER_STOP_GRACE_PERIOD}s")
    return env


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def check_images(image_tag: str) -> None:
    missing = []
    for image in IMAGES:
        try:
            docker("image", "inspect", "--format", "{{.Id}}", f"{image}:{image_tag}")
        except SwarmError:
            missing.append(f"{image}:{image_tag}")
    if missing:
        raise SwarmError(
            f"missing images {', '.join(missing)}: build them with "
            f"`IMAGE_TAG={image_tag} docker compose --profile uwsgi --profile jobs build`"
        )


def running_tasks(name: str) -> dict[str, tuple[int, int]]:
    """Each service of the stack: (tasks running, tasks desired)."""
    out = docker(
        "service",
        "ls",
        "--filter",
        f"label=com.docker.stack.namespace={name}",
        "--format",
        "{{.Name}} {{.Replicas}}",
    )
    tasks = {}
    for line in out.splitlines():
        service, replicas = line.split()[:2]
        running, desired = replicas.split("/")
        tasks[service.removeprefix(f"{name}_")] = (int(running), int(desired))
    return tasks


def replica_hostnames(url: str, requests: int) -> set[str]:
    """The distinct replicas that ``requests`` GETs of /info through nginx reached."""
    seen = set()
    for _ in range(requests):
        try:
            status, body = http_get(f"{url}/info", timeout=5)
        except OSError:
            continue
        if status == 200:
            seen.add(json.loads(body)["hostname"])
    return seen


def wait_ready(name: str, replicas: int, port: int, timeout: float = READY_TIMEOUT) -> str:
    """Wait until the stack runs ``replicas`` healthy app tasks and nginx reaches
    exactly that many; the base URL. SwarmError with the state on timeout."""
    url = base_url(port)
    state = "nothing yet"

    def ready() -> bool:
        nonlocal state
        tasks = running_tasks(name)
        state = f"tasks {tasks}"
        if tasks.get(APP_SERVICE) != (replicas, replicas) or tasks.get(PROXY_SERVICE) != (1, 1):
            return False
        # the job queue's services too (Valkey, the workers): each at its count
        if any(running != desired for running, desired in tasks.values()):
            return False
        # round robin over `replicas` addresses: 4 rounds reach each one
        seen = replica_hostnames(url, 4 * replicas)
        state = f"tasks {tasks}; nginx reached {len(seen)} replicas: {sorted(seen)}"
        return len(seen) == replicas

    wait_until(
        ready,
        timeout=timeout,
        interval=POLL,
        what=f"stack {name} ready with {replicas} replicas",
        error=SwarmError,
        detail=lambda: f"{state}\n{task_errors(name)}",
    )
    return url


def task_errors(name: str) -> str:
    """The recent tasks of the stack and their errors, for a failure message."""
    try:
        return docker(
            "stack",
            "ps",
            name,
            "--no-trunc",
            "--format",
            "{{.Name}} {{.DesiredState}} {{.CurrentState}} {{.Error}}",
        )
    except SwarmError as exc:
        return str(exc)


def deploy(
    replicas: int = 2,
    *,
    name: str = DEFAULT_NAME,
    port: int = DEFAULT_PORT,
    image_tag: str = "latest",
    env: Mapping[str, str] | None = None,
    timeout: float = READY_TIMEOUT,
) -> str:
    """Deploy (or update) the stack with ``replicas`` app replicas; its base URL
    once ready. The engine must be in swarm mode (``init_swarm()``)."""
    if replicas < 1:
        raise SwarmError(f"--replicas must be 1 or more, not {replicas}")
    if not swarm_active():
        raise SwarmError(
            "the engine is not in swarm mode: `docker swarm init --advertise-addr "
            f"{ADVERTISE_ADDR}` (or `wsgistack swarm deploy --init`)"
        )
    check_images(image_tag)
    docker(
        "stack",
        "deploy",
        "--compose-file",
        str(STACK_FILE),
        "--prune",
        name,
        env=stack_env(replicas, port, image_tag, env),
        timeout=120,
    )
    return wait_ready(name, replicas, port, timeout)


def scale(
    replicas: int,
    *,
    name: str = DEFAULT_NAME,
    port: int = DEFAULT_PORT,
    timeout: float = READY_TIMEOUT,
) -> str:
    """Set the app service's replicas; the base URL once nginx reaches them all."""
    if replicas < 1:
        raise SwarmError(f"--replicas must be 1 or more, not {replicas}")
    if APP_SERVICE not in running_tasks(name):
        raise SwarmError(f"no stack {name} is deployed: `wsgistack swarm deploy` first")
    docker("service", "scale", "--detach", f"{service_name(name, APP_SERVICE)}={replicas}")
    return wait_ready(name, replicas, port, timeout)


def leftovers(name: str) -> list[str]:
    """The stack's services, containers and networks that still exist."""
    label = f"label=com.docker.stack.namespace={name}"
    found = []
    for kind, args in (
        ("service", ("service", "ls", "--quiet", "--filter", label)),
        ("container", ("ps", "--all", "--quiet", "--filter", label)),
        ("network", ("network", "ls", "--quiet", "--filter", label)),
    ):
        found += [f"{kind} {ident}" for ident in docker(*args).split()]
    return found


def remove(
    name: str = DEFAULT_NAME, timeout: float = REMOVE_TIMEOUT, volumes: bool = False
) -> None:
    """Remove the stack and wait until its containers and networks are gone
    (`docker stack rm` returns before they are); with ``volumes``, then its
    volumes too (Valkey's data: every queued job and result). Nothing to do
    outside swarm mode."""
    if not swarm_active():
        return
    if leftovers(name):
        # the job workers first, while Valkey answers. `docker stack rm` stops
        # every service at once: a worker whose Valkey vanished (no refusal: the
        # task's address is gone) blocks in its shutdown on the dead connection
        # and is killed at its stop grace period (40 s, exit 137). Removed
        # alone, it is gone in about 8 s. Measured on Engine 20.10, Celery 5.7
        # (docs/swarm.md)
        worker = service_name(name, WORKER_SERVICE)
        if docker("service", "ls", "--quiet", "--filter", f"name={worker}").split():
            docker("service", "rm", worker)
            label = f"label=com.docker.swarm.service.name={worker}"
            wait_until(
                lambda: not docker("ps", "--all", "--quiet", "--filter", label).split(),
                timeout=timeout,
                interval=POLL,
                what=f"service {worker} gone",
                error=SwarmError,
            )
        docker("stack", "rm", name)
        wait_until(
            lambda: not leftovers(name),
            timeout=timeout,
            interval=POLL,
            what=f"stack {name} gone",
            error=SwarmError,
            detail=lambda: f"left: {leftovers(name)}",
        )
    if volumes:
        label = f"label=com.docker.stack.namespace={name}"
        for volume in docker("volume", "ls", "--quiet", "--filter", label).split():
            docker("volume", "rm", volume)


@contextlib.contextmanager
def deployed(
    replicas: int = 2,
    *,
    name: str = DEFAULT_NAME,
    port: int = DEFAULT_PORT,
    image_tag: str = "latest",
    env: Mapping[str, str] | None = None,
    timeout: float = READY_TIMEOUT,
) -> Iterator[str]:
    """The stack deployed with ``replicas`` app replicas for the ``with`` block;
    yields its base URL. Removed afterwards with its volumes; swarm mode is
    initialized if needed and left again afterwards only if this call
    initialized it."""
    initialized = init_swarm()
    try:
        yield deploy(replicas, name=name, port=port, image_tag=image_tag, env=env, timeout=timeout)
    finally:
        try:
            remove(name, volumes=True)
        finally:
            if initialized:
                leave_swarm()


# --- the command ------------------------------------------------------------


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "swarm", help="deploy, scale or remove nginx -> N uWSGI replicas on Docker Swarm"
    )
    parser.set_defaults(func=main)
    actions = parser.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--name", default=DEFAULT_NAME, help=f"stack name (default {DEFAULT_NAME})")
        p.add_argument(
            "--port",
            type=int,
            default=DEFAULT_PORT,
            help=f"nginx's published port (default {DEFAULT_PORT})",
        )
        p.add_argument(
            "--timeout",
            type=float,
            default=READY_TIMEOUT,
            help=f"seconds to wait until ready (default {READY_TIMEOUT:.0f})",
        )

    dep = actions.add_parser("deploy", help="deploy or update the stack, wait until it serves")
    common(dep)
    dep.add_argument("--replicas", type=int, default=2, help="app replicas (default 2)")
    dep.add_argument(
        "--tag",
        default=os.environ.get("IMAGE_TAG", "latest"),
        help="image tag of wsgistack-uwsgi/-nginx (default $IMAGE_TAG or latest)",
    )
    dep.add_argument(
        "--init",
        action="store_true",
        help=f"put the engine into swarm mode first (advertising {ADVERTISE_ADDR}) if it is not",
    )

    sc = actions.add_parser("scale", help="set the app's replicas, wait until nginx reaches all")
    common(sc)
    sc.add_argument("--replicas", type=int, required=True, help="app replicas")

    rm = actions.add_parser("rm", help="remove the stack and wait until its networks are gone")
    rm.add_argument("--name", default=DEFAULT_NAME, help=f"stack name (default {DEFAULT_NAME})")
    rm.add_argument(
        "--volumes",
        action="store_true",
        help="also delete its volumes: Valkey's data, every queued job and result",
    )
    rm.add_argument("--leave", action="store_true", help="then take the engine out of swarm mode")


def main(args: argparse.Namespace) -> int:
    try:
        if args.action == "deploy":
            if args.init and init_swarm():
                print(f"wsgistack: swarm mode initialized (advertising {ADVERTISE_ADDR})")
            url = deploy(
                args.replicas,
                name=args.name,
                port=args.port,
                image_tag=args.tag,
                timeout=args.timeout,
            )
            print(f"wsgistack: stack {args.name} serves {args.replicas} replicas at {url}")
        elif args.action == "scale":
            url = scale(args.replicas, name=args.name, port=args.port, timeout=args.timeout)
            print(f"wsgistack: stack {args.name} serves {args.replicas} replicas at {url}")
        else:
            remove(args.name, volumes=args.volumes)
            print(f"wsgistack: stack {args.name} removed")
            if args.leave and swarm_active():
                leave_swarm()
                print("wsgistack: left swarm mode")
    except SwarmError as exc:
        print(f"wsgistack: error: {exc}", file=sys.stderr)
        return 1
    return 0
