"""``wsgistack bench``: its arguments, the checks before anything starts, the run."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from wsgistack.bench import interpreters
from wsgistack.bench.console import print_summary
from wsgistack.bench.endpoints import (
    DOCKER_PORT_VARIABLES,
    docker_endpoint,
    stack_env,
    swarm_stack_name,
)
from wsgistack.bench.execute import execute, interruptible
from wsgistack.bench.locust_engine import BATCH_LOCUSTFILE, LOCUSTFILE, PROBE
from wsgistack.bench.plan import (
    BENCH_WORKLOADS,
    DEFAULT_STACKS,
    MODES,
    WARMUP_SECONDS,
    WORKLOADS,
    WRK,
    Concurrency,
    StackRun,
    build_plan,
    name_list,
    parse_concurrency,
)
from wsgistack.bench.repeats import interleave
from wsgistack.bench.report import write_report
from wsgistack.bench.wrk_engine import wrk_binary
from wsgistack.render import RenderError
from wsgistack.runner import StackError, check_binaries, check_port_free, check_system_python
from wsgistack.stacks import ROOT, STACKS, get_stack

REPORTS_DIR = ROOT / "reports"
DESCRIPTION = """\
Every stack x processes x threads x workload, measured natively (or the compose
stacks with --docker), each cell several times in interleaved rounds: wrk loads
the CPU-bound, sequence and I/O-bound requests and the overhead floor (/up),
answers checked; psutil samples the servers' CPU; Locust replays the original
comparison. The report opens with the recommended stack and processes x threads
per workload (a tie where the figures overlap), then the stack overhead per
request, the floor, the tables, the original comparison replayed and the
project's performance goals."""


stack_list = name_list(STACKS, "stack")


def positive(kind: Callable[[str], float]):
    """An argparse type: a number above 0."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
        return value

    return parse


def add_common_arguments(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument(
        "--port",
        type=positive(int),
        default=default_port,
        help=f"the port every stack listens on in turn (default {default_port})",
    )
    parser.add_argument(
        "--duration",
        type=positive(float),
        help=f"seconds measured per run, after {WARMUP_SECONDS:g} s of warm-up (default: by mode)",
    )
    parser.add_argument(
        "--users", type=positive(int), default=32, help="concurrent users (default 32)"
    )
    parser.add_argument(
        "--repeats",
        type=positive(int),
        help="measure every run this many times, in interleaved rounds (every "
        "setting once, then all again); the answer judges by their spread "
        "(default 3; 1 with --quick and --interpreter)",
    )
    parser.add_argument(
        "--out", type=Path, help="report folder (default reports/<timestamp>, git-ignored)"
    )
    parser.add_argument(
        "--locust-html",
        action="store_true",
        help="keep Locust's own HTML report of every run (about 3 MB each) in locust/",
    )


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "bench",
        help="benchmark the stacks: processes x threads x workload, report with charts",
        description=DESCRIPTION,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="one processes x threads, 2 s per run, once, a few batches of 10: about 2 "
        "minutes (a smoke test)",
    )
    size.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="11 processes x threads, 8 s per run, 3 rounds, every batch: the whole matrix "
        "(about 80 minutes)",
    )
    parser.set_defaults(mode="default")
    parser.add_argument(
        "--stacks",
        type=stack_list,
        help=f"comma-separated (default {','.join(DEFAULT_STACKS)}; with --interpreter: "
        f"{','.join(interpreters.SERVERS)})",
    )
    parser.add_argument(
        "--settings",
        type=lambda text: [parse_concurrency(s) for s in text.split(",")],
        help="processes x threads to run, e.g. 1x1,2x16 (default: by mode)",
    )
    parser.add_argument(
        "--docker",
        action="store_true",
        help="load the compose stacks already up (docker compose --profile STACK up -d) "
        "at the processes x threads they run with, instead of starting native ones",
    )
    parser.add_argument(
        "--swarm",
        type=lambda text: [int(n) for n in text.split(",")],
        metavar="REPLICAS",
        help="load the Docker Swarm stack (deploy/swarm/stack.yaml) deployed with each of "
        "these app replica counts in turn, e.g. 1,2,4 (the images must be built; swarm "
        "mode is entered and left if needed): CPU-bound, sequence and I/O workloads",
    )
    parser.add_argument(
        "--interpreter",
        type=interpreters.interpreter_list,
        metavar="NAMES",
        help="compare interpreters instead of stacks: the servers (gunicorn, granian, "
        f"apache) in their images on each of these ({', '.join(interpreters.INTERPRETERS)}), "
        "e.g. debian,gil,freethreaded, with `docker run` on the same CPUs: CPU-bound, "
        "sequence and I/O workloads at 1x1, 1x2, 2x1 (or --settings), memory at 1x16, "
        "2x8, 16x1 (not with --quick); the images must be built (make bench-interpreters)",
    )
    parser.add_argument(
        "--cpuset",
        help="with --interpreter: the CPUs every container is pinned to, as docker run's "
        "--cpuset-cpus takes them (default: every CPU this process may use)",
    )
    add_common_arguments(parser, default_port=8090)
    parser.set_defaults(func=main)


def preflight(stacks: list[str], port: int, docker: bool) -> list[str]:
    """Everything that can be checked before a server starts; the stacks to run."""
    if importlib.util.find_spec("locust") is None:
        raise StackError("Locust is not installed in this virtualenv: `make venv`")
    for path in (LOCUSTFILE, BATCH_LOCUSTFILE, PROBE):
        if not path.is_file():
            raise StackError(f"{path} is missing")
    if docker:
        natives = [s for s in stacks if s not in DOCKER_PORT_VARIABLES]
        stacks = [s for s in stacks if s in DOCKER_PORT_VARIABLES]
        if natives:
            print(
                f"wsgistack bench: --docker: no compose service for {', '.join(natives)}; skipped",
                file=sys.stderr,
            )
        for stack in stacks:
            docker_endpoint(stack)
        return stacks
    for stack in stacks:
        spec = get_stack(stack)
        check_binaries(spec)
        check_system_python(spec)
        # render its configs once, so a broken one is reported before anything runs
        with tempfile.TemporaryDirectory(prefix="wsgistack-bench-check-") as scratch:
            try:
                spec.servers(stack_env(Concurrency(1, 1), port), Path(scratch))
            except RenderError as exc:
                raise StackError(f"the {stack} stack's configs: {exc}") from None
    check_port_free("127.0.0.1", port)
    return stacks


def interpreter_preflight(servers: list[str], names: list[str], port: int) -> list[str]:
    """The servers comparable on these interpreters, after checking that wrk, Docker
    and every image are there."""
    if wrk_binary() is None:
        raise StackError("--interpreter loads with wrk: apt-get install wrk (make deps)")
    chosen = interpreters.servers_of(servers, names)
    if not chosen:
        raise StackError(
            f"none of {', '.join(servers)} has an image on two of {', '.join(names)} "
            f"(images: {', '.join(interpreters.SERVERS)})"
        )
    missing = docker_images_missing(
        {
            f"{interpreters.INTERPRETERS[n].images[s].name}:{interpreters.image_tag()}": n
            for s in chosen
            for n in names
            if s in interpreters.INTERPRETERS[n].images
        }
    )
    if missing:
        builds = sorted({interpreters.INTERPRETERS[n].build for n in missing.values()})
        raise StackError(
            f"missing images: {', '.join(missing)}; build them: make bench-interpreters, "
            f"or {'; '.join(builds)} (with the same IMAGE_TAG)"
        )
    check_port_free("127.0.0.1", port)
    return chosen


def docker_images_missing(images: dict[str, str]) -> dict[str, str]:
    """The images (of ``images``' keys) Docker does not have; no Docker is an error."""
    if shutil.which("docker") is None:
        raise StackError("--interpreter runs containers: no docker client (make docker-deps)")
    missing = {}
    for image, name in images.items():
        result = subprocess.run(
            ["docker", "image", "inspect", image],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            if "Cannot connect" in result.stderr:
                raise StackError(f"Docker: {result.stderr.strip()} (make docker-deps)")
            missing[image] = name
    return missing


def check_engines(plan: list[StackRun], workloads: dict = WORKLOADS) -> None:
    """wrk loads the benchmark's workloads: missing, nothing could be measured."""
    if wrk_binary() is None and any(
        workloads[w].engine == WRK for run in plan for w in run.workloads
    ):
        raise StackError("wsgistack bench loads with wrk: apt-get install wrk (make deps)")


def new_report_dir(out: Path | None, prefix: str = "") -> Path:
    out_dir = out or REPORTS_DIR / f"{prefix}{datetime.now():%Y%m%d-%H%M%S}"
    out_dir.mkdir(parents=True, exist_ok=True)
    # absolute: the load generators run in folders of their own
    return out_dir.resolve()


def main(args: argparse.Namespace) -> int:
    mode = MODES[args.mode]
    seconds = args.duration or mode.seconds
    if args.interpreter:
        return main_interpreters(args, mode, seconds)
    if args.cpuset:
        raise StackError("--cpuset pins the containers of --interpreter only")
    args.stacks = args.stacks or list(DEFAULT_STACKS)
    if args.docker and args.settings:
        raise StackError(
            "--docker measures the compose stacks at the processes x threads they were started "
            "with (WSGI_PROCESSES and WSGI_THREADS in .env); --settings cannot change it"
        )
    if args.swarm and (args.docker or args.settings):
        raise StackError("--swarm runs the swarm stack at its own processes x threads alone")
    stacks = [] if args.swarm else preflight(args.stacks, args.port, args.docker)
    if args.swarm:
        # no replay: the batches compare the development server with the stacks
        plan = [
            StackRun(swarm_stack_name(n), Concurrency(0, 0), list(BENCH_WORKLOADS), {})
            for n in args.swarm
        ]
    elif args.docker:
        plan = [
            StackRun(
                s, docker_endpoint(s).concurrency, list(BENCH_WORKLOADS), dict(mode.replay_sizes)
            )
            for s in stacks
        ]
    else:
        plan = build_plan(stacks, mode, args.settings)
    check_engines(plan)
    plan = interleave(plan, args.repeats or mode.repeats)
    out_dir = new_report_dir(args.out)
    with interruptible():
        outcome = execute(
            plan,
            port=args.port,
            users=args.users,
            seconds=seconds,
            out_dir=out_dir,
            docker=args.docker,
            engine_html=args.locust_html,
        )
    verdicts = write_report(
        out_dir,
        outcome,
        mode=mode,
        users=args.users,
        seconds=seconds,
        docker=args.docker or bool(args.swarm),
        engine_html=args.locust_html,
    )
    return finish(outcome, verdicts, out_dir)


def finish(outcome, verdicts, out_dir: Path) -> int:
    print_summary(outcome, verdicts, out_dir)
    if outcome.interrupted:
        print("wsgistack bench: interrupted; every server was stopped", file=sys.stderr)
        return 130
    return 0


def main_interpreters(args: argparse.Namespace, mode, seconds: float) -> int:
    """``--interpreter``: the servers in their images on each interpreter, side by side."""
    if args.docker or args.swarm:
        raise StackError("--interpreter starts its own containers: not with --docker or --swarm")
    servers = interpreter_preflight(
        args.stacks or list(interpreters.SERVERS), args.interpreter, args.port
    )
    shapes = tuple(args.settings) if args.settings else interpreters.SCALING_SHAPES
    memory = () if args.mode == "quick" else interpreters.MEMORY_SHAPES
    plan = interleave(
        interpreters.build_plan(servers, args.interpreter, shapes, memory), args.repeats or 1
    )
    cpuset = args.cpuset or interpreters.default_cpuset()
    out_dir = new_report_dir(args.out, prefix="interpreters-")
    with interruptible():
        outcome = execute(
            plan,
            port=args.port,
            users=args.users,
            seconds=seconds,
            out_dir=out_dir,
            workloads=interpreters.AXIS_WORKLOADS,
            cpuset=cpuset,
        )
    write_report(
        out_dir,
        outcome,
        mode=mode,
        users=args.users,
        seconds=seconds,
        title="wsgistack bench --interpreter",
        with_answer=False,
        with_goals=False,
        docker=True,
        cpuset=cpuset,
    )
    return finish(outcome, [], out_dir)
