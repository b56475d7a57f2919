"""The report's tables, a row at a time: a run, an answer, the overhead, the
replay, memory, and what the load generators sent (report.build_context
renders templates/report.md.j2 with them)."""

from __future__ import annotations

from wsgistack.bench import answer, charts
from wsgistack.bench.answer import CLAIMED
from wsgistack.bench.plan import WORKLOADS
from wsgistack.bench.repeats import rate
from wsgistack.bench.results import BatchResult, Result, num


def run_row(r: Result) -> list[str]:
    """A results table's row: stack, processes x threads, figures, note."""
    label = charts.concurrency_label(r.stack, r.concurrency)
    if r.error:
        return [r.stack, label, *["-"] * 9, f"error: {r.error}"]
    failed = f"{r.failures} ({r.fail_ratio:.1%})" if r.failures else "0"
    return [
        r.stack,
        label,
        rate(r),
        num(r.p50_ms, 1),
        num(r.p95_ms, 1),
        num(r.p99_ms, 1),
        failed,
        num(r.server_cores, 2),
        f"{num(r.app_cpu_ms, 2)} / {num(r.server_cpu_ms, 2)}",
        num(r.generator_cores, 2),
        num(r.other_cores, 2),
        "; ".join(
            note
            for note in (
                "**generator-bound**" if r.generator_bound else "",
                queue_note(r),
                f"{r.reconnects:,} reconnects (the server closed the connection)"
                if r.reconnects
                else "",
                f"{r.errors} of {r.errors + r.repeats} runs failed" if r.errors else "",
                f"{r.compressed:.0%} of answers compressed" if r.compressed else "",
            )
            if note
        ),
    ]


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
    keys = sorted(
        dict.fromkeys((b.stack, b.concurrency) for b in chosen), key=lambda k: k[0] != "devserver"
    )
    rows = []
    for size in sorted({b.requests for b in chosen}):
        spreads = answer.batch_spreads(chosen, workload, size)
        dev, multi = CLAIMED.get(size, (None, None))
        cells = []
        for key in keys:
            s = spreads.get(key)
            failed = sum(
                b.failures or 0
                for b in chosen
                if (b.stack, b.concurrency, b.requests) == (*key, size)
            )
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
        rows.append(
            [
                str(size),
                f"{num(dev, 2)} s",
                f"{num(multi, 2)} s",
                f"{num(answer.claimed_ratio(size), 2)} x",
                *cells,
                f"{num(answer.replay_ratio(spreads), 2)} x",
            ]
        )
    # the claims were made for the sequence request; beside the others for scale
    claim = "claimed" if workload == "sequence" else "claimed (for sequence)"
    head = [
        "requests",
        f"{claim}: dev server",
        f"{claim}: multi",
        f"{claim} ratio",
        *(f"{stack} {charts.concurrency_label(stack, pxt)}" for stack, pxt in keys),
        "measured ratio",
    ]
    return head, rows


RESULT_HEAD = [
    "stack",
    "processes x threads",
    "req/s (range)",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "failed",
    "server CPU, cores",
    "CPU ms per request: app / server",
    "generator, cores",
    "other load, cores",
    "note",
]


def setting(r: Result) -> str:
    return f"{r.stack} {charts.concurrency_label(r.stack, r.concurrency)}"


def tie_text(a: answer.Answer) -> str:
    """Who the pick is tied with, in words; "" if nobody."""
    rec = a.recommendation
    tied = [r for r in [rec.best, *rec.tied] if r is not a.pick]
    if not tied:
        return ""
    names = ", ".join(f"{setting(r)} {rate(r, 0)}" for r in tied)
    return f"tie with {names}: " + (
        "the lightest of them" if rec.best is not a.pick else "the fastest and the lightest"
    )


def answer_row(a: answer.Answer) -> list[str]:
    best = a.pick
    if best is None:
        return [a.title, "none met the limits", "-", "-", "-", a.reason]
    flag = " (generator-bound: the server may do more)" if best.generator_bound else ""
    if best.saturated:
        flag += f" (saturated: {num(best.queue_median, 0)} requests queued, median)"
    alone = "no: the fastest in every round" if (best.repeats or 0) > 1 else "one run: no spread"
    return [
        a.title,
        f"**{setting(best)}**",
        rate(best),
        num(best.p95_ms),
        tie_text(a) or alone,
        a.reason + flag,
    ]


def overhead_row(o: answer.Overhead) -> list[str]:
    share = f"{o.share:.0%}" if o.share is not None else "-"
    label = charts.concurrency_label(o.stack, o.concurrency)
    return [
        o.stack,
        label,
        o.workload,
        o.engine,
        num(o.server_cpu_ms, 3),
        num(o.app_cpu_ms, 3),
        num(o.overhead_ms, 3),
        share,
    ]


def sent_rows(results: list[Result]) -> list[list[str]]:
    """Per workload: the request, the generator, the Accept-Encoding it sent, which
    stacks answered compressed, and the bytes an answer took (headers included)."""
    rows = []
    for name in dict.fromkeys(r.workload for r in results):
        runs = [r for r in results if r.workload == name and r.measured]
        if not runs:
            continue
        workload = WORKLOADS.get(name)
        packed = [r.stack for r in runs if r.compressed and r.compressed >= 0.5]
        sizes = [r.bytes_per_answer for r in runs if r.bytes_per_answer]
        size = f"{num(min(sizes))}-{num(max(sizes))}" if sizes else "-"
        sent = runs[0].accept_encoding or "the generator's own"
        rows.append(
            [
                name,
                f"`{workload.path}`" if workload else "-",
                runs[0].engine,
                f"`{sent}`",
                ", ".join(dict.fromkeys(packed)) or "none",
                size,
            ]
        )
    return rows


def memory_rows(results: list[Result]) -> list[list[str]]:
    """Per stack and processes x threads: its server process tree at its largest over
    the workloads (the run with the most PSS)."""
    rows = []
    for stack, pxt in dict.fromkeys((r.stack, r.concurrency) for r in results):
        runs = [r for r in results if (r.stack, r.concurrency) == (stack, pxt) and r.pss_mb]
        if runs:
            r = max(runs, key=lambda r: r.pss_mb)
            per_process = r.pss_mb / r.server_processes if r.server_processes else None
            rows.append(
                [
                    stack,
                    charts.concurrency_label(stack, pxt),
                    str(r.server_processes),
                    num(r.rss_mb),
                    num(r.pss_mb),
                    num(r.uss_mb),
                    num(per_process, 1),
                    r.workload,
                ]
            )
    return rows
