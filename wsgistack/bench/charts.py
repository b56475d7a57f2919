"""The report's charts (matplotlib, PNG): one colour per stack in every chart.

matplotlib is imported by ``pyplot()``, only when a chart is drawn.
"""

from __future__ import annotations

import math
from pathlib import Path

from wsgistack.bench.answer import CLAIMED, Overhead, batch_spreads
from wsgistack.bench.plan import WORKLOADS, Concurrency
from wsgistack.bench.repeats import rps_range
from wsgistack.bench.results import BatchResult, Result

STACK_COLORS = {
    "uwsgi": "tab:blue",
    "apache": "tab:orange",
    "gunicorn": "tab:green",
    "devserver": "tab:red",
    "uwsgi-direct": "tab:purple",
    "granian": "tab:brown",
    "granian-bare": "tab:gray",
}
# the other runs' names (swarm-N, gunicorn-freethreaded, ...): colours by order
OTHER_COLORS = ("tab:cyan", "tab:olive", "tab:pink", "navy", "gold", "teal", "black", "maroon")


def stack_color(stack: str, others: list[str]) -> str:
    """A stack's colour: its own, or one of OTHER_COLORS by its place in ``others``
    (every name of the chart), the same in every chart of one report."""
    if stack in STACK_COLORS:
        return STACK_COLORS[stack]
    unnamed = [name for name in dict.fromkeys(others) if name not in STACK_COLORS]
    return OTHER_COLORS[unnamed.index(stack) % len(OTHER_COLORS)]


def pyplot():
    """matplotlib's pyplot on the file-only backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def concurrency_label(stack: str, pxt: Concurrency) -> str:
    if stack == "devserver" and pxt.threads > 1:
        return "1 x thread per request"
    return f"{pxt.processes} x {pxt.threads}"


def log_axis(ax, values: list[float]) -> None:
    """A log scale whose bars rise from a round number, with plain tick labels."""
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("log")
    ax.set_ylim(bottom=10 ** math.floor(math.log10(min(values) / 2)), top=max(values) * 2)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    pyplot().close(fig)
    return path


def chart_workload(results: list[Result], workload: str, path: Path) -> Path | None:
    """Grouped bars: requests/s and p95 for each processes x threads, one bar per
    stack; the requests/s of repeated cells with their range (whiskers from the
    slowest to the fastest repetition)."""
    runs = [r for r in results if r.workload == workload and r.measured]
    if not runs:
        return None
    plt = pyplot()
    matrix = sorted({r.concurrency for r in runs})
    stacks = list(dict.fromkeys(r.stack for r in runs))
    width = 0.8 / len(stacks)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for metric, ax, label in (
        ("rps", axes[0], "requests/s (higher is better)"),
        ("p95_ms", axes[1], "p95 response time, ms (lower is better, log scale)"),
    ):
        for i, stack in enumerate(stacks):
            xs, ys, hatches, low, high = [], [], [], [], []
            for j, pxt in enumerate(matrix):
                run = next((r for r in runs if (r.stack, r.concurrency) == (stack, pxt)), None)
                if run is not None and getattr(run, metric):
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(getattr(run, metric))
                    hatches.append("//" if run.generator_bound else "")
                    slowest, fastest = rps_range(run)
                    low.append(run.rps - slowest)
                    high.append(fastest - run.rps)
            whiskers = [low, high] if metric == "rps" and any(low + high) else None
            bars = ax.bar(
                xs,
                ys,
                width,
                yerr=whiskers,
                capsize=2,
                label=stack,
                color=stack_color(stack, stacks),
            )
            for bar, hatch in zip(bars, hatches, strict=True):
                bar.set_hatch(hatch)
        ax.set_xticks(range(len(matrix)), [c.label for c in matrix])
        ax.set_xlabel("processes x threads")
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if metric == "p95_ms" and any(r.p95_ms for r in runs):
            log_axis(ax, [r.p95_ms for r in runs if r.p95_ms])
    axes[0].legend(fontsize=8, title="hatched: generator-bound", title_fontsize=8)
    fig.suptitle(WORKLOADS[workload].title if workload in WORKLOADS else workload, fontsize=11)
    return _save(fig, path)


def chart_overhead(rows: list[Overhead], path: Path) -> Path | None:
    """Stacked bars per stack and workload: the app's CPU per request, and the servers' rest."""
    rows = [r for r in rows if r.app_cpu_ms is not None and r.overhead_ms is not None]
    if not rows:
        return None
    plt = pyplot()
    workloads = list(dict.fromkeys(r.workload for r in rows))
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.4 * len(workloads), 4))
    axes = [axes] if len(workloads) == 1 else list(axes)
    for ax, name in zip(axes, workloads, strict=True):
        mine = [r for r in rows if r.workload == name]
        labels = [r.stack for r in mine]
        colors = [stack_color(r.stack, labels) for r in mine]
        ax.bar(labels, [r.app_cpu_ms for r in mine], color="lightgrey", label="the app's own")
        ax.bar(
            labels,
            [max(0.0, r.overhead_ms) for r in mine],
            bottom=[r.app_cpu_ms for r in mine],
            color=colors,
            label="servers and proxy",
        )
        ax.set_title(f"{name}: CPU ms per request", fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, title="grey: the app (Server-Timing)", title_fontsize=8)
    return _save(fig, path)


def chart_replay(batches: list[BatchResult], path: Path) -> Path | None:
    """Seconds to complete each batch (median, whiskers min-max): claimed and measured."""
    timed = [b for b in batches if b.seconds is not None]
    if not timed:
        return None
    plt = pyplot()
    workloads = list(dict.fromkeys(b.workload for b in timed))
    fig, axes = plt.subplots(1, len(workloads), figsize=(6.5 * len(workloads), 4.2))
    axes = [axes] if len(workloads) == 1 else list(axes)
    for ax, workload in zip(axes, workloads, strict=True):
        sizes = sorted({b.requests for b in timed if b.workload == workload})
        spreads = {size: batch_spreads(timed, workload, size) for size in sizes}
        keys = sorted(
            dict.fromkeys((b.stack, b.concurrency) for b in timed if b.workload == workload),
            key=lambda k: k[0] != "devserver",
        )
        claims = [CLAIMED.get(s, (None, None)) for s in sizes]
        series = [
            ("claimed: dev server", "lightgrey", [(dev, None) for dev, _ in claims]),
            ("claimed: multi", "darkgrey", [(multi, None) for _, multi in claims]),
        ]
        for key in keys:
            values = [spreads[s].get(key) for s in sizes]
            series.append(
                (
                    f"{key[0]} {concurrency_label(*key)}",
                    stack_color(key[0], [k[0] for k in keys]),
                    [(v.median, v) if v else (None, None) for v in values],
                )
            )
        width = 0.8 / len(series)
        for i, (label, color, values) in enumerate(series):
            points = [(j, v, s) for j, (v, s) in enumerate(values) if v]
            xs = [j - 0.4 + width * (i + 0.5) for j, _, _ in points]
            ys = [v for _, v, _ in points]
            errors = [
                [v - (s.low if s else v) for _, v, s in points],
                [(s.high if s else v) - v for _, v, s in points],
            ]
            hatch = "xx" if label.startswith("claimed") else ""
            bars = ax.bar(
                xs, ys, width, label=label, hatch=hatch, color=color, yerr=errors, capsize=2
            )
            ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_xticks(range(len(sizes)), [f"{s} requests" for s in sizes])
        log_axis(ax, [v for _, _, values in series for v, _ in values if v])
        ax.set_ylabel("seconds (log; median, whiskers min-max; hatched: claimed)", fontsize=8)
        ax.set_title(WORKLOADS[workload].title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)
