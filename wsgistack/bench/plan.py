"""The matrix: workloads, processes x threads, the modes, and the plan of stack runs.

Pure data and arithmetic: nothing here starts a server.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# seconds of load before the statistics start, so no run measures its ramp
WARMUP_SECONDS = 0.5
# users sending each batch of the replay, as `ab -c 10` would
BATCH_USERS = 10
DEFAULT_STACKS = ("uwsgi", "apache", "gunicorn", "devserver", "uwsgi-direct")
# the load generators: Locust (Python, one process: tops out near one core) and
# wrk (C, Debian's package), which the overhead floor needs
LOCUST, WRK = "locust", "wrk"


@dataclass(frozen=True)
class Workload:
    name: str
    # the User class of loadtests/fib.py; "" for a wrk-only workload
    user_class: str
    title: str
    # the request, for warm-up and for wrk ("": no warm-up but Locust's own)
    path: str
    # the class of loadtests/batches.py replaying it, if any
    batch_class: str | None = None
    # seconds one request takes when nothing queues, for time estimates
    request_seconds: float = 0.005
    engine: str = LOCUST
    # the one-line reason a recommendation for it gives
    reason: str = ""


WORKLOADS = {
    w.name: w
    for w in (
        Workload(
            "cpu",
            "CpuUser",
            "CPU-bound: /fib/25?method=naive (~20 ms of CPU)",
            "/fib/25?method=naive",
            "CpuBatchUser",
            0.02,
            reason="CPU-bound: processes, not threads (the GIL runs one thread at a time)",
        ),
        Workload(
            "sequence",
            "SequenceUser",
            "the original comparison's request: /fib/sequence?n=1000",
            "/fib/sequence?n=1000",
            "SequenceBatchUser",
            reason="a few ms of CPU each: processes for the cores, a few threads to "
            "hide the network",
        ),
        Workload(
            "io",
            "IoUser",
            "I/O-bound: /io?ms=100 (the app sleeps 100 ms)",
            "/io?ms=100",
            "IoBatchUser",
            0.1,
            reason="I/O-bound: threads are cheap slots (a sleeping request releases the GIL)",
        ),
        Workload(
            "floor",
            "",
            "the overhead floor: /up (the app does next to nothing), loaded by wrk",
            "/up",
            None,
            0.001,
            engine=WRK,
            reason="the cheapest request: what the server and proxy cost by themselves",
        ),
        Workload(
            "fanout",
            "FanoutUser",
            "thread fan-out: /fanout?calls=8&ms=100",
            "/fanout?calls=8&ms=100",
            None,
            0.1,
        ),
        Workload("mix", "MixUser", "a weighted mix of all of them", "/fib/10", None, 0.05),
    )
}
BENCH_WORKLOADS = ("cpu", "sequence", "io", "floor")
# uWSGI alone is the yardstick for nginx's cost: the CPU-bound request and the floor
YARDSTICK_WORKLOADS = ("cpu", "floor")


@dataclass(frozen=True, order=True)
class Concurrency:
    """A stack's processes x threads."""

    processes: int
    threads: int

    @property
    def label(self) -> str:
        return f"{self.processes}x{self.threads}"

    @property
    def slots(self) -> int:
        return self.processes * self.threads


def parse_concurrency(text: str) -> Concurrency:
    match = re.fullmatch(r"\s*([1-9][0-9]*)\s*x\s*([1-9][0-9]*)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not PROCESSESxTHREADS, e.g. 2x16")
    return Concurrency(int(match[1]), int(match[2]))


def name_list(choices, what: str):
    """An argparse type: comma-separated names of ``choices``, each once, in order."""

    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown) or repr(text)}; "
                f"choose from: {', '.join(choices)}"
            )
        return list(dict.fromkeys(names))

    return parse


def _pxt(*pairs: tuple[int, int]) -> tuple[Concurrency, ...]:
    return tuple(Concurrency(p, t) for p, t in pairs)


@dataclass(frozen=True)
class Mode:
    name: str
    # seconds measured per run
    seconds: float
    matrix: tuple[Concurrency, ...]
    # the development server runs one process: single-threaded (1x1), or a
    # thread per request (shown as 1x16)
    devserver_matrix: tuple[Concurrency, ...]
    # the multi-process/thread concurrency the original comparison is replayed on
    replay_concurrency: Concurrency
    # workload -> {batch size: repeats}; short batches repeat, for their spread
    replay_sizes: dict[str, dict[int, int]]
    # replay on every multi-process/thread stack, or on the first one only
    replay_every_stack: bool = True


# the budgets: about 2 minutes, 12 minutes and an hour on 2 cores
MODES = {
    "quick": Mode(
        "quick", 2, _pxt((2, 4)), _pxt((1, 1)), Concurrency(2, 4), {"sequence": {10: 3}}, False
    ),
    "default": Mode(
        "default",
        4,
        _pxt((1, 1), (1, 16), (2, 1), (2, 16), (4, 4)),
        _pxt((1, 1), (1, 16)),
        Concurrency(2, 16),
        # 1000 requests of 100 ms on the single-threaded dev server take 100 s
        # on their own: --full runs them
        {"sequence": {10: 5, 100: 3, 1000: 1}, "io": {10: 5, 100: 1}},
    ),
    "full": Mode(
        "full",
        15,
        _pxt(
            (1, 1), (1, 4), (1, 16), (2, 1), (2, 4), (2, 8), (2, 16), (4, 1), (4, 4), (4, 8), (8, 4)
        ),
        _pxt((1, 1), (1, 16)),
        Concurrency(2, 16),
        {"sequence": {10: 9, 100: 5, 1000: 3}, "io": {10: 9, 100: 3, 1000: 1}},
    ),
}


@dataclass
class StackRun:
    """One start of a stack at one concurrency, and what is measured while it runs."""

    stack: str
    concurrency: Concurrency
    workloads: list[str]
    # workload -> {batch size: repeats} of the replay
    replays: dict[str, dict[int, int]] = field(default_factory=dict)
    # the interpreter axis (bench/interpreters.py): the stack is a server in an image
    # of this interpreter, started with `docker run`; "" for every other run
    interpreter: str = ""


def build_plan(
    stacks: Iterable[str], mode: Mode, matrix: Iterable[Concurrency] | None = None
) -> list[StackRun]:
    """The stack runs of a benchmark, in the order they run."""
    chosen = tuple(matrix) if matrix else mode.matrix
    replay_at = mode.replay_concurrency
    if replay_at not in chosen:
        # the comparison is replayed on the largest concurrency there is
        replay_at = max(chosen, key=lambda c: (c.slots, c.processes))
    plan: list[StackRun] = []
    replayed = False
    for stack in stacks:
        if stack == "devserver":
            for pxt in mode.devserver_matrix:
                replays = mode.replay_sizes if pxt == Concurrency(1, 1) else {}
                plan.append(StackRun(stack, pxt, list(BENCH_WORKLOADS), dict(replays)))
        elif stack == "uwsgi-direct":
            plan += [StackRun(stack, c, list(YARDSTICK_WORKLOADS)) for c in chosen]
        else:
            replay = mode.replay_every_stack or not replayed
            replayed = True
            for pxt in chosen:
                replays = mode.replay_sizes if replay and pxt == replay_at else {}
                plan.append(StackRun(stack, pxt, list(BENCH_WORKLOADS), dict(replays)))
    return plan


def batch_sizes(sizes: dict[int, int]) -> list[int]:
    """The batches in the order they run: each size repeated, smallest first."""
    return [size for size in sorted(sizes) for _ in range(sizes[size])]


def estimate_seconds(run: StackRun, seconds: float) -> dict[str, float]:
    """Rough seconds per step, for the progress bar's time left."""
    steps = {"start": 3.0}
    for workload in run.workloads:
        steps[workload] = seconds + WARMUP_SECONDS + 2.5
    for workload, sizes in run.replays.items():
        per_request = WORKLOADS[workload].request_seconds
        concurrency = min(BATCH_USERS, run.concurrency.slots)
        batches = batch_sizes(sizes)
        # a second between batches (the load shape's tick), plus the warm-up
        steps[f"{workload} batches"] = 4.0 + sum(batches) * per_request / concurrency + len(batches)
    return steps


def estimate_plan(plan: list[StackRun], seconds: float) -> float:
    return sum(sum(estimate_seconds(run, seconds).values()) for run in plan)
