"""What a stack's options cost per request: variants of the configs in deploy/,
started one after another in interleaved rounds (A B C, A B C, ...: drift on a
shared machine hits every variant alike), each loaded by wrk on a few requests,
with all its server processes' CPU per request (psutil) beside the app's own
(its Server-Timing). Prints one table: per variant and request, the median and
the range over the rounds of requests/s, server CPU per request and overhead
(server CPU minus the app's), and each median's ratio to the first variant's.

    flock /work/heavy.lock .venv/bin/python docs/measurements/stack-costs.py \\
        --rounds 5 --seconds 4 --settings 2x1 --requests up,sequence \\
        granian-bare granian uwsgi

A variant is a stack of wsgistack/stacks.py, or a name below (VARIANTS): a
stack with some of its config lines replaced, each replacement checked to
match exactly once. The configs are copied from deploy/ with the edits
applied; nothing in deploy/ changes. Runs as the benchmark does (the same
runner, warm-up, wrk engine and CPU sampling: wsgistack/bench/); --out keeps
wrk's output and the servers' logs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from wsgistack import stacks
from wsgistack.bench.endpoints import native_endpoint, warm_up
from wsgistack.bench.plan import GZIP, IDENTITY, WRK, Concurrency, StackRun, Workload
from wsgistack.bench.report import versions
from wsgistack.bench.wrk_engine import measure_wrk

REQUESTS = {
    "up": Workload("up", "", "/up", "/up", engine=WRK),
    "sequence": Workload(
        "sequence", "", "/fib/sequence?n=1000", "/fib/sequence?n=1000", engine=WRK
    ),
    "sequence-gzip": Workload(
        "sequence-gzip",
        "",
        "/fib/sequence?n=1000, Accept-Encoding: gzip",
        "/fib/sequence?n=1000",
        engine=WRK,
        accept_encoding=GZIP,
    ),
}
assert all(w.accept_encoding in (IDENTITY, GZIP) for w in REQUESTS.values())


@dataclass(frozen=True)
class Variant:
    stack: str
    # deploy/-relative file -> (old, new) replacements, each old text found once
    edits: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # knobs for this variant only
    knobs: dict[str, str] = field(default_factory=dict)


def edit(path: str, *pairs: tuple[str, str], stack: str) -> Variant:
    return Variant(stack, {path: pairs})


SERVE = "granian/serve.py"
NGINX = "nginx/nginx.conf"
UWSGI = "uwsgi/uwsgi.ini"
HTTPD = "apache-mod_wsgi/httpd.conf"
NO_ACCESS_LOG = ("        log_access=True,", "        log_access=False,")
KEEP_ALIVE = ("            keep_alive=False,", "            keep_alive=True,")
DEFAULT_BACKPRESSURE = ("        backpressure=settings.WSGI_THREADS,", "")
NGINX_LOG = "    access_log /dev/stdout json_lines buffer=4k flush=1s;"
NGINX_NO_LOG = (NGINX_LOG, "    access_log off;")
NGINX_UNBUFFERED_LOG = (NGINX_LOG, "    access_log /dev/stdout json_lines;")
NO_SLOW_LOG = ("log-5xx = true\nlog-slow = {{ SLOW_REQUEST_MS }}", "")
NO_MAX_REQUESTS = ("max-requests = {{ MAX_REQUESTS }}", "max-requests = 0")
APACHE_LOGS = (
    'CustomLog /dev/stdout json_lines "expr=(${LOG_REQUEST}) && (${LOG_PLAIN})"\n'
    'CustomLog /dev/stdout json_lines_encoded "expr=(${LOG_REQUEST}) && !(${LOG_PLAIN})"'
)
APACHE_NO_LOG = (APACHE_LOGS, "")
APACHE_BUFFERED_LOG = (
    "CustomLog /dev/stdout json_lines ",
    "BufferedLogs On\nCustomLog /dev/stdout json_lines ",
)
THUNDER_LOCK = ("thunder-lock = false", "thunder-lock = true")
ESCAPE_WHEN_NEEDED = 'RewriteCond expr "!(${LOG_PLAIN})"\n'
APACHE_NO_EVENTS = ("@mod_wsgi.subscribe_events\n", "")
APACHE_NO_EXTENDED_STATUS = ("RewriteEngine On\n", "ExtendedStatus Off\nRewriteEngine On\n")
VARIANTS: dict[str, Variant] = {
    # the old compression level, for the new default's (GZIP_LEVEL=1) sake
    "uwsgi-gzip-5": Variant("uwsgi", knobs={"GZIP_LEVEL": "5"}),
    "apache-gzip-5": Variant("apache", knobs={"GZIP_LEVEL": "5"}),
    "uwsgi-thunder-lock": edit(UWSGI, THUNDER_LOCK, stack="uwsgi"),
    # the escapes made for every request, as before
    "apache-escape-always": edit(HTTPD, (ESCAPE_WHEN_NEEDED, ""), stack="apache"),
    "apache-no-extended-status": edit(HTTPD, APACHE_NO_EXTENDED_STATUS, stack="apache"),
    "apache-no-wsgi-events": edit("apache-mod_wsgi/app.wsgi", APACHE_NO_EVENTS, stack="apache"),
    "uwsgi-1-nginx-worker": Variant("uwsgi", knobs={"NGINX_WORKERS": "1"}),
    "uwsgi-no-access-log": edit(NGINX, NGINX_NO_LOG, stack="uwsgi"),
    "uwsgi-unbuffered-log": edit(NGINX, NGINX_UNBUFFERED_LOG, stack="uwsgi"),
    "uwsgi-no-slow-log": edit(UWSGI, NO_SLOW_LOG, stack="uwsgi"),
    # no memory-based recycling: no /proc/self/stat read after every request
    "uwsgi-no-memory-reads": Variant("uwsgi", knobs={"RELOAD_ON_RSS_MB": "0"}),
    "uwsgi-no-max-requests": edit(UWSGI, NO_MAX_REQUESTS, stack="uwsgi"),
    "apache-no-access-log": edit(HTTPD, APACHE_NO_LOG, stack="apache"),
    "apache-buffered-log": edit(HTTPD, APACHE_BUFFERED_LOG, stack="apache"),
    "granian-no-access-log": edit(SERVE, NO_ACCESS_LOG, stack="granian"),
    "granian-keep-alive": edit(SERVE, KEEP_ALIVE, stack="granian"),
    "granian-default-backpressure": edit(SERVE, DEFAULT_BACKPRESSURE, stack="granian"),
    "granian-keep-alive-default-backpressure": edit(
        SERVE, KEEP_ALIVE, DEFAULT_BACKPRESSURE, stack="granian"
    ),
    # the two costs of the granian stack's declared behaviour together, the
    # permits left at one per thread
    "granian-keep-alive-no-access-log": edit(SERVE, KEEP_ALIVE, NO_ACCESS_LOG, stack="granian"),
    # the app's metrics off: what they add to the overhead at the floor
    "uwsgi-no-metrics": Variant("uwsgi", knobs={"METRICS": "0"}),
    "apache-no-metrics": Variant("apache", knobs={"METRICS": "0"}),
    "granian-all-three": edit(
        SERVE, KEEP_ALIVE, DEFAULT_BACKPRESSURE, NO_ACCESS_LOG, stack="granian"
    ),
}


def apply(deploy: Path, variant: Variant) -> None:
    for name, pairs in variant.edits.items():
        path = deploy / name
        text = path.read_text()
        for old, new in pairs:
            if text.count(old) != 1:
                raise SystemExit(f"{name}: {old!r} found {text.count(old)} times, not once")
            text = text.replace(old, new)
        path.write_text(text)


def run_variant(name, variant, pxt, port, seconds, users, requests, out_dir, scratch):
    deploy = scratch / name
    if not deploy.exists():
        shutil.copytree(stacks.ROOT / "deploy", deploy)
        apply(deploy, variant)
    stacks.DEPLOY_DIR = deploy
    run = StackRun(variant.stack, pxt, [])
    rows = {}
    with native_endpoint(run, port, out_dir / "logs" / name, **variant.knobs) as endpoint:
        for request in requests:
            workload = REQUESTS[request]
            app_cpu = warm_up(endpoint, workload.path, rounds=20)
            result = measure_wrk(
                endpoint,
                workload,
                users,
                seconds,
                out_dir / name,
                app_cpu_ms=statistics.fmean(app_cpu) if app_cpu else None,
            )
            rows[request] = result
    return rows


def spread(values, digits=3):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    low, median, high = min(values), statistics.median(values), max(values)
    return f"{median:,.{digits}f} ({low:,.{digits}f}-{high:,.{digits}f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="stacks or VARIANTS names")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--settings", default="2x1", help="processes x threads, e.g. 2x1")
    parser.add_argument("--requests", default="up,sequence", help=", ".join(REQUESTS))
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    processes, threads = (int(n) for n in args.settings.split("x"))
    pxt = Concurrency(processes, threads)
    requests = args.requests.split(",")
    known = {**{s: Variant(s) for s in stacks.STACKS}, **VARIANTS}
    unknown = [v for v in args.variants if v not in known]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(known)}")
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="stack-costs-"))
    print(
        f"{datetime.now():%Y-%m-%d %H:%M}; {versions()}; {pxt.label}, wrk {args.users} "
        f"connections, {args.seconds:g} s, {args.rounds} rounds; out: {out_dir}",
        flush=True,
    )
    figures: dict[tuple[str, str], list] = {}
    with tempfile.TemporaryDirectory(prefix="stack-costs-deploy-") as scratch:
        # the servers run as an unprivileged user when this runs as root
        Path(scratch).chmod(0o755)
        for number in range(1, args.rounds + 1):
            for name in args.variants:
                rows = run_variant(
                    name,
                    known[name],
                    pxt,
                    args.port,
                    args.seconds,
                    args.users,
                    requests,
                    out_dir,
                    Path(scratch),
                )
                for request, r in rows.items():
                    figures.setdefault((name, request), []).append(r)
                    print(
                        f"round {number} {name:28} {request:14} {r.rps or 0:9,.0f} req/s "
                        f"server {r.server_cpu_ms or 0:.3f} app {r.app_cpu_ms or 0:.3f} ms"
                        f"{' ' + r.error if r.error else ''}",
                        flush=True,
                    )
    print()
    print(
        "| variant | request | req/s | x first | server CPU ms/req | app CPU ms/req | "
        "overhead ms/req | bytes/answer | compressed |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for request in requests:
        base = None
        for name in args.variants:
            runs = figures[(name, request)]
            rps = [r.rps for r in runs if r.rps]
            median = statistics.median(rps) if rps else None
            base = base or median
            ratio = f"{median / base:.2f}" if median and base else "-"
            size = statistics.median([r.bytes_per_answer or 0 for r in runs])
            packed = statistics.median([r.compressed or 0 for r in runs])
            print(
                f"| {name} | {request} | {spread(rps, 0)} | {ratio} | "
                f"{spread([r.server_cpu_ms for r in runs])} | "
                f"{spread([r.app_cpu_ms for r in runs])} | "
                f"{spread([r.overhead_ms for r in runs])} | {size:,.0f} | {packed:.0%} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
