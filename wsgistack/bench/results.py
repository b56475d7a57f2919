"""One result type for every run, its CSV, and the look-ups the report makes.

A run is keyed by its axes: stack, processes x threads, workload, load
generator (engine) and interpreter (the Python the app server runs). A new
axis is one more key field with a default; a new measurement is one more
field below them: the CSV columns, the look-ups and the unit tests follow
from the dataclass fields.
"""

from __future__ import annotations

import csv
import dataclasses
import statistics
from dataclasses import dataclass
from pathlib import Path

from wsgistack.bench.plan import LOCUST, Concurrency

# the fields that say which run a row is; every other field is a measurement
KEY_FIELDS = ("stack", "processes", "threads", "workload", "engine", "interpreter")
# ... and the repetition (the round, 1, 2, ...) of that cell: repeats.py


@dataclass
class Result:
    """One workload on one stack at one processes x threads."""

    stack: str
    processes: int
    threads: int
    workload: str
    engine: str = LOCUST
    # the interpreter axis' name (bench/interpreters.py: debian, gil, freethreaded);
    # "" for the runs without that axis
    interpreter: str = ""
    # the round this run was measured in (repeats.py); 0 for a cell's combined figures
    repeat: int = 1
    users: int = 0
    # the Python serving the app, as its /info says: "CPython 3.13.5 no-GIL"
    python: str = ""
    # its build's flags that matter to speed (containers of the interpreter axis)
    python_build: str = ""
    seconds: float | None = None
    requests: int | None = None
    failures: int | None = None
    rps: float | None = None
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    # CPU cores in use on average during the measured window
    server_cores: float | None = None
    generator_cores: float | None = None
    # the rest of the machine: this process, other people's work
    other_cores: float | None = None
    # mean Server-Timing of the answers: CPU and wall time of the request's thread
    app_cpu_ms: float | None = None
    app_ms: float | None = None
    # server processes' CPU (nginx, uWSGI, ... all of it) per request
    server_cpu_ms: float | None = None
    # the server process tree at its largest during the run (sampling.Memory), in MB
    rss_mb: float | None = None
    pss_mb: float | None = None
    uss_mb: float | None = None
    server_processes: int | None = None
    generator_bound: bool = False
    # wrk: connections the server closed after an answer, without keep-alive
    reconnects: int | None = None
    # the Accept-Encoding the load generator sent (plan.Workload), the share of
    # answers that came compressed (a Content-Encoding header), and the bytes
    # an answer took on the wire, headers included (wrk)
    accept_encoding: str = ""
    compressed: float | None = None
    bytes_per_answer: float | None = None
    # a cell's combined figures (repeats.combine): its repetitions measured and
    # failed, and the requests/s of its slowest and fastest repetition
    repeats: int | None = None
    errors: int | None = None
    rps_low: float | None = None
    rps_high: float | None = None
    # the servers' own metrics during the run (server_metrics.py): the listen
    # queue at its longest and its median, and the share of the slots busy
    queue_peak: int | None = None
    queue_median: float | None = None
    busy_slots: float | None = None
    exit_code: int | None = None
    error: str = ""
    # the load generator's own files of this run (CSV; HTML with --locust-html)
    engine_files: str = ""

    @property
    def concurrency(self) -> Concurrency:
        return Concurrency(self.processes, self.threads)

    @property
    def saturated(self) -> bool:
        """Requests waited in the listen queue most of the run: the server
        was at its ceiling, whatever its requests/s say."""
        return bool(self.queue_median)

    @property
    def fail_ratio(self) -> float | None:
        if not self.requests:
            return None
        return (self.failures or 0) / self.requests

    @property
    def overhead_ms(self) -> float | None:
        """Server CPU per request beyond the app's own: what the servers cost."""
        return overhead_ms(self.server_cpu_ms, self.app_cpu_ms)

    @property
    def measured(self) -> bool:
        return self.rps is not None and not self.error


def overhead_ms(server_cpu_ms: float | None, app_cpu_ms: float | None) -> float | None:
    if server_cpu_ms is None or app_cpu_ms is None:
        return None
    return server_cpu_ms - app_cpu_ms


@dataclass
class BatchResult:
    """One batch of the replay: N requests, timed from the first sent to the last answered."""

    stack: str
    processes: int
    threads: int
    workload: str
    requests: int
    # 1, 2, ...: the batches of one size repeat, for their spread
    repeat: int = 1
    seconds: float | None = None
    failures: int | None = None
    error: str = ""

    @property
    def concurrency(self) -> Concurrency:
        return Concurrency(self.processes, self.threads)


@dataclass(frozen=True)
class Spread:
    low: float
    median: float
    high: float
    count: int


def spread(values: list[float]) -> Spread | None:
    if not values:
        return None
    return Spread(min(values), statistics.median(values), max(values), len(values))


def find(results: list[Result], stack: str, concurrency: Concurrency, workload: str):
    """The measured run of a stack at a processes x threads and workload, or None."""
    for r in results:
        if (r.stack, r.concurrency, r.workload) == (stack, concurrency, workload) and r.measured:
            return r
    return None


RESULT_COLUMNS = [f.name for f in dataclasses.fields(Result)]
RESULT_COLUMNS[RESULT_COLUMNS.index("rps") : RESULT_COLUMNS.index("rps")] = ["fail_ratio"]
RESULT_COLUMNS.insert(RESULT_COLUMNS.index("server_cpu_ms") + 1, "overhead_ms")
BATCH_COLUMNS = [f.name for f in dataclasses.fields(BatchResult)] + [
    "claimed_devserver_seconds",
    "claimed_multi_seconds",
]


def num(value: float | None, digits: int = 0) -> str:
    """A figure for people: thousands separated, "-" for none."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def result_rows(results: list[Result]) -> list[dict]:
    return [
        {**dataclasses.asdict(r), "fail_ratio": r.fail_ratio, "overhead_ms": r.overhead_ms}
        for r in results
    ]


def batch_rows(batches: list[BatchResult], claimed: dict[int, tuple[float, float]]) -> list[dict]:
    rows = []
    for b in batches:
        dev, multi = claimed.get(b.requests, (None, None))
        rows.append(
            {
                **dataclasses.asdict(b),
                "claimed_devserver_seconds": dev,
                "claimed_multi_seconds": multi,
            }
        )
    return rows
