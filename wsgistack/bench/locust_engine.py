"""Load generation with Locust: a fixed-time run of a workload's User class, and
the replay of the original comparison's batches (loadtests/batches.py).

Locust runs headless in a subprocess, so its CPU is its own, with the
measurement probe (wsgistack/locust_probe.py) beside the locustfile.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from wsgistack.bench.cpu_time import MACHINE, SERVERS, cpu_ms_per_request, other_cores
from wsgistack.bench.endpoints import Endpoint
from wsgistack.bench.plan import BATCH_USERS, WARMUP_SECONDS, Workload, batch_sizes
from wsgistack.bench.results import BatchResult, Result
from wsgistack.bench.sampling import ProcessSampler
from wsgistack.stacks import ROOT

LOCUSTFILE = ROOT / "loadtests" / "fib.py"
BATCH_LOCUSTFILE = ROOT / "loadtests" / "batches.py"
PROBE = Path(__file__).resolve().parents[1] / "locust_probe.py"
# a generator process using this much of a core is the bottleneck itself
GENERATOR_BOUND_CORES = 0.8
_BATCH_NAME = re.compile(r"(\d+) requests(?: #(\d+))?")


def locust_argv(
    locustfile: Path,
    user_class: str,
    base_url: str,
    out_prefix: Path,
    extra: list[str],
    html: bool = False,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{locustfile},{PROBE}",
        "--headless",
        "--only-summary",
        "--host",
        base_url,
        "--csv",
        str(out_prefix),
        # Locust's HTML report is ~3 MB a run: only on request (--locust-html)
        *(["--html", f"{out_prefix}.html"] if html else []),
        "--probe-json",
        f"{out_prefix}.probe.json",
        *extra,
        # none: every User class of the locustfile
        *([user_class] if user_class else []),
    ]


def run_process(argv: list[str], log_path: Path, timeout: float) -> int | None:
    """Run a load generator to its end (or kill it after ``timeout``); its exit code,
    None if killed."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=log_path.parent,  # no ./locust.conf of the caller's applies
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # its own group: a Ctrl-C reaches the benchmark, which stops it
            start_new_session=True,
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def log_tail(path: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:])
    return ""


def new_result(endpoint: Endpoint, workload: Workload, users: int, engine: str) -> Result:
    return Result(
        endpoint.stack,
        endpoint.concurrency.processes,
        endpoint.concurrency.threads,
        workload.name,
        engine=engine,
        interpreter=endpoint.interpreter,
        repeat=endpoint.repeat,
        users=users,
        python=endpoint.python,
        python_build=endpoint.python_build,
        accept_encoding=workload.accept_encoding,
    )


def account(result: Result, sampler: ProcessSampler, start: float, end: float) -> None:
    """The servers' and the rest of the machine's CPU over the measured window, the
    servers' peak memory."""
    if not sampler.roots:
        # in containers the servers' processes are out of sight: no server or other CPU
        return
    memory = sampler.peak_memory()
    if memory is not None:
        result.rss_mb, result.pss_mb, result.uss_mb = memory.rss_mb, memory.pss_mb, memory.uss_mb
        result.server_processes = memory.processes
    result.server_cores = sampler.cores(start, end, SERVERS)
    result.other_cores = other_cores(
        sampler.cores(start, end, MACHINE), result.server_cores, result.generator_cores
    )
    result.server_cpu_ms = cpu_ms_per_request(result.server_cores, result.seconds, result.requests)


def measure(
    endpoint: Endpoint,
    workload: Workload,
    users: int,
    seconds: float,
    out_dir: Path,
    locustfile: Path = LOCUSTFILE,
    html: bool = False,
) -> Result:
    """Load ``endpoint`` with ``users`` closed-loop Locust users of ``workload`` for ``seconds``."""
    run_id = endpoint.run_id(workload.name)
    prefix = out_dir / "locust" / run_id
    prefix.parent.mkdir(parents=True, exist_ok=True)
    result = new_result(endpoint, workload, users, "locust")
    result.engine_files = str(prefix.relative_to(out_dir)) + "*"
    extra = [
        "-u",
        str(users),
        "-r",
        str(users),
        "--probe-warmup",
        str(WARMUP_SECONDS),
        "--probe-seconds",
        str(seconds),
        # a safety net only: the probe ends the run
        "-t",
        f"{int(seconds + WARMUP_SECONDS + 60)}s",
        *(
            ["--probe-accept-encoding", workload.accept_encoding]
            if workload.accept_encoding
            else []
        ),
    ]
    argv = locust_argv(locustfile, workload.user_class, endpoint.base_url, prefix, extra, html)
    with ProcessSampler(endpoint.pids) as sampler:
        result.exit_code = run_process(argv, Path(f"{prefix}.log"), seconds + 120)
    try:
        probe = json.loads(Path(f"{prefix}.probe.json").read_text())
    except (OSError, ValueError):
        result.error = f"Locust wrote no results: {log_tail(Path(f'{prefix}.log'))}"
        return result
    start, end = probe["window_start"], probe["window_end"]
    if not start or not end or end <= start:
        result.error = f"the run never got going: {log_tail(Path(f'{prefix}.log'))}"
        return result
    total = probe["total"]
    result.seconds = end - start
    result.requests = total["requests"]
    result.failures = total["failures"]
    result.rps = total["requests"] / result.seconds
    if total["requests"]:
        result.avg_ms = total["avg_ms"]
        result.p50_ms, result.p95_ms, result.p99_ms = (
            total["p50_ms"],
            total["p95_ms"],
            total["p99_ms"],
        )
    result.generator_cores = probe["generator_cores"]
    result.app_cpu_ms = probe["cpu_ms_mean"]
    result.app_ms = probe["app_ms_mean"]
    result.compressed = probe.get("compressed")
    account(result, sampler, start, end)
    result.generator_bound = (result.generator_cores or 0) >= GENERATOR_BOUND_CORES
    return result


def parse_batches(entries: list[dict], endpoint: Endpoint, workload: str, sizes: dict[int, int]):
    """The replay's BatchResults from the probe's entries: one per batch that should have run."""
    timed = {}
    for entry in entries:
        match = _BATCH_NAME.fullmatch(entry["name"]) if entry["method"] == "BATCH" else None
        if match:
            timed[(int(match[1]), int(match[2] or 1))] = entry
    results = []
    for size in sorted(sizes):
        for repeat in range(1, sizes[size] + 1):
            b = BatchResult(
                endpoint.stack,
                endpoint.concurrency.processes,
                endpoint.concurrency.threads,
                workload,
                size,
                repeat,
            )
            entry = timed.get((size, repeat))
            if entry is None:
                b.error = "not completed"
            else:
                b.seconds = entry["avg_ms"] / 1000
                b.failures = entry["failures"]
            results.append(b)
    return results


def replay(
    endpoint: Endpoint, workload: Workload, sizes: dict[int, int], out_dir: Path, html: bool = False
) -> list[BatchResult]:
    """Time batches of requests with loadtests/batches.py's load shape, each size repeated."""
    run_id = endpoint.run_id(f"{workload.name}-batches")
    prefix = out_dir / "locust" / run_id
    prefix.parent.mkdir(parents=True, exist_ok=True)
    order = batch_sizes(sizes)
    extra = [
        "--batch-sizes",
        ",".join(map(str, order)),
        "--batch-users",
        str(BATCH_USERS),
        # a batch first, not timed: the generator's connections and the servers warm
        "--batch-warmup",
        str(max(2 * BATCH_USERS, endpoint.concurrency.slots)),
    ]
    argv = locust_argv(
        BATCH_LOCUSTFILE, workload.batch_class, endpoint.base_url, prefix, extra, html
    )
    # generous: every request one after another, at ten times the usual time
    timeout = 60 + sum(order) * workload.request_seconds * 10 + len(order)
    run_process(argv, Path(f"{prefix}.log"), timeout)
    try:
        entries = json.loads(Path(f"{prefix}.probe.json").read_text())["entries"]
    except (OSError, ValueError, KeyError):
        entries = []
    results = parse_batches(entries, endpoint, workload.name, sizes)
    for b in results:
        if b.error:
            b.error += f": {log_tail(Path(f'{prefix}.log'), 3)}"
    return results
