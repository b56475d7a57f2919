"""The project's own performance goals: a data table, each goal with its source,
and the verdict each one gets from a run's results.

A goal compares a run's requests/s with a base: another run's (a ratio within
``low``..``high``) or the I/O ceiling (users / 0.1 s). ``stack="*"`` expands
over every stack in the results, ``concurrency=None`` over every processes x
threads the first stack ran.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsgistack.bench.plan import Concurrency
from wsgistack.bench.repeats import rps_range
from wsgistack.bench.results import Result, find

# where the goals were set
ISSUE_6 = "issue 6, Done when"
ISSUE_20 = "issue 20, What to build"
# other work on the machine using this many cores makes a run's figures noisy
NOISY_OTHER_CORES = 0.25
# the same request's app CPU differing by more than this between two runs: the
# machine ran at different speeds (shared cores), so their ratio is not the servers'
SPEED_DRIFT = 1.15
IO_MS = 100


@dataclass(frozen=True)
class Goal:
    title: str
    source: str
    stack: str
    workload: str
    concurrency: Concurrency | None
    low: float
    high: float | None = None
    # the base: another stack at the same concurrency, another concurrency of the same
    # stack, or None: the I/O ceiling
    base_stack: str | None = None
    base_concurrency: Concurrency | None = None
    # also compare server CPU per request (what does not depend on the machine's load)
    cpu: bool = False
    # fewer users than this cannot show the goal
    min_users: int = 0
    # instead of a ratio: the stack's overhead per request (server CPU minus the
    # app's) at most this many ms
    max_overhead_ms: float | None = None


P2x16, P1x1, P2x1, P1x16 = (
    Concurrency(2, 16),
    Concurrency(1, 1),
    Concurrency(2, 1),
    Concurrency(1, 16),
)
GOALS = (
    Goal(
        "I/O-bound, 2x16, >= 32 users: nginx+uWSGI >= 0.9 x the ceiling",
        ISSUE_6,
        "uwsgi",
        "io",
        P2x16,
        0.9,
        min_users=32,
    ),
    Goal(
        "I/O-bound, 2x16, >= 32 users: Apache+mod_wsgi >= 0.9 x the ceiling",
        ISSUE_6,
        "apache",
        "io",
        P2x16,
        0.9,
        min_users=32,
    ),
    Goal(
        "CPU-bound: nginx+uWSGI >= 0.85 x uWSGI alone (uwsgi-direct)",
        ISSUE_6,
        "uwsgi",
        "cpu",
        None,
        0.85,
        base_stack="uwsgi-direct",
        cpu=True,
    ),
    Goal(
        "CPU-bound: nginx+uWSGI not below gunicorn",
        ISSUE_6,
        "uwsgi",
        "cpu",
        None,
        1.0,
        base_stack="gunicorn",
        cpu=True,
    ),
    Goal(
        "CPU-bound: 2x1 >= 1.6 x 1x1 (processes help CPU)",
        ISSUE_6,
        "*",
        "cpu",
        P2x1,
        1.6,
        base_concurrency=P1x1,
    ),
    Goal(
        "CPU-bound: 1x16 within 0.8-1.2 x 1x1 (threads do not: the GIL)",
        ISSUE_6,
        "*",
        "cpu",
        P1x16,
        0.8,
        1.2,
        base_concurrency=P1x1,
    ),
    # granian as its own command line starts it (granian-bare) is the yardstick
    # of what the stacks' options and proxies cost on the same app
    Goal(
        "the floor: nginx+uWSGI >= 0.85 x granian alone (granian-bare)",
        ISSUE_20,
        "uwsgi",
        "floor",
        P2x1,
        0.85,
        base_stack="granian-bare",
        cpu=True,
    ),
    Goal(
        "the floor: the granian stack >= 0.9 x granian alone (granian-bare)",
        ISSUE_20,
        "granian",
        "floor",
        P2x1,
        0.9,
        base_stack="granian-bare",
        cpu=True,
    ),
    Goal(
        "the sequence request: the granian stack >= 0.9 x granian alone (granian-bare)",
        ISSUE_20,
        "granian",
        "sequence",
        P2x1,
        0.9,
        base_stack="granian-bare",
        cpu=True,
    ),
    Goal(
        "the floor: nginx+uWSGI's overhead <= 0.1 ms per request",
        ISSUE_20,
        "uwsgi",
        "floor",
        P2x1,
        0,
        max_overhead_ms=0.1,
    ),
    Goal(
        "the floor: Apache+mod_wsgi's overhead <= 0.25 ms per request",
        ISSUE_20,
        "apache",
        "floor",
        P2x1,
        0,
        max_overhead_ms=0.25,
    ),
)


@dataclass
class Verdict:
    goal: str
    source: str
    figure: str
    # None: not measured in this run
    holds: bool | None
    note: str = ""

    @property
    def text(self) -> str:
        return {True: "holds", False: "does not hold", None: "not measured"}[self.holds]


def within(ratio: float, low: float, high: float | None) -> bool:
    return ratio >= low and (high is None or ratio <= high)


def noise_notes(*runs: Result) -> str:
    """Why a figure may not be the server's: a busy generator, other work on the machine."""
    notes = []
    if any(r.generator_bound for r in runs):
        notes.append("generator-bound: the load generator, not the server, was the limit")
    other = max((r.other_cores or 0) for r in runs)
    if other >= NOISY_OTHER_CORES:
        notes.append(f"other work used up to {other:.2f} cores meanwhile: noisy")
    return "; ".join(notes)


# the stacks whose server embeds Debian's shared libpython (uWSGI's python3
# plugin, mod_wsgi); gunicorn and granian run in the python3 binary
EMBEDDED_PYTHON = frozenset({"uwsgi", "apache"})


def speed_note(run: Result, base: Result) -> str:
    if not (run.app_cpu_ms and base.app_cpu_ms):
        return ""
    speed = run.app_cpu_ms / base.app_cpu_ms
    if 1 / SPEED_DRIFT <= speed <= SPEED_DRIFT:
        return ""
    why = (
        "the machine's speed changed between the runs"
        if run.threads == base.threads
        # threads contending for the GIL also cost CPU in handoffs
        else "GIL handoffs between threads, or the machine's speed changed"
    )
    # one side in the shared libpython, the other in the python3 binary
    embedded = [s for s in (run.stack, base.stack) if s in EMBEDDED_PYTHON]
    if len(embedded) == 1:
        why += (
            f", or {embedded[0]} runs the app in the shared libpython, which ran"
            " the same Python about 15% slower than the python3 binary (docs/benchmark.md)"
        )
    return (
        f"the same request took {run.app_cpu_ms:.1f} vs {base.app_cpu_ms:.1f} ms of "
        f"CPU in the app (Server-Timing): {why}"
    )


def spread_note(goal: Goal, run: Result, base: Result) -> str:
    """Whether the verdict depends on the round: the ratio of the run's
    slowest round to the base's fastest, and of its fastest to the base's
    slowest, fall on both sides of the goal. The median's verdict stands, said
    to be within the noise (a yardstick that swings between two speeds,
    granian alone's: docs/benchmark.md)."""
    run_low, run_high = rps_range(run)
    base_low, base_high = rps_range(base)
    if not (run_low and base_low):
        return ""
    worst, best = run_low / base_high, run_high / base_low
    holds_for_some = best >= goal.low and (goal.high is None or worst <= goal.high)
    holds_for_all = within(worst, goal.low, goal.high) and within(best, goal.low, goal.high)
    if not holds_for_some or holds_for_all:
        return ""
    return (
        f"within the noise: between the rounds' slowest and fastest the ratio spans"
        f" {worst:.2f}-{best:.2f} x, on both sides of the goal"
    )


def ratio_verdict(goal: Goal, title: str, run: Result | None, base: Result | None) -> Verdict:
    if run is None or base is None:
        return Verdict(title, goal.source, "", None, "not in this run's matrix")
    ratio = run.rps / base.rps
    figure = f"{run.rps:.1f} / {base.rps:.1f} req/s = {ratio:.2f} x"
    if goal.cpu and run.server_cpu_ms and base.server_cpu_ms:
        # CPU per request does not depend on what else the machine is doing
        figure += (
            f" (server CPU per request {run.server_cpu_ms:.1f} vs {base.server_cpu_ms:.1f} ms:"
            f" {base.server_cpu_ms / run.server_cpu_ms:.2f} x)"
        )
    notes = [spread_note(goal, run, base), noise_notes(run, base), speed_note(run, base)]
    return Verdict(
        title,
        goal.source,
        figure,
        within(ratio, goal.low, goal.high),
        "; ".join(n for n in notes if n),
    )


def ceiling_verdict(goal: Goal, run: Result | None) -> Verdict:
    if run is None or run.users < goal.min_users:
        note = f"needs {goal.workload} at {goal.concurrency.label} with --users >= {goal.min_users}"
        return Verdict(goal.title, goal.source, "", None, note)
    ceiling = min(run.users, goal.concurrency.slots) / (IO_MS / 1000)
    ratio = run.rps / ceiling
    figure = f"{run.rps:.1f} req/s / {ceiling:.0f} = {ratio:.2f} x"
    return Verdict(
        goal.title, goal.source, figure, within(ratio, goal.low, goal.high), noise_notes(run)
    )


def overhead_verdict(goal: Goal, run: Result | None) -> Verdict:
    title = f"{goal.concurrency.label}: {goal.title}"
    if run is None or run.overhead_ms is None:
        return Verdict(title, goal.source, "", None, "not in this run's matrix")
    figure = (
        f"{run.server_cpu_ms:.3f} - {run.app_cpu_ms:.3f} (the app's) = "
        f"{run.overhead_ms:.3f} ms of server CPU per request"
    )
    return Verdict(
        title, goal.source, figure, run.overhead_ms <= goal.max_overhead_ms, noise_notes(run)
    )


def evaluate(results: list[Result], goals: tuple[Goal, ...] = GOALS) -> list[Verdict]:
    """Every goal's verdict, expanded over stacks and processes x threads."""
    verdicts = []
    stacks = list(dict.fromkeys(r.stack for r in results if r.workload == "cpu"))
    for goal in goals:
        if goal.max_overhead_ms is not None:
            run = find(results, goal.stack, goal.concurrency, goal.workload)
            verdicts.append(overhead_verdict(goal, run))
            continue
        if goal.base_stack is None and goal.base_concurrency is None:
            verdicts.append(
                ceiling_verdict(goal, find(results, goal.stack, goal.concurrency, goal.workload))
            )
            continue
        for stack in stacks if goal.stack == "*" else [goal.stack]:
            if stack == "devserver" or (
                goal.stack == "*" and find(results, stack, P1x1, goal.workload) is None
            ):
                continue
            matrix = (
                [goal.concurrency]
                if goal.concurrency
                else sorted({r.concurrency for r in results if r.stack == stack})
            )
            for pxt in matrix:
                run = find(results, stack, pxt, goal.workload)
                base = find(
                    results, goal.base_stack or stack, goal.base_concurrency or pxt, goal.workload
                )
                title = (
                    f"{stack}: {goal.title}" if goal.stack == "*" else f"{pxt.label}: {goal.title}"
                )
                verdicts.append(ratio_verdict(goal, title, run, base))
    return verdicts
