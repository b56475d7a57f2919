"""The report's content: results.csv, batches.csv, charts/*.png, and the
values templates/report.md.j2 is rendered with (``build_context``); export.py
turns them into report.md and report.html.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from wsgistack.bench import answer, charts, export, goals, interpreters
from wsgistack.bench.answer import CLAIMED
from wsgistack.bench.locust_engine import GENERATOR_BOUND_CORES
from wsgistack.bench.plan import (
    BATCH_USERS,
    BENCH_WORKLOADS,
    WARMUP_SECONDS,
    WORKLOADS,
    Mode,
)
from wsgistack.bench.results import (
    BATCH_COLUMNS,
    RESULT_COLUMNS,
    BatchResult,
    Result,
    batch_rows,
    find,
    num,
    result_rows,
    write_csv,
)


@dataclass
class Outcome:
    results: list[Result] = field(default_factory=list)
    batches: list[BatchResult] = field(default_factory=list)
    interrupted: bool = False


def versions() -> str:
    """The servers' and load generators' versions, as each one reports it."""
    found = []
    for label, argv, pattern in (
        ("nginx", ["nginx", "-v"], r"nginx/(\S+)"),
        ("uWSGI", ["uwsgi", "--version"], r"^(\S+)"),
        ("Apache", ["apache2", "-v"], r"Apache/(\S+)"),
        ("gunicorn", [str(Path(sys.executable).with_name("gunicorn")), "--version"], r"([\d.]+)"),
        ("wrk", ["wrk", "--version"], r"wrk (\S+)"),
    ):
        path = shutil.which(argv[0]) or shutil.which(argv[0], path="/usr/sbin:/sbin")
        if path is None:
            continue
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([path, *argv[1:]], capture_output=True, text=True, timeout=10)
            match = re.search(pattern, out.stdout + out.stderr, re.M)
            if match:
                found.append(f"{label} {match[1]}")
    return ", ".join(found)


def machine_line() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model or platform.machine()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; {versions()}; "
        f"load average at the start: {load}"
    )


def run_row(r: Result) -> list[str]:
    """A results table's row: stack, processes x threads, figures, note."""
    label = charts.concurrency_label(r.stack, r.concurrency)
    if r.error:
        return [r.stack, label, *["-"] * 9, f"error: {r.error}"]
    failed = f"{r.failures} ({r.fail_ratio:.1%})" if r.failures else "0"
    return [
        r.stack, label, num(r.rps, 1), num(r.p50_ms, 1), num(r.p95_ms, 1), num(r.p99_ms, 1),
        failed, num(r.server_cores, 2), f"{num(r.app_cpu_ms, 2)} / {num(r.server_cpu_ms, 2)}",
        num(r.generator_cores, 2), num(r.other_cores, 2),
        "; ".join(note for note in (
            "**generator-bound**" if r.generator_bound else "",
            queue_note(r),
            f"{r.reconnects:,} reconnects (the server closed the connection)"
            if r.reconnects else "",
        ) if note),
    ]  # fmt: skip


def queue_note(r: Result) -> str:
    """What the server said of itself: its listen queue and busy slots."""
    if r.queue_peak is None:
        return ""
    note = f"queue {r.queue_peak} at most, {num(r.queue_median, 0)} median"
    if r.busy_slots is not None:
        note += f", {r.busy_slots:.0%} of slots busy"
    return f"**saturated**: {note}" if r.saturated else note


def replay_rows(batches: list[BatchResult], workload: str):
    """The replay table of one workload: its columns and a row per batch size."""
    chosen = [b for b in batches if b.workload == workload]
    keys = sorted(dict.fromkeys((b.stack, b.concurrency) for b in chosen),
                  key=lambda k: k[0] != "devserver")  # fmt: skip
    rows = []
    for size in sorted({b.requests for b in chosen}):
        spreads = answer.batch_spreads(chosen, workload, size)
        dev, multi = CLAIMED.get(size, (None, None))
        cells = []
        for key in keys:
            s = spreads.get(key)
            failed = sum(b.failures or 0 for b in chosen if (b.stack, b.concurrency, b.requests)
                         == (*key, size))  # fmt: skip
            if s is None:
                cells.append(
                    "not completed"
                    if any((b.stack, b.concurrency, b.requests) == (*key, size) for b in chosen)
                    else "-"
                )
            elif s.count > 1:
                cells.append(f"{s.median:.3f} s ({s.low:.3f}-{s.high:.3f}, {s.count} runs)")
            else:
                cells.append(f"{s.median:.3f} s")
            if failed:
                cells[-1] += f" ({failed} failed)"
        rows.append([str(size), f"{num(dev, 2)} s", f"{num(multi, 2)} s",
                     f"{num(answer.claimed_ratio(size), 2)} x", *cells,
                     f"{num(answer.replay_ratio(spreads), 2)} x"])  # fmt: skip
    # the claims were made for the sequence request; beside the others for scale
    claim = "claimed" if workload == "sequence" else "claimed (for sequence)"
    head = ["requests", f"{claim}: dev server", f"{claim}: multi", f"{claim} ratio",
            *(f"{stack} {charts.concurrency_label(stack, pxt)}" for stack, pxt in keys),
            "measured ratio"]  # fmt: skip
    return head, rows


RESULT_HEAD = [
    "stack", "processes x threads", "req/s", "p50 ms", "p95 ms", "p99 ms", "failed",
    "server CPU, cores", "CPU ms per request: app / server", "generator, cores",
    "other load, cores", "note",
]  # fmt: skip


def answer_row(a: answer.Answer) -> list[str]:
    best = a.pick
    if best is None:
        return [a.title, "none met the limits", "-", "-", a.reason]
    label = charts.concurrency_label(best.stack, best.concurrency)
    flag = " (generator-bound: the server may do more)" if best.generator_bound else ""
    if best.saturated:
        flag += f" (saturated: {num(best.queue_median, 0)} requests queued, median)"
    return [a.title, f"**{best.stack} {label}**", num(best.rps, 1), num(best.p95_ms),
            a.reason + flag]  # fmt: skip


def overhead_row(o: answer.Overhead) -> list[str]:
    share = f"{o.share:.0%}" if o.share is not None else "-"
    label = charts.concurrency_label(o.stack, o.concurrency)
    return [o.stack, label, o.workload, o.engine, num(o.server_cpu_ms, 3),
            num(o.app_cpu_ms, 3), num(o.overhead_ms, 3), share]  # fmt: skip


def memory_rows(results: list[Result]) -> list[list[str]]:
    """Per stack and processes x threads: its server process tree at its largest over
    the workloads (the run with the most PSS)."""
    rows = []
    for stack, pxt in dict.fromkeys((r.stack, r.concurrency) for r in results):
        runs = [r for r in results if (r.stack, r.concurrency) == (stack, pxt) and r.pss_mb]
        if runs:
            r = max(runs, key=lambda r: r.pss_mb)
            per_process = r.pss_mb / r.server_processes if r.server_processes else None
            rows.append([stack, charts.concurrency_label(stack, pxt), str(r.server_processes),
                         num(r.rss_mb), num(r.pss_mb), num(r.uss_mb), num(per_process, 1),
                         r.workload])  # fmt: skip
    return rows


def replay_summary(batches: list[BatchResult]) -> list[str]:
    summary = []
    for workload in dict.fromkeys(b.workload for b in batches):
        largest = max(b.requests for b in batches if b.workload == workload)
        ratio = answer.replay_ratio(answer.batch_spreads(batches, workload, largest))
        summary.append(
            f"{WORKLOADS[workload].title}, {largest} requests: measured {num(ratio, 2)} x, "
            f"claimed {num(answer.claimed_ratio(largest), 2)} x"
        )
    return summary


def sequence_note(results: list[Result], batches: list[BatchResult]) -> str:
    """What the matrix says about the sequence ratio beyond the cores: CPU per request."""
    size = max((b.requests for b in batches if b.workload == "sequence"), default=None)
    spreads = answer.batch_spreads(batches, "sequence", size) if size else {}
    stacks = {k: s for k, s in spreads.items() if k[0] != "devserver"}
    if not stacks or answer.DEV_BASELINE not in spreads:
        return ""
    stack, pxt = min(stacks, key=lambda k: stacks[k].median)
    dev = find(results, *answer.DEV_BASELINE, "sequence")
    fast = find(results, stack, pxt, "sequence")
    if not (dev and fast and dev.server_cpu_ms and fast.server_cpu_ms):
        return ""
    return (
        f" Here the development server also spent {dev.server_cpu_ms:.2f} ms of server CPU "
        f"per sequence request against {fast.server_cpu_ms:.2f} ms for {stack}, the "
        f"fastest stack at {size} requests: it parses HTTP in Python and logs every request."
    )


def draw_charts(outcome: Outcome, folder: Path, overheads) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    drawn = {}
    for name in dict.fromkeys(r.workload for r in outcome.results):
        path = charts.chart_workload(outcome.results, name, folder / f"{name}.png")
        if path:
            drawn[name] = path
    for name, path in (
        ("overhead", charts.chart_overhead(overheads, folder / "overhead.png")),
        ("replay", charts.chart_replay(outcome.batches, folder / "replay.png")),
    ):
        if path:
            drawn[name] = path
    return drawn


def comparison(results: list[Result], cpuset: str) -> dict | None:
    """The interpreter axis' section: None without runs of that axis."""
    if not any(r.interpreter for r in results):
        return None
    servers = interpreters.axis(results)[1]
    tables = []
    for workload in interpreters.SCALING_WORKLOADS:
        head, rows = interpreters.side_by_side(results, workload)
        if rows:
            tables.append((WORKLOADS[workload].title, head, rows))
    return {
        "verdict": interpreters.verdict(results),
        "interpreter_rows": interpreters.interpreter_rows(results),
        "tables": tables,
        "scaling": interpreters.scaling_rows(results),
        "memory": interpreters.memory_rows(results),
        "memory_workload": WORKLOADS[interpreters.MEMORY_WORKLOAD].title,
        "notes": [note for server, note in interpreters.PROCESS_NOTES.items() if server in servers],
        "cpuset": cpuset or interpreters.default_cpuset(),
        "tag": interpreters.image_tag(),
    }


def write_report(
    out_dir: Path,
    outcome: Outcome,
    *,
    mode: Mode,
    users: int,
    seconds: float,
    title: str = "wsgistack bench",
    docker: bool = False,
    lead: str = "",
    with_answer: bool = True,
    with_goals: bool = True,
    engine_html: bool = False,
    extra_charts: dict[str, Path] | None = None,
    cpuset: str = "",
) -> list[goals.Verdict]:
    """Every file of the report; the goals' verdicts. ``lead``: Markdown put first,
    a Jinja2 template: ``{{ chart_url("name") }}`` is the address of a chart of
    ``extra_charts`` in either file."""
    write_csv(out_dir / "results.csv", RESULT_COLUMNS, result_rows(outcome.results))
    if outcome.batches:
        write_csv(out_dir / "batches.csv", BATCH_COLUMNS, batch_rows(outcome.batches, CLAIMED))
    measured = list(dict.fromkeys(r.workload for r in outcome.results))
    overheads = answer.overheads(
        outcome.results, [w for w in BENCH_WORKLOADS if w in measured and w != "io"]
    )
    drawn = {**draw_charts(outcome, out_dir / "charts", overheads), **(extra_charts or {})}
    context = build_context(
        outcome,
        overheads,
        answers=answer.answers(outcome.results, measured) if with_answer else [],
        verdicts=goals.evaluate(outcome.results) if with_goals else [],
        mode=mode,
        users=users,
        seconds=seconds,
        title=f"{title}: {out_dir.name}",
    )
    context.update(
        docker=docker, engine_html=engine_html, comparison=comparison(outcome.results, cpuset)
    )
    export.write_documents(out_dir, context, drawn, lead)
    return context["verdicts"]


def build_context(
    outcome: Outcome,
    overheads: list[answer.Overhead],
    *,
    answers: list[answer.Answer],
    verdicts: list[goals.Verdict],
    mode: Mode,
    users: int,
    seconds: float,
    title: str,
) -> dict:
    """The values templates/report.md.j2 is rendered with: the measured figures
    as table rows, and what the report says of them."""
    results, batches = outcome.results, outcome.batches
    workloads = list(dict.fromkeys(r.workload for r in results))
    replays = {w: replay_rows(batches, w) for w in dict.fromkeys(b.workload for b in batches)}
    return {
        "title": title,
        "machine": machine_line(),
        "cores": os.cpu_count(),
        "users": users,
        "seconds": f"{seconds:g}",
        "warmup": f"{WARMUP_SECONDS:g}",
        "generator_bound_cores": GENERATOR_BOUND_CORES,
        "interrupted": outcome.interrupted,
        "mode": mode,
        # the answer and where the time goes
        "answers": answers,
        "answer_rows": [answer_row(a) for a in answers],
        "overheads": overheads,
        "overhead_rows": [overhead_row(o) for o in overheads],
        "overhead_at": answer.overhead_concurrency(results),
        # every run, by workload
        "result_head": RESULT_HEAD,
        "result_align": ["---", "---", *["--:"] * 9, "---"],
        "workloads": [
            (
                name,
                WORKLOADS[name].title if name in WORKLOADS else name,
                [run_row(r) for r in results if r.workload == name],
            )
            for name in workloads
        ],
        "memory_rows": memory_rows(results),
        "floor": [r for r in results if r.workload == "floor"],
        "floor_rows": [run_row(r) for r in results if r.workload == "floor"],
        # the replayed batches
        "replays": replays,
        "replay_titles": {w: WORKLOADS[w].title for w in replays},
        "replay_summary": replay_summary(batches),
        "replay_at": next(
            (b.concurrency for b in batches if b.stack != "devserver"), mode.replay_concurrency
        ),
        "sequence_note": sequence_note(results, batches),
        "batch_users": BATCH_USERS,
        "skipped_sizes": skipped_sizes(mode) if replays else {},
        # the goals
        "verdicts": verdicts,
        "goal_rows": [
            [v.goal, v.figure or "-", v.text if v.holds is not False else f"**{v.text}**", v.note]
            for v in verdicts
        ],
    }


def skipped_sizes(mode: Mode) -> dict[str, list]:
    """The batch sizes claimed in the answer that this mode does not replay."""
    return {
        w: [s for s in CLAIMED if s not in sizes]
        for w, sizes in mode.replay_sizes.items()
        if any(s not in sizes for s in CLAIMED)
    }
