"""``wsgistack sizing``: which processes x threads suit this app on this machine?

    wsgistack sizing --stack uwsgi --workload io --p95-ms 250
    wsgistack sizing --stack gunicorn --app myproject.wsgi:application \\
        --locustfile loadtests/myproject.py --user-class Browse --p95-ms 500

Sweeps processes x threads with the benchmark's machinery (one stack start per
setting, Locust with the measurement probe, psutil on the servers), then
recommends the setting with the highest throughput whose p95 stays within
--p95-ms, whose failures stay within --max-fail-ratio and, with --max-memory,
whose server processes together stay within that memory (their PSS: each
shared page split between its sharers). The evidence (the table, a heat map of
requests/s and p95, the memory per setting, Locust's statistics) goes to
``reports/sizing-<timestamp>/``.

Another app: --app module:callable (or module:factory()) sets WSGI_APP, which
every stack imports instead of app.wsgi:application (docs/your-app.md); the
module is found from the current folder. Its
scenarios come from --locustfile (the Fibonacci ones check Fibonacci answers).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from wsgistack import bench
from wsgistack.bench import Concurrency, Recommendation, Result, StackRun, Workload, num
from wsgistack.bench.repeats import rate
from wsgistack.runner import StackError
from wsgistack.stacks import STACKS

# stacks whose app server imports WSGI_APP (Apache's app.wsgi imports it too)
APP_STACKS = ("uwsgi", "uwsgi-direct", "apache", "gunicorn", "granian", "devserver")


def memory_size(text: str) -> float:
    """512M, 1.5G, 800000K or a number of MB: the size in MB (MiB)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMG]i?B?)?\s*", text, re.I)
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size like 512M or 1.5G")
    unit = (match[2] or "M")[0].upper()
    return float(match[1]) * {"K": 1 / 1024, "M": 1, "G": 1024}[unit]


def int_list(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers like 1,2,4") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be at least 1")
    return values


def add_parser(sub) -> None:
    cores = os.cpu_count() or 1
    parser = sub.add_parser(
        "sizing",
        help="sweep processes x threads for one stack and workload; recommend a setting",
        description=__doc__.split("\n\n")[2],
    )
    parser.add_argument("--stack", choices=sorted(STACKS), default="uwsgi")
    parser.add_argument(
        "--workload",
        choices=sorted(bench.WORKLOADS),
        default="io",
        help="a scenario of loadtests/fib.py (default io)",
    )
    parser.add_argument(
        "--p95-ms", type=bench.positive(float), default=500, help="p95 limit (default 500)"
    )
    parser.add_argument(
        "--max-fail-ratio",
        type=float,
        default=0.01,
        help="a setting failing more requests than this is out (default 0.01)",
    )
    parser.add_argument(
        "--max-memory",
        type=memory_size,
        help="a setting whose server processes together take more memory (PSS) than "
        "this is out, e.g. 512M or 1.5G (default: no limit)",
    )
    parser.add_argument(
        "--processes",
        type=int_list,
        default=sorted({1, cores, 2 * cores}),
        help=f"processes to try (default {','.join(map(str, sorted({1, cores, 2 * cores})))})",
    )
    parser.add_argument(
        "--threads", type=int_list, default=[1, 4, 16], help="threads to try (default 1,4,16)"
    )
    parser.add_argument("--app", help="module:callable of your own WSGI app (env WSGI_APP)")
    parser.add_argument("--locustfile", type=Path, help="your own locustfile")
    parser.add_argument(
        "--user-class", help="the User class of --locustfile to run (default: all of them)"
    )
    bench.add_common_arguments(parser, default_port=8091)
    parser.set_defaults(func=main)


def recommendation_lines(
    rec: Recommendation, p95_ms: float, max_fail_ratio: float, max_memory_mb: float | None = None
) -> list[str]:
    """The recommendation in words, for the report and the console."""
    within = f"p95 <= {p95_ms:g} ms and at most {max_fail_ratio:.1%} failed"
    if max_memory_mb is not None:
        within += f" within {max_memory_mb:g} MB of memory (PSS of the server processes)"
    if rec.best is None:
        text = [f"**No setting met the limits** ({within})."]
        if rec.fastest_overall is not None:
            r = rec.fastest_overall
            text.append(
                f"The fastest was {r.concurrency.label}: {r.rps:.1f} req/s at p95 "
                f"{num(r.p95_ms)} ms. Fewer users (--users), a faster app or "
                "a bigger machine would have to close the gap."
            )
        return text
    r = rec.pick
    how = "the highest throughput" if r is rec.best else "as fast as the fastest within the noise"
    text = [
        f"**Recommended: {r.processes} processes x {r.threads} threads** "
        f"(WSGI_PROCESSES={r.processes} WSGI_THREADS={r.threads}): {rate(r)} req/s, "
        f"p95 {num(r.p95_ms)} ms, {num(r.pss_mb)} MB (PSS), {how} with {within}."
    ]
    tied = [c for c in [rec.best, *rec.tied] if c is not r]
    if tied:
        others = ", ".join(f"{c.concurrency.label} ({rate(c)} req/s)" for c in tied)
        text.append(
            f"A tie with {others}: their requests/s ranges over the repetitions overlap, "
            "so none was faster in every round; the lightest (fewest processes, then "
            "threads, then memory) is recommended."
        )
    if r.generator_bound:
        text.append(
            "The load generator was the limit of that run (generator-bound): the "
            "server may do more than measured."
        )
    return text


def chart_grid(
    results: list[Result], rec: Recommendation, limits: tuple, path: Path
) -> Path | None:
    """Heat maps of requests/s, p95 and memory over processes x threads; the pick
    outlined, what is out of the limits hatched."""
    p95_ms, max_fail_ratio, max_memory_mb = limits
    runs = [r for r in results if r.rps is not None]
    if not runs:
        return None
    plt = bench.pyplot()
    processes = sorted({r.processes for r in runs})
    threads = sorted({r.threads for r in runs})
    memory = f"limit {max_memory_mb:g}" if max_memory_mb else "no limit"
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.9 * len(processes) + 2.4))
    for ax, metric, title, cmap in (
        (axes[0], "rps", "requests/s", "Greens"),
        (axes[1], "p95_ms", f"p95 ms (limit {p95_ms:g})", "Oranges"),
        (axes[2], "pss_mb", f"memory of the server processes, PSS MB ({memory})", "Blues"),
    ):
        grid = [[float("nan")] * len(threads) for _ in processes]
        for r in runs:
            grid[processes.index(r.processes)][threads.index(r.threads)] = getattr(r, metric) or 0
        top = max((getattr(r, metric) or 0) for r in runs) or 1
        # the darkest colour stays light enough for black text
        ax.imshow(grid, cmap=cmap, aspect="auto", vmin=0, vmax=top * 1.6)
        for r in runs:
            i, j = processes.index(r.processes), threads.index(r.threads)
            value = num(getattr(r, metric), 1 if metric == "rps" else 0)
            ax.text(j, i, value, ha="center", va="center", fontsize=11)
            out = bench.recommend([r], p95_ms, max_fail_ratio, max_memory_mb).best is None
            if out or r.error:
                ax.add_patch(
                    plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", ec="grey")
                )
        if rec.pick is not None:
            i, j = processes.index(rec.pick.processes), threads.index(rec.pick.threads)
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=3, ec="blue"))
        ax.set_xticks(range(len(threads)), [str(t) for t in threads])
        ax.set_yticks(range(len(processes)), [str(p) for p in processes])
        ax.set_xlabel("threads per process")
        ax.set_ylabel("processes")
        ax.set_title(title, fontsize=10)
    fig.suptitle("blue outline: the recommendation; hatched: out of the limits", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _check(args: argparse.Namespace) -> None:
    if args.app and args.stack not in APP_STACKS:
        raise StackError(
            f"--app: the {args.stack} stack serves deploy/apache-mod_wsgi/app.wsgi; "
            f"use one of {', '.join(APP_STACKS)}"
        )
    if args.app and not args.locustfile:
        raise StackError(
            "--app needs --locustfile: the Fibonacci scenarios check the Fibonacci app's answers"
        )
    if args.app and ":" not in args.app:
        raise StackError(f"--app {args.app!r}: expected module:callable")
    if args.locustfile and not args.locustfile.is_file():
        raise StackError(f"--locustfile {args.locustfile}: no such file")
    if args.stack == "devserver" and args.processes != [1]:
        raise StackError("the development server runs one process: --processes 1")


def main(args: argparse.Namespace) -> int:
    _check(args)
    bench.preflight([args.stack], args.port, docker=False)
    if args.locustfile:
        name = args.user_class or args.locustfile.stem
        # no path: which request your app can take to warm up is the locustfile's to
        # say; the Accept-Encoding its users send too
        workload = Workload(
            name, args.user_class or "", f"{args.locustfile} {name}", "", accept_encoding=""
        )
        locustfile = args.locustfile.resolve()
    else:
        workload, locustfile = bench.WORKLOADS[args.workload], bench.LOCUSTFILE
    overrides = {}
    if args.app:
        overrides["WSGI_APP"] = args.app
        # the servers import the app module from the folder the command runs in
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p
        )
    plan = [
        StackRun(args.stack, Concurrency(p, t), [workload.name])
        for p in args.processes
        for t in args.threads
    ]
    plan = bench.interleave(plan, args.repeats or bench.MODES["default"].repeats)
    seconds = args.duration or bench.MODES["default"].seconds
    out_dir = bench.new_report_dir(args.out, prefix="sizing-")
    with bench.interruptible():
        outcome = bench.execute(
            plan,
            port=args.port,
            users=args.users,
            seconds=seconds,
            out_dir=out_dir,
            locustfile=locustfile,
            workloads={workload.name: workload},
            overrides=overrides,
            engine_html=args.locust_html,
        )
    limits = (args.p95_ms, args.max_fail_ratio, args.max_memory)
    cells = bench.cells(outcome.results)
    rec = bench.recommend(cells, *limits)
    (out_dir / "charts").mkdir(exist_ok=True)
    chart = chart_grid(cells, rec, limits, out_dir / "charts" / "grid.png")
    section = [
        "## Recommendation",
        "",
        *recommendation_lines(rec, *limits),
        "",
        f"Stack: {STACKS[args.stack].description}; app: {args.app or 'app.wsgi:application'}; "
        f"workload: {workload.title}.",
    ]
    if chart:
        section += ["", '![processes x threads]({{ chart_url("grid") }})']
    bench.write_report(
        out_dir,
        outcome,
        mode=bench.MODES["default"],
        users=args.users,
        seconds=seconds,
        title="wsgistack sizing",
        lead="\n".join(section),
        with_answer=False,
        with_goals=False,
        engine_html=args.locust_html,
        extra_charts={"grid": chart} if chart else None,
    )
    bench.print_summary(outcome, [], out_dir)
    for line in recommendation_lines(rec, *limits):
        print(line.replace("**", ""))
    if outcome.interrupted:
        print("wsgistack sizing: interrupted; every server was stopped", file=sys.stderr)
        return 130
    return 0 if rec.best is not None else 1
