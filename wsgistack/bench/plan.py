"""The matrix: workloads, processes x threads, the modes, and the plan of stack runs.

Pure data and arithmetic: nothing here starts a server.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

# seconds of load before the statistics start, so no run measures its ramp
WARMUP_SECONDS = 0.5
# users sending each batch of the replay, as `ab -c 10` would
BATCH_USERS = 10
DEFAULT_STACKS = ("uwsgi", "apache", "gunicorn", "devserver", "uwsgi-direct", "granian-bare")
# the load generators: Locust (Python, one process: tops out near one core) and
# wrk (C, Debian's package), which the overhead floor needs
LOCUST, WRK = "locust", "wrk"
# what a workload's requests say in Accept-Encoding: "identity" asks for the
# answer as it is, so every stack does the same work (gunicorn and granian do
# not compress; the proxies would); "gzip" lets the proxies compress
IDENTITY, GZIP = "identity", "gzip"


@dataclass(frozen=True)
class Workload:
    name: str
    # the User class of loadtests/fib.py (Locust, and the replay's warm-up); ""
    # for none
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
    # the Accept-Encoding header every request carries; "": the load
    # generator's own (Locust: "gzip, deflate, br"; wrk: none)
    accept_encoding: str = IDENTITY
    # wrk: text every answer's body must hold, else it counts as a failure
    # (computed here, independently of the app, as loadtests/fib.py does)
    expect: str = ""


def fibonacci(n: int) -> int:
    current, following = 0, 1
    for _ in range(n):
        current, following = following, current + following
    return current


# the checker checks itself against well-known values first
assert (fibonacci(25), fibonacci(93)) == (75025, 12200160415121876738)
SEQUENCE = Workload(
    "sequence",
    "SequenceUser",
    "the original comparison's request: /fib/sequence?n=1000",
    "/fib/sequence?n=1000",
    "SequenceBatchUser",
    engine=WRK,
    reason="a millisecond of CPU each: processes for the cores, a few threads to hide the network",
    # the last of F(0)..F(999) closes the list: an answer cut short or wrong misses it
    expect=f'"{fibonacci(999)}"]}}',
)
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
            engine=WRK,
            reason="CPU-bound: processes, not threads (the GIL runs one thread at a time)",
            expect=f'"value":"{fibonacci(25)}"',
        ),
        SEQUENCE,
        Workload(
            "io",
            "IoUser",
            "I/O-bound: /io?ms=100 (the app sleeps 100 ms)",
            "/io?ms=100",
            "IoBatchUser",
            0.1,
            engine=WRK,
            reason="I/O-bound: threads are cheap slots (a sleeping request releases the GIL)",
            expect='"ms":100,',
        ),
        Workload(
            "floor",
            "",
            "the overhead floor: /up (the app does next to nothing)",
            "/up",
            None,
            0.001,
            engine=WRK,
            reason="the cheapest request: what the server and proxy cost by themselves",
            expect='{"status":"ok"}',
        ),
        # the same request, compressed by the proxies that compress (GZIP_LEVEL):
        # what compression costs them per request, beside "sequence" uncompressed
        replace(
            SEQUENCE,
            name="sequence-gzip",
            title="the original comparison's request, gzip-compressed by the proxy "
            "(Accept-Encoding: gzip)",
            batch_class=None,
            reason="",
            accept_encoding=GZIP,
            # compressed: no text to find in the body
            expect="",
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
# what every production stack is measured on; the first three get an answer
BENCH_WORKLOADS = ("cpu", "sequence", "io", "floor")
ANSWERED_WORKLOADS = ("cpu", "sequence", "io")
# the stacks whose proxy compresses (GZIP_LEVEL), and what they are measured on
# besides, where the overhead is compared (yardstick_shape)
COMPRESSING_STACKS = ("uwsgi", "apache")
COMPRESSED_WORKLOADS = ("sequence-gzip",)
# the yardsticks: uWSGI alone for nginx's cost (the CPU-bound request and the
# floor, at every processes x threads), granian as its own command line starts it
# for what the stacks cost (the floor and the sequence request, at the
# processes x threads the overhead is compared at: answer.overhead_concurrency)
YARDSTICK_WORKLOADS = {"uwsgi-direct": ("cpu", "floor"), "granian-bare": ("sequence", "floor")}


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
    # every run of the plan this many times, in interleaved rounds (repeats.py)
    repeats: int = 1


# the budgets: about 2 minutes, 15 minutes and 80 minutes on 2 cores
MODES = {
    "quick": Mode(
        "quick", 2, _pxt((2, 4)), _pxt((1, 1)), Concurrency(2, 4), {"sequence": {10: 3}}, False
    ),
    "default": Mode(
        "default",
        2,
        _pxt((1, 1), (1, 16), (2, 1), (2, 16), (4, 4)),
        _pxt((1, 1), (1, 16)),
        Concurrency(2, 16),
        # 1000 requests of 100 ms on the single-threaded dev server take 100 s
        # on their own: --full runs them
        {"sequence": {10: 5, 100: 3, 1000: 1}, "io": {10: 5, 100: 1}},
        repeats=3,
    ),
    "full": Mode(
        "full",
        8,
        _pxt(
            (1, 1), (1, 4), (1, 16), (2, 1), (2, 4), (2, 8), (2, 16), (4, 1), (4, 4), (4, 8), (8, 4)
        ),
        _pxt((1, 1), (1, 16)),
        Concurrency(2, 16),
        {"sequence": {10: 9, 100: 5, 1000: 3}, "io": {10: 9, 100: 3, 1000: 1}},
        repeats=3,
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
    # the round of an interleaved plan this start is in (repeats.interleave)
    repeat: int = 1


def yardstick_shape(chosen: tuple[Concurrency, ...]) -> Concurrency:
    """Where granian alone is run: where the overhead is compared (one thread per
    process, two processes if chosen; answer.overhead_concurrency)."""
    return min(chosen, key=lambda c: (c.threads != 1, c != Concurrency(2, 1), c.slots))


def build_plan(
    stacks: Iterable[str], mode: Mode, matrix: Iterable[Concurrency] | None = None
) -> list[StackRun]:
    """The stack runs of one round of a benchmark, in the order they run
    (repeats.interleave makes the rounds)."""
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
            plan += [StackRun(stack, c, list(YARDSTICK_WORKLOADS[stack])) for c in chosen]
        elif stack == "granian-bare":
            plan.append(StackRun(stack, yardstick_shape(chosen), list(YARDSTICK_WORKLOADS[stack])))
        else:
            replay = mode.replay_every_stack or not replayed
            replayed = True
            for pxt in chosen:
                replays = mode.replay_sizes if replay and pxt == replay_at else {}
                workloads = list(BENCH_WORKLOADS)
                # compression's cost per request: where the overhead is compared
                if stack in COMPRESSING_STACKS and pxt == yardstick_shape(chosen):
                    workloads += COMPRESSED_WORKLOADS
                plan.append(StackRun(stack, pxt, workloads, dict(replays)))
    return plan


def batch_sizes(sizes: dict[int, int]) -> list[int]:
    """The batches in the order they run: each size repeated, smallest first."""
    return [size for size in sorted(sizes) for _ in range(sizes[size])]


# seconds a run takes beyond what it measures: the warm-up requests and the
# generator's start (Locust imports for about 2 s, then ramps up); a stack's
# start and stop
RUN_OVERHEAD = {LOCUST: WARMUP_SECONDS + 2.5, WRK: 0.5}
START_SECONDS = 2.0


def estimate_seconds(run: StackRun, seconds: float) -> dict[str, float]:
    """Rough seconds per step, for the progress bar's time left."""
    steps = {"start": START_SECONDS}
    for workload in run.workloads:
        # a workload of your own (wsgistack sizing --locustfile) runs on Locust
        engine = WORKLOADS[workload].engine if workload in WORKLOADS else LOCUST
        # wrk takes whole seconds
        measured = math.ceil(seconds) if engine == WRK else seconds
        steps[workload] = measured + RUN_OVERHEAD[engine]
    for workload, sizes in run.replays.items():
        per_request = WORKLOADS[workload].request_seconds
        concurrency = min(BATCH_USERS, run.concurrency.slots)
        batches = batch_sizes(sizes)
        # a second between batches (the load shape's tick), plus the warm-up
        steps[f"{workload} batches"] = 4.0 + sum(batches) * per_request / concurrency + len(batches)
    return steps


def estimate_plan(plan: list[StackRun], seconds: float) -> float:
    return sum(sum(estimate_seconds(run, seconds).values()) for run in plan)
