"""Console output: a progress bar with the time left and a line per run while the
benchmark runs, the main table at its end. rich is imported when used."""

from __future__ import annotations

from pathlib import Path

from wsgistack.bench.goals import Verdict
from wsgistack.bench.plan import StackRun, estimate_seconds
from wsgistack.bench.repeats import cells
from wsgistack.bench.report import Outcome
from wsgistack.bench.results import BatchResult, Result, num


class Progress:
    """A rich progress bar (which run, how many left, time left) and a line per run."""

    def __init__(self, plan: list[StackRun], seconds: float) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.steps = [estimate_seconds(run, seconds) for run in plan]
        self.rounds = max((run.repeat for run in plan), default=1)
        self.count = sum(len(s) - 1 for s in self.steps)
        self.done = 0
        self.console = Console(stderr=True)
        self.bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[step]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
        )
        total = sum(sum(s.values()) for s in self.steps)
        self.task = self.bar.add_task("bench", total=total, step="")

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def start(self, run: StackRun, step: str) -> None:
        number = self.done + (0 if step == "start" else 1)
        round_ = f"round {run.repeat}: " if self.rounds > 1 else ""
        self.bar.update(
            self.task,
            description=f"{round_}{run.stack} {run.concurrency.label} {step}",
            step=f"run {number}/{self.count}",
        )

    def finish(self, index: int, step: str, line: str | None = None) -> None:
        if step != "start":
            self.done += 1
        self.bar.advance(self.task, self.steps[index].get(step, 0))
        if line:
            self.print(line)

    def skip(self, index: int) -> None:
        for step, seconds in self.steps[index].items():
            if step != "start":
                self.done += 1
            self.bar.advance(self.task, seconds)

    def print(self, line: str) -> None:
        self.console.print(line, highlight=False, soft_wrap=True)


def run_line(r: Result) -> str:
    round_ = f" (round {r.repeat})" if r.repeat > 1 else ""
    head = f"{r.stack} {r.concurrency.label} {r.workload}{round_}:"
    if r.error:
        return f"{head} error: {r.error}"
    flag = "  [generator-bound]" if r.generator_bound else ""
    return (
        f"{head} {r.rps:.1f} req/s, p95 {num(r.p95_ms)} ms, "
        f"{r.failures} failed, server {num(r.server_cores, 2)} cores, "
        f"{r.engine} {num(r.generator_cores, 2)}{flag}"
    )


def batches_line(run: StackRun, workload: str, batches: list[BatchResult]) -> str:
    times = ", ".join(f"{b.requests}: {num(b.seconds, 3)} s" for b in batches)
    return f"{run.stack} {run.concurrency.label} {workload} batches: {times}"


def print_summary(outcome: Outcome, verdicts: list[Verdict], out_dir: Path) -> None:
    """The main table: requests/s (a cell's median over its rounds) and p95 per
    workload, stack and processes x threads; then the goals."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    results = cells(outcome.results)
    workloads = list(dict.fromkeys(r.workload for r in results))
    table = Table(title="requests/s (p95 ms), medians; * generator-bound, ! error")
    table.add_column("stack")
    table.add_column("P x T")
    for name in workloads:
        table.add_column(name, justify="right")
    for stack, pxt in dict.fromkeys((r.stack, r.concurrency) for r in results):
        row = []
        for name in workloads:
            run = next(
                (r for r in results if (r.stack, r.concurrency, r.workload) == (stack, pxt, name)),
                None,
            )
            if run is None:
                row.append("")
            elif run.error:
                row.append("!")
            else:
                star = "*" if run.generator_bound else ""
                row.append(f"{run.rps:.1f} ({num(run.p95_ms)}){star}")
        table.add_row(stack, pxt.label, *row)
    console.print(table)
    if verdicts:
        goals = Table(title="the project's performance goals")
        for column in ("goal", "figure", "verdict"):
            goals.add_column(column)
        for v in verdicts:
            goals.add_row(v.goal, v.figure or v.note, v.text)
        console.print(goals)
    console.print(f"report: {out_dir / 'report.html'} (and report.md, results.csv)")
