"""What the figures say: the recommended stack and processes x threads per
workload, the stack overhead per request, and the replay's ratios.

Pure functions of the results: the report and ``wsgistack sizing`` use them,
the unit tests check them without a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsgistack.bench.plan import ANSWERED_WORKLOADS, WORKLOADS, Concurrency
from wsgistack.bench.repeats import overlap
from wsgistack.bench.results import BatchResult, Result, Spread, spread

# what the benchmark recommends from: the development server is not for
# production, and the yardsticks (uwsgi-direct, granian-bare) neither; granian
# joins when it is run (--stacks)
PRODUCTION_STACKS = ("uwsgi", "apache", "gunicorn", "granian")
# what the original comparison claimed, in seconds: (dev server, multi-process/thread stack)
CLAIMED = {10: (3.25, 2.52), 100: (35.89, 11.61), 1000: (343.74, 96.02)}
DEV_BASELINE = ("devserver", Concurrency(1, 1))


def weight(r: Result) -> tuple[int, int, float]:
    """What makes a setting lighter: fewer processes, then fewer threads (less
    memory, fewer GIL handoffs), then less memory (PSS) for the same shape."""
    return r.processes, r.threads, r.pss_mb if r.pss_mb is not None else float("inf")


@dataclass
class Recommendation:
    # the highest median throughput within the limits; None: nothing met them
    best: Result | None
    # the others within the limits as fast within the noise: their requests/s
    # ranges over the repetitions overlap best's (repeats.overlap), lightest first
    tied: list[Result] = field(default_factory=list)
    fastest_overall: Result | None = None

    @property
    def pick(self) -> Result | None:
        """The lightest of the best and those tied with it: when the figures
        cannot tell settings apart, the one holding less is the answer."""
        if self.best is None:
            return None
        return min([self.best, *self.tied], key=weight)


def within_memory(r: Result, max_memory_mb: float | None) -> bool:
    """The server process tree's peak PSS within the budget (none: no budget); a run
    whose memory was not measured cannot be shown to fit one."""
    return max_memory_mb is None or (r.pss_mb is not None and r.pss_mb <= max_memory_mb)


def recommend(
    results: list[Result],
    p95_ms: float = float("inf"),
    max_fail_ratio: float = 0.01,
    max_memory_mb: float | None = None,
) -> Recommendation:
    """The cell with the highest median requests/s whose p95, failures and memory
    (the server process tree's PSS) stay within the limits, and those tied with it."""
    measured = [r for r in results if r.measured]
    passing = [
        r
        for r in measured
        if r.requests
        and (r.fail_ratio or 0) <= max_fail_ratio
        and (r.p95_ms or 0) <= p95_ms
        and within_memory(r, max_memory_mb)
    ]
    fastest = max(measured, key=lambda r: r.rps, default=None)
    if not passing:
        return Recommendation(None, [], fastest)
    best = max(passing, key=lambda r: r.rps)
    # tied: as fast within the noise (the ranges overlap), unless its queue
    # held requests while the best's did not: it is at its ceiling
    tied = sorted(
        (
            r
            for r in passing
            if r is not best and overlap(r, best) and (best.saturated or not r.saturated)
        ),
        key=weight,
    )
    return Recommendation(best, tied, fastest)


@dataclass
class Answer:
    workload: str
    title: str
    reason: str
    recommendation: Recommendation
    # the best of each other production stack, for comparison
    others: list[Result]
    # the recommended stack at every processes x threads it ran: the evidence
    ladder: list[Result] = field(default_factory=list)

    @property
    def pick(self) -> Result | None:
        return self.recommendation.pick


def answers(results: list[Result], workloads: list[str]) -> list[Answer]:
    """Per user workload, the production stack and processes x threads to use."""
    found = []
    for name in workloads:
        workload = WORKLOADS.get(name)
        runs = [r for r in results if r.workload == name and r.stack in PRODUCTION_STACKS]
        if workload is None or name not in ANSWERED_WORKLOADS or not runs:
            continue
        rec = recommend(runs)
        others = []
        for stack in PRODUCTION_STACKS:
            best = recommend([r for r in runs if r.stack == stack]).best
            if best is not None and (rec.best is None or best.stack != rec.best.stack):
                others.append(best)
        found.append(Answer(name, workload.title, workload.reason, rec, others))
        pick = found[-1].pick
        if pick is not None:
            found[-1].others = [r for r in others if r.stack != pick.stack]
            if rec.best is not pick:
                found[-1].others.insert(0, rec.best)
            found[-1].ladder = sorted(
                (r for r in runs if r.stack == pick.stack and r.measured),
                key=lambda r: r.concurrency,
            )
    return found


@dataclass
class Overhead:
    stack: str
    concurrency: Concurrency
    workload: str
    engine: str
    server_cpu_ms: float
    app_cpu_ms: float | None
    overhead_ms: float | None

    @property
    def share(self) -> float | None:
        """The part of the server CPU that is not the app's own."""
        if self.overhead_ms is None or not self.server_cpu_ms:
            return None
        return self.overhead_ms / self.server_cpu_ms


def overhead_concurrency(results: list[Result]) -> Concurrency | None:
    """The processes x threads the overhead is compared at: one thread per process
    (no GIL handoffs in the figure), two processes where run, else the smallest."""
    matrix = sorted(
        {r.concurrency for r in results if r.stack != "devserver" and r.server_cpu_ms},
        key=lambda c: (c.threads != 1, c != Concurrency(2, 1), c.slots),
    )
    return matrix[0] if matrix else None


def overheads(results: list[Result], workloads: list[str]) -> list[Overhead]:
    """Per stack and workload: server CPU per request, the app's own, and the rest."""
    at = overhead_concurrency(results)
    rows = []
    for stack in dict.fromkeys(r.stack for r in results):
        pxt = Concurrency(1, 1) if stack == "devserver" else at
        for name in workloads:
            run = next(
                (
                    r
                    for r in results
                    if (r.stack, r.concurrency, r.workload) == (stack, pxt, name)
                    and r.measured
                    and r.server_cpu_ms
                ),
                None,
            )
            if run is not None:
                rows.append(
                    Overhead(
                        stack,
                        pxt,
                        name,
                        run.engine,
                        run.server_cpu_ms,
                        run.app_cpu_ms,
                        run.overhead_ms,
                    )
                )
    return rows


def batch_spreads(batches: list[BatchResult], workload: str, size: int):
    """(stack, processes x threads) -> the spread of that batch's times over its repeats."""
    times: dict[tuple[str, Concurrency], list[float]] = {}
    for b in batches:
        if (b.workload, b.requests) == (workload, size) and b.seconds is not None:
            times.setdefault((b.stack, b.concurrency), []).append(b.seconds)
    return {key: spread(values) for key, values in times.items()}


def replay_ratio(spreads: dict[tuple[str, Concurrency], Spread]) -> float | None:
    """How many times longer the single-threaded dev server took than the fastest
    stack, median against median."""
    dev = spreads.get(DEV_BASELINE)
    others = [s.median for key, s in spreads.items() if key[0] != "devserver"]
    return dev.median / min(others) if dev and others else None


def claimed_ratio(size: int) -> float | None:
    dev, multi = CLAIMED.get(size, (None, None))
    return dev / multi if dev and multi else None
