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

from wsgistack.bench import answer, charts, export, goals, interpreters, repeats, tables
from wsgistack.bench.answer import CLAIMED
from wsgistack.bench.locust_engine import GENERATOR_BOUND_CORES
from wsgistack.bench.plan import (
    BATCH_USERS,
    COMPRESSED_WORKLOADS,
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

# where the overhead per request is shown: not the I/O-bound request (its
# threads' waiting is no one's CPU)
OVERHEAD_WORKLOADS = ("cpu", "sequence", "sequence-gzip", "floor")


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
    # from here on, one figure per cell: its repetitions' medians and spread
    outcome = Outcome(repeats.cells(outcome.results), outcome.batches, outcome.interrupted)
    write_csv(out_dir / "cells.csv", RESULT_COLUMNS, result_rows(outcome.results))
    measured = list(dict.fromkeys(r.workload for r in outcome.results))
    overheads = answer.overheads(outcome.results, [w for w in OVERHEAD_WORKLOADS if w in measured])
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
    replays = {
        w: tables.replay_rows(batches, w) for w in dict.fromkeys(b.workload for b in batches)
    }
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
        "answer_rows": [tables.answer_row(a) for a in answers],
        "overheads": overheads,
        "overhead_rows": [tables.overhead_row(o) for o in overheads],
        "overhead_at": answer.overhead_concurrency(results),
        # every run, by workload
        "result_head": tables.RESULT_HEAD,
        "result_align": ["---", "---", *["--:"] * 9, "---"],
        "workloads": [
            (
                name,
                WORKLOADS[name].title if name in WORKLOADS else name,
                [tables.run_row(r) for r in results if r.workload == name],
            )
            for name in workloads
        ],
        "memory_rows": tables.memory_rows(results),
        "sent_rows": tables.sent_rows(results),
        "compressed_workloads": [w for w in COMPRESSED_WORKLOADS if w in workloads],
        "repeats": max((r.repeats or 0 for r in results), default=0),
        "floor": [r for r in results if r.workload == "floor"],
        "floor_rows": [tables.run_row(r) for r in results if r.workload == "floor"],
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
