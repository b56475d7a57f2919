"""Load generation with wrk, the C load generator from Debian's archive.

Locust in one process tops out near one core, below what the servers do on the
cheapest request, and its own CPU takes a share of a small machine's cores that
differs with the server's speed; wrk, an event loop in C, sends the load at a
fraction of the CPU and starts in milliseconds. It loads every workload of
``wsgistack bench``: one thread, ``users`` connections, each sending its next
request when the last is answered (closed loop), every answer checked for the
workload's text (plan.Workload.expect). wrk has no ramp to wait out: the stack
is warmed up before (endpoints.warm_up), and the whole run is measured.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import time
from pathlib import Path

from wsgistack.bench.endpoints import Endpoint
from wsgistack.bench.locust_engine import (
    GENERATOR_BOUND_CORES,
    account,
    log_tail,
    new_result,
    run_process,
)
from wsgistack.bench.plan import WRK, Workload
from wsgistack.bench.results import Result
from wsgistack.bench.sampling import ProcessSampler

SCRIPT = Path(__file__).with_name("wrk_report.lua")
# one wrk thread: the generator needs one core at most
WRK_THREADS = 1


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def wrk_argv(
    binary: str, url: str, users: int, seconds: float, accept_encoding: str = "", expect: str = ""
) -> list[str]:
    """wrk's command line; ``accept_encoding``: the Accept-Encoding header every
    request carries ("": none, as wrk sends by default); ``expect``: text every
    2xx answer must hold (wrk_report.lua counts the others as wrong)."""
    header = ["--header", f"Accept-Encoding: {accept_encoding}"] if accept_encoding else []
    return [
        binary,
        "--threads",
        str(WRK_THREADS),
        "--connections",
        str(users),
        # wrk takes whole seconds
        "--duration",
        f"{max(1, math.ceil(seconds))}s",
        "--timeout",
        "10s",
        "--script",
        str(SCRIPT),
        *header,
        url,
        # the script's arguments
        "--",
        expect,
    ]


def parse_wrk_output(text: str) -> dict | None:
    """The summary wrk_report.lua prints, or None if wrk printed none."""
    for line in text.splitlines():
        if line.startswith("WSGISTACK "):
            try:
                return json.loads(line.removeprefix("WSGISTACK "))
            except ValueError:
                return None
    return None


def fill_from_summary(result: Result, summary: dict) -> None:
    """Requests, failures (non-2xx/3xx answers, timeouts, connect and write errors),
    connections the server closed, rate, latencies and the app's CPU per request."""
    result.seconds = summary["duration_us"] / 1e6
    result.requests = summary["requests"]
    # not "read": a server closing a connection after its answer without saying so
    # (uWSGI's --http-socket) counts there, and wrk reconnects; a request lost so is
    # not in "requests", so it lowers the rate, not the answers' correctness
    result.failures = sum(
        summary.get(k, 0) for k in ("connect", "write", "status", "timeout", "wrong")
    )
    result.reconnects = summary["read"]
    result.rps = result.requests / result.seconds if result.seconds else None
    if result.requests:
        result.avg_ms = summary["mean_us"] / 1000
        result.p50_ms = summary["p50_us"] / 1000
        result.p95_ms = summary["p95_us"] / 1000
        result.p99_ms = summary["p99_us"] / 1000
    if summary.get("server_timing_count"):
        result.app_cpu_ms = summary["app_cpu_ms_sum"] / summary["server_timing_count"]
    if result.requests:
        result.compressed = summary.get("compressed", 0) / result.requests
        result.bytes_per_answer = summary["bytes"] / result.requests


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_wrk(
    endpoint: Endpoint,
    workload: Workload,
    users: int,
    seconds: float,
    out_dir: Path,
    app_cpu_ms: float | None = None,
) -> Result:
    """Load ``endpoint`` with wrk for ``seconds``; ``app_cpu_ms``: the app's CPU per
    request from the warm-up's Server-Timing, for answers that carry none under load."""
    result = new_result(endpoint, workload, users, WRK)
    binary = wrk_binary()
    if binary is None:
        result.error = "wrk is not installed (apt-get install wrk; make deps)"
        return result
    log = out_dir / "wrk" / f"{endpoint.run_id(workload.name)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    result.engine_files = str(log.relative_to(out_dir))
    argv = wrk_argv(
        binary,
        endpoint.base_url + workload.path,
        users,
        seconds,
        workload.accept_encoding,
        workload.expect,
    )
    # wrk is the only child ending meanwhile: the children's CPU time grows by its own
    cpu_before = children_cpu_seconds()
    with ProcessSampler(endpoint.pids) as sampler:
        start = time.time()
        result.exit_code = run_process(argv, log, seconds + 60)
        end = time.time()
    summary = parse_wrk_output(log.read_text(errors="replace")) if log.exists() else None
    if summary is None or not summary["duration_us"]:
        result.error = f"wrk wrote no summary: {log_tail(log)}"
        return result
    fill_from_summary(result, summary)
    # the window: wrk's own run, ending when it exited
    start = max(start, end - result.seconds)
    result.generator_cores = (children_cpu_seconds() - cpu_before) / result.seconds
    if result.app_cpu_ms is None:
        result.app_cpu_ms = app_cpu_ms
    account(result, sampler, start, end)
    result.generator_bound = result.generator_cores >= GENERATOR_BOUND_CORES * WRK_THREADS
    return result
