"""``wsgistack crossover``: when does long work belong on the job queue?

A mix of short requests (``/fib/sequence?n=1000``, the original comparison's
request) and long CPU work (naive Fibonacci of a size n, ~1.6**n calls) is
run twice on the same CPU budget, through the compose stacks (docs/jobs.md):

- ``in-request``: the long work is a request too (``GET /fib/<n>?method=naive``);
  nginx -> uWSGI gets the whole budget (APP_CPUS);
- ``jobs``: the long work is a job (``POST /jobs/fib``, then polled until
  done); uWSGI gets (1 - share) of the budget, the job workers the share
  (WORKER_CPUS). nginx and Valkey run outside the budget in both modes
  (Valkey's CPU is reported as the queue's cost), and so does the load
  generator: the budget defaults to half the machine's CPUs.

Each point measures, for one size, the short requests' p50/p95 and rate and
the long work's rate and p95 (submitted to done for jobs). The crossover is
the smallest size from which the short requests' p95 is lower with the long
work on the queue than in the request: below it, the queue's own costs (a
submission and the polls through the app, Valkey) and the web's smaller
share of the CPUs cost the short requests more than the long work's CPU does.

    wsgistack crossover                         # sizes 20,23,26,29, 20 s each
    wsgistack crossover --sizes 24,28 --cpus 2 --share 0.5 --duration 30

Writes reports/crossover-<timestamp>/crossover.csv and crossover.md. The
images must be built (``docker compose --profile uwsgi --profile jobs build``).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

MODES = ("in-request", "jobs")
SHORT_PATH = "/fib/sequence?n=1000"
DEFAULT_SIZES = (20, 23, 26, 29)
# seconds of load before a point's measurement starts (connections, caches)
WARMUP = 2.0
# seconds between two polls of a job, as loadtests/jobs.py polls
POLL = 0.05


@dataclass
class Point:
    """One mode at one size: what the short requests and the long work got."""

    mode: str
    size: int
    seconds: float
    short_requests: int
    short_per_s: float
    short_p50_ms: float
    short_p95_ms: float
    long_done: int
    long_per_s: float
    long_p95_s: float
    # the long work's own CPU, per item, as the app reports it (Server-Timing)
    long_cpu_ms: float
    errors: int
    # Valkey's CPU during the point: the queue's cost outside the budget
    valkey_cpu_s: float = 0.0


COLUMNS = [f.name for f in fields(Point)]


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of them lie (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def mode_env(mode: str, cpus: float, share: float) -> dict[str, str]:
    """The compose knobs of a mode: the CPU budget, split in jobs mode."""
    if mode == "in-request":
        return {"APP_CPUS": f"{cpus:g}"}
    workers = cpus * share
    return {"APP_CPUS": f"{cpus - workers:g}", "WORKER_CPUS": f"{workers:g}"}


def profiles(mode: str) -> list[str]:
    return ["--profile", "uwsgi"] + (["--profile", "jobs"] if mode == "jobs" else [])


# ---------------------------------------------------------------------------
# the load
# ---------------------------------------------------------------------------


def _http(base_url: str, method: str, path: str, body: dict | None = None, timeout: float = 60):
    """One request on its own connection: (status, headers, parsed JSON)."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, response.headers, json.loads(data) if data else None
    finally:
        conn.close()


def _server_cpu_ms(headers) -> float:
    for part in (headers.get("Server-Timing") or "").split(","):
        name, _, params = part.strip().partition(";")
        if name == "cpu" and params.startswith("dur="):
            return float(params[4:])
    return 0.0


@dataclass
class _Tally:
    """What the clients of one point saw, after the warm-up."""

    short_ms: list[float] = field(default_factory=list)
    long_s: list[float] = field(default_factory=list)
    long_cpu_ms: list[float] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _short_client(base_url: str, until: float, counting: Callable[[], bool], tally: _Tally):
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            status, _, _ = _http(base_url, "GET", SHORT_PATH)
        except OSError:
            status = 0
        took = (time.monotonic() - started) * 1000
        if counting():
            with tally.lock:
                if status == 200:
                    tally.short_ms.append(took)
                else:
                    tally.errors += 1


def _long_in_request(base_url: str, size: int) -> float:
    """The long work as a request; its CPU in ms (or an exception)."""
    status, headers, body = _http(base_url, "GET", f"/fib/{size}?method=naive")
    if status != 200 or body is None:
        raise OSError(f"HTTP {status}")
    return _server_cpu_ms(headers)


def _long_as_job(base_url: str, size: int) -> float:
    """The long work as a job: submitted, polled until done; 0 (its CPU is the
    workers', not reported per job)."""
    status, headers, _ = _http(base_url, "POST", "/jobs/fib", {"n": size, "method": "naive"})
    if status != 202:
        raise OSError(f"HTTP {status} on submission")
    location = headers["Location"]
    while True:
        status, _, body = _http(base_url, "GET", location)
        if status != 200 or body is None:
            raise OSError(f"HTTP {status} on {location}")
        if body["state"] == "done":
            return 0.0
        if body["state"] == "failed":
            raise OSError(f"job failed: {body['error']}")
        time.sleep(POLL)


def _long_client(
    base_url: str, mode: str, size: int, until: float, counting: Callable[[], bool], tally: _Tally
):
    work = _long_in_request if mode == "in-request" else _long_as_job
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            cpu_ms = work(base_url, size)
            ok = True
        except (OSError, KeyError, ValueError):
            cpu_ms, ok = 0.0, False
        took = time.monotonic() - started
        # an item counts in the point it finished in
        if counting() and time.monotonic() < until:
            with tally.lock:
                if ok:
                    tally.long_s.append(took)
                    if cpu_ms:
                        tally.long_cpu_ms.append(cpu_ms)
                else:
                    tally.errors += 1


def measure(
    base_url: str,
    mode: str,
    size: int,
    seconds: float,
    short_users: int = 4,
    long_users: int = 8,
    valkey_cpu: Callable[[], float] | None = None,
) -> Point:
    """Run the mix for WARMUP + ``seconds`` against a stack already up; one Point."""
    tally = _Tally()
    start = time.monotonic()
    measured_from = start + WARMUP
    until = measured_from + seconds

    def counting() -> bool:
        return time.monotonic() >= measured_from

    threads = [
        threading.Thread(target=_short_client, args=(base_url, until, counting, tally))
        for _ in range(short_users)
    ] + [
        threading.Thread(target=_long_client, args=(base_url, mode, size, until, counting, tally))
        for _ in range(long_users)
    ]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, measured_from - time.monotonic()))
    valkey_before = valkey_cpu() if valkey_cpu else 0.0
    for thread in threads:
        thread.join()
    valkey_after = valkey_cpu() if valkey_cpu else 0.0
    return Point(
        mode=mode,
        size=size,
        seconds=seconds,
        short_requests=len(tally.short_ms),
        short_per_s=round(len(tally.short_ms) / seconds, 1),
        short_p50_ms=round(percentile(tally.short_ms, 0.5), 1),
        short_p95_ms=round(percentile(tally.short_ms, 0.95), 1),
        long_done=len(tally.long_s),
        long_per_s=round(len(tally.long_s) / seconds, 2),
        long_p95_s=round(percentile(tally.long_s, 0.95), 3),
        long_cpu_ms=round(statistics.median(tally.long_cpu_ms), 1) if tally.long_cpu_ms else 0.0,
        errors=tally.errors,
        valkey_cpu_s=round(valkey_after - valkey_before, 2),
    )


# ---------------------------------------------------------------------------
# the answer
# ---------------------------------------------------------------------------


@dataclass
class Crossover:
    """The smallest size from which the queue protects the short requests better."""

    size: int | None
    # the long work's CPU per item at that size (from the in-request runs)
    cpu_ms: float | None
    sentence: str


def find_crossover(points: list[Point]) -> Crossover:
    by = {(p.mode, p.size): p for p in points}
    sizes = sorted(
        {p.size for p in points if ("in-request", p.size) in by and ("jobs", p.size) in by}
    )
    if not sizes:
        return Crossover(None, None, "No size was measured in both modes.")
    for size in sizes:
        inline, queued = by["in-request", size], by["jobs", size]
        if queued.short_p95_ms < inline.short_p95_ms:
            cost = inline.long_cpu_ms
            throughput = (
                f"{queued.long_per_s:g} instead of {inline.long_per_s:g} long items/s"
                if inline.long_per_s
                else "the long work's rate as measured"
            )
            return Crossover(
                size,
                cost or None,
                f"From naive n={size} (about {cost:g} ms of CPU per item) the short requests' "
                f"p95 is lower with the long work on the job queue ({queued.short_p95_ms:g} ms) "
                f"than in the request ({inline.short_p95_ms:g} ms), at {throughput} on the "
                f"same CPUs.",
            )
    largest = sizes[-1]
    return Crossover(
        None,
        None,
        f"Up to naive n={largest} (about {by['in-request', largest].long_cpu_ms:g} ms of CPU), "
        "the short requests' p95 stayed lower with the long work in the request: "
        "no crossover in the sizes measured.",
    )


def write_report(out: Path, points: list[Point], meta: dict[str, str]) -> Crossover:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "crossover.csv", "w", newline="") as sink:
        writer = csv.DictWriter(sink, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(p) for p in points)
    answer = find_crossover(points)
    lines = [
        "# When long work belongs on the job queue (wsgistack crossover)",
        "",
        f"**{answer.sentence}**",
        "",
        ", ".join(f"{k}: {v}" for k, v in meta.items()),
        "",
        "| size n | mode | long CPU ms | short p50 ms | short p95 ms | short/s | long/s "
        "| long p95 s | errors | Valkey CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in sorted(points, key=lambda p: (p.size, MODES.index(p.mode))):
        lines.append(
            f"| {p.size} | {p.mode} | {p.long_cpu_ms:g} | {p.short_p50_ms:g} | "
            f"{p.short_p95_ms:g} | {p.short_per_s:g} | {p.long_per_s:g} | {p.long_p95_s:g} | "
            f"{p.errors} | {p.valkey_cpu_s:g} |"
        )
    (out / "crossover.md").write_text("\n".join(lines) + "\n")
    return answer
