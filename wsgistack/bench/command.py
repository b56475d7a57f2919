"""``wsgistack bench``: its arguments, the checks before anything starts, the run."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

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
    parse_concurrency,
)
from wsgistack.bench.report import write_report
from wsgistack.bench.wrk_engine import wrk_binary
from wsgistack.render import RenderError
from wsgistack.runner import StackError, check_binaries, check_port_free, check_system_python
from wsgistack.stacks import ROOT, STACKS, get_stack

REPORTS_DIR = ROOT / "reports"
DESCRIPTION = """\
Every stack x processes x threads x workload, measured natively (or the compose
stacks with --docker): Locust loads the CPU-bound, sequence and I/O-bound
requests, wrk the overhead floor (/up); psutil samples the servers' CPU. The
report opens with the recommended stack and processes x threads per workload,
then the stack overhead per request, the floor, the tables, the original
comparison replayed and the project's performance goals."""


def stack_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STACKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown stack {', '.join(unknown) or text!r}; choose from: {', '.join(STACKS)}"
        )
    return list(dict.fromkeys(names))


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
        "--quick", dest="mode", action="store_const", const="quick",
        help="one processes x threads, 2 s per run, a few batches of 10: about 2 minutes "
        "(a smoke test)",
    )  # fmt: skip
    size.add_argument(
        "--full", dest="mode", action="store_const", const="full",
        help="11 processes x threads, 15 s per run, every batch: the whole matrix (about an hour)",
    )  # fmt: skip
    parser.set_defaults(mode="default")
    parser.add_argument(
        "--stacks",
        type=stack_list,
        default=list(DEFAULT_STACKS),
        help=f"comma-separated (default {','.join(DEFAULT_STACKS)})",
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
            print(f"wsgistack bench: --docker: no compose service for {', '.join(natives)}; "
                  "skipped", file=sys.stderr)  # fmt: skip
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


def without_missing_engines(plan: list[StackRun]) -> list[StackRun]:
    """wrk missing: the floor is left out, saying so."""
    if wrk_binary() is not None:
        return plan
    print("wsgistack bench: wrk is not installed (apt-get install wrk, or make deps): "
          "the overhead floor is left out", file=sys.stderr)  # fmt: skip
    for run in plan:
        run.workloads = [w for w in run.workloads if WORKLOADS[w].engine != WRK]
    return [run for run in plan if run.workloads or run.replays]


def new_report_dir(out: Path | None, prefix: str = "") -> Path:
    out_dir = out or REPORTS_DIR / f"{prefix}{datetime.now():%Y%m%d-%H%M%S}"
    out_dir.mkdir(parents=True, exist_ok=True)
    # absolute: the load generators run in folders of their own
    return out_dir.resolve()


def main(args: argparse.Namespace) -> int:
    mode = MODES[args.mode]
    seconds = args.duration or mode.seconds
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
        plan = [StackRun(swarm_stack_name(n), Concurrency(0, 0), list(BENCH_WORKLOADS), {})
                for n in args.swarm]  # fmt: skip
    elif args.docker:
        plan = [StackRun(s, docker_endpoint(s).concurrency, list(BENCH_WORKLOADS),
                         dict(mode.replay_sizes)) for s in stacks]  # fmt: skip
    else:
        plan = build_plan(stacks, mode, args.settings)
    plan = without_missing_engines(plan)
    out_dir = new_report_dir(args.out)
    with interruptible():
        outcome = execute(
            plan, port=args.port, users=args.users, seconds=seconds, out_dir=out_dir,
            docker=args.docker, engine_html=args.locust_html,
        )  # fmt: skip
    verdicts = write_report(
        out_dir, outcome, mode=mode, users=args.users, seconds=seconds,
        docker=args.docker or bool(args.swarm),
        engine_html=args.locust_html,
    )  # fmt: skip
    print_summary(outcome, verdicts, out_dir)
    if outcome.interrupted:
        print("wsgistack bench: interrupted; every server was stopped", file=sys.stderr)
        return 130
    return 0
