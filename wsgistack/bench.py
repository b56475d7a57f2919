"""``wsgistack bench``: every stack x processes x threads x workload, measured.

Each stack is started with the runner (``wsgistack.runner.run_stack``), once
per processes x threads setting; Locust (loadtests/fib.py, headless, in a
subprocess so that its CPU is its own) loads it for a fixed time per
workload, with the measurement probe (wsgistack/locust_probe.py) beside the
locustfile. Meanwhile psutil samples the CPU time of the server processes'
trees and of the whole machine. Then loadtests/batches.py replays the original
comparison: how long 10, 100 and 1000 requests take.

Everything lands in ``reports/<timestamp>/``: results.csv and batches.csv (one row
per run and per batch), report.md (the tables, the performance targets with
their figures) and report.html (the same with the charts embedded, a single
file), charts/*.png, Locust's own CSV and HTML per run in locust/, and the
servers' logs in logs/.

matplotlib, rich and psutil are imported by the functions that use them, so
``wsgistack up`` never loads them.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import dataclasses
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from wsgistack.render import RenderError
from wsgistack.runner import (
    StackError,
    check_binaries,
    check_port_free,
    check_system_python,
    http_get,
    run_stack,
)
from wsgistack.settings import Settings
from wsgistack.stacks import ROOT, STACKS, get_stack

LOCUSTFILE = ROOT / "loadtests" / "fib.py"
BATCH_LOCUSTFILE = ROOT / "loadtests" / "batches.py"
PROBE = Path(__file__).with_name("locust_probe.py")
REPORTS_DIR = ROOT / "reports"

# a generator process using this much of a core is the bottleneck itself
GENERATOR_BOUND_CORES = 0.8
# other work on the machine using this many cores makes a run's figures noisy
NOISY_OTHER_CORES = 0.25
# the same request's app CPU differing by more than this between two runs: the
# machine ran at different speeds (shared cores), so their ratio is not the servers'
SPEED_DRIFT = 1.15
# seconds of load before the statistics start, so no run measures its ramp
WARMUP_SECONDS = 0.5
# seconds an idle stack gets to stop before it is killed: the benchmark stops a
# stack only after its load has ended, so there is nothing in flight to drain
IDLE_STOP_GRACE = 5.0
# users sending each batch of the replay, as `ab -c 10` would
BATCH_USERS = 10
# what the original comparison claimed, in seconds: (dev server, multi-process/thread stack)
CLAIMED = {10: (3.25, 2.52), 100: (35.89, 11.61), 1000: (343.74, 96.02)}
# the published ports of the compose stacks (compose.yaml), and the variables moving them
DOCKER_PORT_VARIABLES = {
    "uwsgi": "UWSGI_HTTP_PORT",
    "apache": "APACHE_HTTP_PORT",
    "gunicorn": "GUNICORN_HTTP_PORT",
}
DEFAULT_STACKS = ("uwsgi", "apache", "gunicorn", "devserver", "uwsgi-direct")


@dataclass(frozen=True)
class Workload:
    name: str
    user_class: str
    title: str
    # the class of loadtests/batches.py replaying it, if any
    batch_class: str | None = None
    # seconds one request takes when nothing queues, for time estimates
    request_seconds: float = 0.005


WORKLOADS = {
    w.name: w
    for w in (
        Workload("cpu", "CpuUser", "CPU-bound: /fib/25?method=naive (~20 ms of CPU)",
                 "CpuBatchUser", 0.02),
        Workload("sequence", "SequenceUser",
                 "the original comparison's request: /fib/sequence?n=1000", "SequenceBatchUser"),
        Workload("io", "IoUser", "I/O-bound: /io?ms=100 (the app sleeps 100 ms)",
                 "IoBatchUser", 0.1),
        Workload("fanout", "FanoutUser", "thread fan-out: /fanout?calls=8&ms=100", None, 0.1),
        Workload("mix", "MixUser", "a weighted mix of all of them", None, 0.05),
    )
}  # fmt: skip
BENCH_WORKLOADS = ("cpu", "sequence", "io")


@dataclass(frozen=True, order=True)
class Setting:
    processes: int
    threads: int

    @property
    def label(self) -> str:
        return f"{self.processes}x{self.threads}"

    @property
    def slots(self) -> int:
        return self.processes * self.threads


def parse_setting(text: str) -> Setting:
    match = re.fullmatch(r"\s*([1-9][0-9]*)\s*x\s*([1-9][0-9]*)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not PROCESSESxTHREADS, e.g. 2x16")
    return Setting(int(match[1]), int(match[2]))


def _settings(*pairs: tuple[int, int]) -> tuple[Setting, ...]:
    return tuple(Setting(p, t) for p, t in pairs)


@dataclass(frozen=True)
class Mode:
    name: str
    # seconds measured per run
    seconds: float
    settings: tuple[Setting, ...]
    # the development server runs one process: single-threaded (1x1), or a
    # thread per request (shown as 1x16)
    devserver_settings: tuple[Setting, ...]
    # the multi-process/thread setting the original comparison is replayed on
    replay_setting: Setting
    replay_sizes: dict[str, tuple[int, ...]]
    # replay on every multi-process/thread stack, or on the first one only
    replay_every_stack: bool = True


# the budgets: about 1.5 minutes, 9 minutes and an hour on 2 cores
MODES = {
    "quick": Mode(
        "quick", 2, _settings((2, 4)), _settings((1, 1)), Setting(2, 4), {"sequence": (10,)}, False
    ),
    "default": Mode(
        "default",
        4,
        _settings((1, 1), (1, 16), (2, 1), (2, 16), (4, 4)),
        _settings((1, 1), (1, 16)),
        Setting(2, 16),
        # 1000 requests of 100 ms on the single-threaded dev server take 100 s
        # on their own: --full runs them
        {"sequence": (10, 100, 1000), "io": (10, 100)},
    ),
    "full": Mode(
        "full",
        15,
        _settings((1, 1), (1, 4), (1, 16), (2, 1), (2, 4), (2, 8), (2, 16), (4, 1), (4, 4),
                  (4, 8), (8, 4)),
        _settings((1, 1), (1, 16)),
        Setting(2, 16),
        {"sequence": (10, 100, 1000), "io": (10, 100, 1000)},
    ),
}  # fmt: skip


# ---------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------


@dataclass
class StackRun:
    """One start of a stack at one setting, and what is measured while it runs."""

    stack: str
    setting: Setting
    workloads: list[str]
    # workload -> batch sizes of the replay
    replays: dict[str, tuple[int, ...]] = field(default_factory=dict)


def build_plan(stacks: Iterable[str], mode: Mode, settings: Iterable[Setting] | None = None):
    """The stack runs of a benchmark, in the order they run."""
    chosen = tuple(settings) if settings else mode.settings
    replay_setting = mode.replay_setting
    if replay_setting not in chosen:
        # the comparison is replayed on the largest setting there is
        replay_setting = max(chosen, key=lambda s: (s.slots, s.processes))
    plan: list[StackRun] = []
    replayed = False
    for stack in stacks:
        if stack == "devserver":
            for setting in mode.devserver_settings:
                replays = mode.replay_sizes if setting == Setting(1, 1) else {}
                plan.append(StackRun(stack, setting, list(BENCH_WORKLOADS), dict(replays)))
        elif stack == "uwsgi-direct":
            # the yardstick for nginx's cost on CPU-bound requests only
            plan += [StackRun(stack, s, ["cpu"]) for s in chosen]
        else:
            replay = mode.replay_every_stack or not replayed
            replayed = True
            for setting in chosen:
                replays = mode.replay_sizes if replay and setting == replay_setting else {}
                plan.append(StackRun(stack, setting, list(BENCH_WORKLOADS), dict(replays)))
    return plan


def estimate_seconds(run: StackRun, seconds: float) -> dict[str, float]:
    """Rough seconds per step, for the progress bar's time left."""
    steps = {"start": 3.0}
    for workload in run.workloads:
        steps[workload] = seconds + WARMUP_SECONDS + 2.5
    for workload, sizes in run.replays.items():
        per_request = WORKLOADS[workload].request_seconds
        concurrency = min(BATCH_USERS, run.setting.slots)
        steps[f"{workload} batches"] = 3.0 + sum(sizes) * per_request / concurrency + len(sizes)
    return steps


# ---------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------


@dataclass
class RunResult:
    """One workload on one stack at one setting."""

    stack: str
    processes: int
    threads: int
    workload: str
    users: int
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
    generator_bound: bool = False
    exit_code: int | None = None
    error: str = ""
    locust_files: str = ""

    @property
    def setting(self) -> Setting:
        return Setting(self.processes, self.threads)

    @property
    def fail_ratio(self) -> float | None:
        if not self.requests:
            return None
        return (self.failures or 0) / self.requests


@dataclass
class BatchResult:
    stack: str
    processes: int
    threads: int
    workload: str
    requests: int
    seconds: float | None = None
    failures: int | None = None
    error: str = ""

    @property
    def setting(self) -> Setting:
        return Setting(self.processes, self.threads)


@dataclass
class Target:
    """A started stack: where it answers and which processes are its servers."""

    stack: str
    setting: Setting
    base_url: str
    pids: list[int]


class CpuSampler:
    """Samples, a few times a second, the CPU seconds used so far by the server
    process trees, and by the whole machine (busy, all cores together)."""

    INTERVAL = 0.2

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self._psutil = psutil
        self.roots = [psutil.Process(pid) for pid in pids]
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _tree_seconds(self) -> float:
        total = 0.0
        seen: set[int] = set()
        for root in self.roots:
            with contextlib.suppress(self._psutil.Error):
                for proc in (root, *root.children(recursive=True)):
                    if proc.pid in seen:
                        continue
                    seen.add(proc.pid)
                    with contextlib.suppress(self._psutil.Error):
                        t = proc.cpu_times()
                        # children_*: workers that died and were reaped meanwhile
                        total += t.user + t.system + t.children_user + t.children_system
        return total

    def _machine_seconds(self) -> float:
        t = self._psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)

    def sample(self) -> None:
        self.samples.append((time.time(), self._tree_seconds(), self._machine_seconds()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.INTERVAL)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def cores(self, start: float, end: float, column: int) -> float | None:
        """Mean cores used between two wall-clock times (column 1: servers, 2: machine)."""
        if end <= start or len(self.samples) < 2:
            return None
        return (self._at(end, column) - self._at(start, column)) / (end - start)

    def _at(self, when: float, column: int) -> float:
        samples = self.samples
        for before, after in zip(samples, samples[1:], strict=False):
            if before[0] <= when <= after[0]:
                span = after[0] - before[0]
                weight = (when - before[0]) / span if span else 0.0
                return before[column] + weight * (after[column] - before[column])
        return samples[0][column] if when < samples[0][0] else samples[-1][column]


def locust_argv(
    locustfile: Path,
    user_class: str,
    base_url: str,
    out_prefix: Path,
    extra: list[str],
) -> list[str]:
    return [
        sys.executable, "-m", "locust",
        "-f", f"{locustfile},{PROBE}",
        "--headless", "--only-summary",
        "--host", base_url,
        "--csv", str(out_prefix), "--html", f"{out_prefix}.html",
        "--probe-json", f"{out_prefix}.probe.json",
        *extra,
        # none: every User class of the locustfile
        *([user_class] if user_class else []),
    ]  # fmt: skip


def run_locust(argv: list[str], log_path: Path, timeout: float) -> int | None:
    """Run Locust to its end (or kill it after ``timeout``); its exit code, None if killed."""
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


def _log_tail(path: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:])
    return ""


def measure(
    target: Target,
    workload: Workload,
    users: int,
    seconds: float,
    out_dir: Path,
    locustfile: Path = LOCUSTFILE,
) -> RunResult:
    """Load ``target`` with ``users`` closed-loop users of ``workload`` for ``seconds``."""
    run_id = f"{target.stack}-{target.setting.label}-{workload.name}"
    prefix = out_dir / "locust" / run_id
    prefix.parent.mkdir(parents=True, exist_ok=True)
    result = RunResult(
        target.stack,
        target.setting.processes,
        target.setting.threads,
        workload.name,
        users,
        locust_files=str(prefix.relative_to(out_dir)) + "*",
    )
    extra = [
        "-u", str(users), "-r", str(users),
        "--probe-warmup", str(WARMUP_SECONDS), "--probe-seconds", str(seconds),
        # a safety net only: the probe ends the run
        "-t", f"{int(seconds + WARMUP_SECONDS + 60)}s",
    ]  # fmt: skip
    argv = locust_argv(locustfile, workload.user_class, target.base_url, prefix, extra)
    with CpuSampler(target.pids) as sampler:
        result.exit_code = run_locust(argv, Path(f"{prefix}.log"), seconds + 120)
    try:
        probe = json.loads(Path(f"{prefix}.probe.json").read_text())
    except (OSError, ValueError):
        result.error = f"Locust wrote no results: {_log_tail(Path(f'{prefix}.log'))}"
        return result
    start, end = probe["window_start"], probe["window_end"]
    if not start or not end or end <= start:
        result.error = f"the run never got going: {_log_tail(Path(f'{prefix}.log'))}"
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
    if target.pids:
        # in containers the servers' processes are out of sight: no server or other CPU
        result.server_cores = sampler.cores(start, end, 1)
        machine = sampler.cores(start, end, 2)
        if None not in (machine, result.server_cores, result.generator_cores):
            result.other_cores = max(0.0, machine - result.generator_cores - result.server_cores)
    if result.server_cores is not None and result.requests:
        result.server_cpu_ms = result.server_cores * result.seconds / result.requests * 1000
    result.generator_bound = (result.generator_cores or 0) >= GENERATOR_BOUND_CORES
    return result


def replay(
    target: Target, workload: Workload, sizes: tuple[int, ...], out_dir: Path
) -> list[BatchResult]:
    """Time batches of ``sizes`` requests with loadtests/batches.py's load shape."""
    run_id = f"{target.stack}-{target.setting.label}-{workload.name}-batches"
    prefix = out_dir / "locust" / run_id
    prefix.parent.mkdir(parents=True, exist_ok=True)
    extra = ["--batch-sizes", ",".join(map(str, sizes)), "--batch-users", str(BATCH_USERS)]
    argv = locust_argv(BATCH_LOCUSTFILE, workload.batch_class, target.base_url, prefix, extra)
    # generous: every request one after another, at ten times the usual time
    timeout = 60 + sum(sizes) * workload.request_seconds * 10
    run_locust(argv, Path(f"{prefix}.log"), timeout)
    results = [
        BatchResult(target.stack, target.setting.processes, target.setting.threads,
                    workload.name, size)
        for size in sizes
    ]  # fmt: skip
    try:
        probe = json.loads(Path(f"{prefix}.probe.json").read_text())
    except (OSError, ValueError):
        probe = {"entries": []}
    timed = {e["name"]: e for e in probe["entries"] if e["method"] == "BATCH"}
    for result in results:
        entry = timed.get(f"{result.requests} requests")
        if entry is None:
            result.error = f"not completed: {_log_tail(Path(f'{prefix}.log'), 3)}"
        else:
            result.seconds = entry["avg_ms"] / 1000
            result.failures = entry["failures"]
    return results


# ---------------------------------------------------------------------------
# running the plan
# ---------------------------------------------------------------------------


def bench_settings(setting: Setting, port: int, **overrides) -> Settings:
    """The stack's knobs from the environment, with the setting under test on top."""
    return Settings.from_env(
        WSGI_PROCESSES=setting.processes,
        WSGI_THREADS=setting.threads,
        PORT=port,
        # the benchmark's traffic stays on this machine
        BIND_ADDRESS="127.0.0.1",
        **overrides,
    )


@contextlib.contextmanager
def native_target(run: StackRun, port: int, log_dir: Path, **overrides) -> Iterator[Target]:
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(run.setting, port, **overrides)
    with (
        open(log_dir / f"{run.stack}-{run.setting.label}.log", "a", encoding="utf-8") as log,
        run_stack(get_stack(run.stack), settings, log=log) as stack,
    ):
        pids = [proc.pid for proc in stack.procs.values()]
        try:
            yield Target(run.stack, run.setting, stack.base_url, pids)
        finally:
            stack.stop(grace=IDLE_STOP_GRACE)


def docker_port(stack: str) -> int:
    return int(os.environ.get(DOCKER_PORT_VARIABLES[stack], get_stack(stack).default_port))


def docker_target(stack: str) -> Target:
    """A compose stack that is already up; its setting as its /info reports it."""
    base_url = f"http://127.0.0.1:{docker_port(stack)}"
    hint = f"start it with `docker compose --profile {stack} up -d --wait`"
    try:
        status, body = http_get(base_url + "/info", timeout=3)
    except OSError as exc:
        raise StackError(
            f"the compose stack {stack} is not up at {base_url} ({exc}); {hint}"
        ) from None
    if status != 200:
        raise StackError(f"the compose stack {stack} at {base_url} answers {status}; {hint}")
    configured = json.loads(body).get("configured") or {}
    setting = Setting(configured.get("processes") or 0, configured.get("threads") or 0)
    # its processes live in containers: their CPU is not sampled from here
    return Target(stack, setting, base_url, [])


@dataclass
class Outcome:
    results: list[RunResult] = field(default_factory=list)
    batches: list[BatchResult] = field(default_factory=list)
    interrupted: bool = False


class Progress:
    """A rich progress bar (which run, how many left, time left) and a line per run."""

    def __init__(self, plan: list[StackRun], seconds: float) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.steps = [estimate_seconds(run, seconds) for run in plan]
        self.count = sum(len(s) - 1 for s in self.steps)
        self.done = 0
        self.console = Console(stderr=True)
        self.bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[step]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=self.console,
        )
        total = sum(sum(s.values()) for s in self.steps)
        self.task = self.bar.add_task("bench", total=total, step="")

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def start(self, run: StackRun, step: str) -> None:
        number = self.done + (0 if step == "start" else 1)
        self.bar.update(
            self.task,
            description=f"{run.stack} {run.setting.label} {step}",
            step=f"run {number}/{self.count}",
        )

    def finish(self, index: int, step: str, line: str | None = None) -> None:
        if step != "start":
            self.done += 1
        self.bar.advance(self.task, self.steps[index].get(step, 0))
        if line:
            self.console.print(line, highlight=False, soft_wrap=True)

    def skip(self, index: int) -> None:
        for step, seconds in self.steps[index].items():
            if step != "start":
                self.done += 1
            self.bar.advance(self.task, seconds)


def _run_line(r: RunResult) -> str:
    head = f"{r.stack} {r.setting.label} {r.workload}:"
    if r.error:
        return f"{head} error: {r.error}"
    flag = "  [generator-bound]" if r.generator_bound else ""
    return (
        f"{head} {r.rps:.1f} req/s, p95 {_num(r.p95_ms)} ms, "
        f"{r.failures} failed, server {_num(r.server_cores, 2)} cores, "
        f"generator {_num(r.generator_cores, 2)}{flag}"
    )


def execute(
    plan: list[StackRun],
    *,
    port: int,
    users: int,
    seconds: float,
    out_dir: Path,
    docker: bool = False,
    locustfile: Path = LOCUSTFILE,
    workloads: dict[str, Workload] = WORKLOADS,
    overrides: dict[str, str] | None = None,
) -> Outcome:
    """Run the plan; a stack that fails to start is recorded and the rest go on."""
    outcome = Outcome()
    with Progress(plan, seconds) as progress:
        for index, run in enumerate(plan):
            progress.start(run, "start")
            try:
                with _target(run, port, out_dir, docker, overrides or {}) as target:
                    progress.finish(index, "start")
                    for name in run.workloads:
                        progress.start(run, name)
                        result = measure(target, workloads[name], users, seconds, out_dir,
                                         locustfile)  # fmt: skip
                        outcome.results.append(result)
                        progress.finish(index, name, _run_line(result))
                    for name, sizes in run.replays.items():
                        progress.start(run, f"{name} batches")
                        batches = replay(target, workloads[name], sizes, out_dir)
                        outcome.batches += batches
                        line = ", ".join(f"{b.requests}: {_num(b.seconds, 2)} s" for b in batches)
                        progress.finish(
                            index, f"{name} batches",
                            f"{run.stack} {run.setting.label} {name} batches: {line}",
                        )  # fmt: skip
            except (StackError, RenderError) as exc:
                # a stack that cannot start is reported; the others still run
                log = out_dir / "logs" / f"{run.stack}-{run.setting.label}.log"
                if log.exists():
                    exc = StackError(f"{exc} (its log: {log.relative_to(out_dir)})")
                progress.console.print(f"{run.stack} {run.setting.label}: error: {exc}")
                done = {(r.stack, r.setting, r.workload) for r in outcome.results}
                for name in run.workloads:
                    if (run.stack, run.setting, name) not in done:
                        outcome.results.append(
                            RunResult(run.stack, run.setting.processes, run.setting.threads,
                                      name, users, error=str(exc))
                        )  # fmt: skip
                progress.skip(index)
            except KeyboardInterrupt:
                # the `with` above has stopped the stack already
                outcome.interrupted = True
                break
    return outcome


@contextlib.contextmanager
def _target(run: StackRun, port: int, out_dir: Path, docker: bool, overrides: dict):
    if docker:
        yield docker_target(run.stack)
    else:
        with native_target(run, port, out_dir / "logs", **overrides) as target:
            yield target


# ---------------------------------------------------------------------------
# the performance targets
# ---------------------------------------------------------------------------


@dataclass
class TargetCheck:
    target: str
    figure: str
    # None: not measured in this run
    holds: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "holds", False: "**does not hold**", None: "not measured"}[self.holds]


def _find(results: list[RunResult], stack: str, setting: Setting, workload: str):
    for r in results:
        if (r.stack, r.setting, r.workload) == (stack, setting, workload) and r.rps is not None:
            return r
    return None


def _notes(*runs: RunResult) -> str:
    """Why a figure may not be the server's: a busy generator, other work on the machine."""
    notes = []
    if any(r.generator_bound for r in runs):
        notes.append("generator-bound: the load generator, not the server, was the limit")
    other = max((r.other_cores or 0) for r in runs)
    if other >= NOISY_OTHER_CORES:
        notes.append(f"other work used up to {other:.2f} cores meanwhile: noisy")
    return "; ".join(notes)


def _ratio_check(title: str, run, base, low: float, high: float | None = None, cpu=False):
    """``run`` against ``base`` in requests/s; ``cpu``: also their CPU per request."""
    if run is None or base is None:
        return TargetCheck(title, "", None, "not in this run's matrix")
    ratio = run.rps / base.rps
    figure = f"{run.rps:.1f} / {base.rps:.1f} req/s = {ratio:.2f} x"
    if cpu and run.server_cpu_ms and base.server_cpu_ms:
        # CPU per request does not depend on what else the machine is doing
        figure += (
            f" (server CPU per request {run.server_cpu_ms:.1f} vs {base.server_cpu_ms:.1f} ms:"
            f" {base.server_cpu_ms / run.server_cpu_ms:.2f} x)"
        )
    elif not cpu and run.server_cores and base.server_cores:
        figure += f" (server cores busy {run.server_cores:.2f} vs {base.server_cores:.2f})"
    holds = ratio >= low and (high is None or ratio <= high)
    notes = [_notes(run, base)]
    if run.app_cpu_ms and base.app_cpu_ms:
        speed = run.app_cpu_ms / base.app_cpu_ms
        if not 1 / SPEED_DRIFT <= speed <= SPEED_DRIFT:
            why = (
                "the machine's speed changed between the runs"
                if run.threads == base.threads
                # threads contending for the GIL also cost CPU in handoffs
                else "GIL handoffs between threads, or the machine's speed changed"
            )
            notes.append(
                f"the same request took {run.app_cpu_ms:.1f} vs {base.app_cpu_ms:.1f} ms of "
                f"CPU in the app (Server-Timing): {why}"
            )
    return TargetCheck(title, figure, holds, "; ".join(n for n in notes if n))


def check_targets(results: list[RunResult]) -> list[TargetCheck]:
    """The issue's performance targets, each with the figure that decides it."""
    checks: list[TargetCheck] = []
    io = Setting(2, 16)
    for stack in ("uwsgi", "apache"):
        name = STACKS[stack].description.split(" (")[0]
        run = _find(results, stack, io, "io")
        if run is None or run.users < 32:
            title = f"I/O-bound, 2x16, >= 32 users: {name} >= 0.9 x 320 req/s"
            checks.append(TargetCheck(title, "", None, "needs io at 2x16 with --users >= 32"))
            continue
        ceiling = min(run.users, io.slots) / 0.1
        ratio = run.rps / ceiling
        checks.append(TargetCheck(
            f"I/O-bound, 2x16, {run.users} users: {name} >= 0.9 x {ceiling:.0f} req/s",
            f"{run.rps:.1f} req/s = {ratio:.2f} x", ratio >= 0.9, _notes(run),
        ))  # fmt: skip

    for setting in sorted({r.setting for r in results if r.stack == "uwsgi"}):
        proxied = _find(results, "uwsgi", setting, "cpu")
        checks.append(_ratio_check(
            f"CPU-bound, {setting.label}: nginx+uWSGI >= 0.85 x uWSGI alone (uwsgi-direct)",
            proxied, _find(results, "uwsgi-direct", setting, "cpu"), 0.85, cpu=True,
        ))  # fmt: skip
        checks.append(_ratio_check(
            f"CPU-bound, {setting.label}: nginx+uWSGI not below gunicorn",
            proxied, _find(results, "gunicorn", setting, "cpu"), 1.0, cpu=True,
        ))  # fmt: skip

    for stack in dict.fromkeys(r.stack for r in results if r.workload == "cpu"):
        base = _find(results, stack, Setting(1, 1), "cpu")
        if base is None or stack == "devserver":
            continue
        checks.append(_ratio_check(
            f"CPU-bound, {stack}: 2x1 >= 1.6 x 1x1 (processes help CPU)",
            _find(results, stack, Setting(2, 1), "cpu"), base, 1.6,
        ))  # fmt: skip
        checks.append(_ratio_check(
            f"CPU-bound, {stack}: 1x16 within 0.8-1.2 x 1x1 (threads do not: the GIL)",
            _find(results, stack, Setting(1, 16), "cpu"), base, 0.8, 1.2,
        ))  # fmt: skip
    return checks


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------

RESULT_COLUMNS = [f.name for f in dataclasses.fields(RunResult)]
RESULT_COLUMNS.insert(RESULT_COLUMNS.index("rps"), "fail_ratio")
BATCH_COLUMNS = [f.name for f in dataclasses.fields(BatchResult)] + [
    "claimed_devserver_seconds",
    "claimed_multi_seconds",
]


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def result_rows(results: list[RunResult]) -> list[dict]:
    return [{**dataclasses.asdict(r), "fail_ratio": r.fail_ratio} for r in results]


def batch_rows(batches: list[BatchResult]) -> list[dict]:
    rows = []
    for b in batches:
        claimed = CLAIMED.get(b.requests, (None, None))
        rows.append({
            **dataclasses.asdict(b),
            "claimed_devserver_seconds": claimed[0],
            "claimed_multi_seconds": claimed[1],
        })  # fmt: skip
    return rows


def _versions() -> str:
    """The servers' versions, as each one reports it."""
    found = []
    for label, argv, pattern in (
        ("nginx", ["nginx", "-v"], r"nginx/(\S+)"),
        ("uWSGI", ["uwsgi", "--version"], r"^(\S+)"),
        ("Apache", ["apache2", "-v"], r"Apache/(\S+)"),
        ("gunicorn", [str(Path(sys.executable).with_name("gunicorn")), "--version"], r"([\d.]+)"),
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
        f"{platform.release()}, Python {platform.python_version()}; {_versions()}; "
        f"load average at the start: {load}"
    )


def _setting_label(stack: str, setting: Setting) -> str:
    if stack == "devserver" and setting.threads > 1:
        return "1 x thread per request"
    return f"{setting.processes} x {setting.threads}"


def results_table(results: list[RunResult], workload: str) -> list[str]:
    rows = [
        "| stack | processes x threads | req/s | p50 ms | p95 ms | p99 ms | failed "
        "| server CPU, cores | CPU ms per request: app / server | generator, cores "
        "| other load, cores | note |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        if r.workload != workload:
            continue
        if r.error:
            note = f"error: {r.error}"
            cells = ["-"] * 9
        else:
            note = "**generator-bound**" if r.generator_bound else ""
            failed = f"{r.failures} ({r.fail_ratio:.1%})" if r.failures else "0"
            cells = [
                _num(r.rps, 1), _num(r.p50_ms), _num(r.p95_ms), _num(r.p99_ms), failed,
                _num(r.server_cores, 2),
                f"{_num(r.app_cpu_ms, 2)} / {_num(r.server_cpu_ms, 2)}",
                _num(r.generator_cores, 2), _num(r.other_cores, 2),
            ]  # fmt: skip
        label = _setting_label(r.stack, r.setting)
        rows.append(f"| {r.stack} | {label} | " + " | ".join(cells) + f" | {note} |")
    return rows


def targets_table(checks: list[TargetCheck]) -> list[str]:
    rows = ["| target | figure | verdict | note |", "|---|---|---|---|"]
    rows += [f"| {c.target} | {c.figure or '-'} | {c.verdict} | {c.note} |" for c in checks]
    return rows


def _replay_ratio(batches: list[BatchResult], workload: str, size: int) -> float | None:
    """How many times longer the single-threaded dev server took than the fastest stack."""
    timed = [b for b in batches if (b.workload, b.requests) == (workload, size) and b.seconds]
    dev = next((b for b in timed if (b.stack, b.setting) == ("devserver", Setting(1, 1))), None)
    others = [b.seconds for b in timed if b.stack != "devserver"]
    return dev.seconds / min(others) if dev and others else None


def _replay_table(batches: list[BatchResult], workload: str) -> list[str]:
    chosen = [b for b in batches if b.workload == workload]
    columns = sorted(
        dict.fromkeys((b.stack, b.setting) for b in chosen), key=lambda k: k[0] != "devserver"
    )
    if not columns:
        return []
    # the claims were made for the sequence request; beside the others for scale
    claim = "claimed" if workload == "sequence" else "claimed (for sequence)"
    head = f"| requests | {claim}: dev server | {claim}: multi | claimed ratio | "
    head += " | ".join(f"{s} {_setting_label(s, t)}" for s, t in columns)
    rows = [head + " | measured ratio |", "|--:|--:|--:|--:|" + "--:|" * len(columns) + "--:|"]
    for size in sorted({b.requests for b in chosen}):
        dev_claim, multi_claim = CLAIMED.get(size, (None, None))
        claimed_ratio = f"{dev_claim / multi_claim:.2f} x" if dev_claim and multi_claim else "-"
        measured = {(b.stack, b.setting): b for b in chosen if b.requests == size}
        cells = []
        for key in columns:
            b = measured.get(key)
            if b is None:
                cells.append("-")
            elif b.seconds is None:
                cells.append("not completed")
            else:
                failed = f" ({b.failures} failed)" if b.failures else ""
                cells.append(f"{b.seconds:.3f} s{failed}")
        ratio = _replay_ratio(batches, workload, size)
        rows.append(
            f"| {size} | {_num(dev_claim, 2)} s | {_num(multi_claim, 2)} s | {claimed_ratio} | "
            + " | ".join(cells)
            + f" | {_num(ratio, 2)} x |"
        )
    return rows


def _sequence_cpu_note(results: list[RunResult], batches: list[BatchResult]) -> str:
    """What the matrix says about the sequence ratio beyond the cores: CPU per request."""
    size = max((b.requests for b in batches if b.workload == "sequence"), default=None)
    timed = [b for b in batches if (b.workload, b.requests) == ("sequence", size) and b.seconds]
    stacks = [b for b in timed if b.stack != "devserver"]
    if not stacks or not any(b.stack == "devserver" for b in timed):
        return ""
    best = min(stacks, key=lambda b: b.seconds)
    dev = _find(results, "devserver", Setting(1, 1), "sequence")
    fast = _find(results, best.stack, best.setting, "sequence")
    if not (dev and fast and dev.server_cpu_ms and fast.server_cpu_ms):
        return ""
    return (
        f" Here the development server also spent {dev.server_cpu_ms:.2f} ms of server CPU "
        f"per sequence request against {fast.server_cpu_ms:.2f} ms for {best.stack}, the "
        f"fastest stack at {size} requests (the sequence table above): it parses HTTP in "
        "Python and logs every request."
    )


def _replay_text(results: list[RunResult], batches: list[BatchResult], mode: Mode) -> list[str]:
    multi = next((b.setting for b in batches if b.stack != "devserver"), mode.replay_setting)
    summary = []
    for workload in dict.fromkeys(b.workload for b in batches):
        largest = max(b.requests for b in batches if b.workload == workload)
        dev, multi_claim = CLAIMED.get(largest, (None, None))
        summary.append(
            f"{WORKLOADS[workload].title}, {largest} requests: measured "
            f"{_num(_replay_ratio(batches, workload, largest), 2)} x, claimed "
            f"{_num(dev / multi_claim if dev and multi_claim else None, 2)} x"
        )
    skipped = [
        f"{w}: {', '.join(str(s) for s in CLAIMED if s not in sizes)}"
        for w, sizes in mode.replay_sizes.items()
        if any(s not in sizes for s in CLAIMED)
    ]
    cores = os.cpu_count()
    text = [
        "The comparison claimed these times for 10, 100 and 1000 requests of "
        "`/fib/sequence?n=1000`: the development server against a multi-process, "
        "multi-thread stack. Replayed here with loadtests/batches.py: each batch is N "
        f"requests sent by {BATCH_USERS} concurrent users (as `ab -n N -c {BATCH_USERS}`), "
        "timed from the first request sent to the last answer received, on the "
        "single-threaded development server (1 x 1) and on each stack at "
        f"{multi.label}. Answers are checked: a fast wrong answer counts as a failure. "
        "*Ratio*: the development server's time over the fastest stack's.",
        "",
        "Ratios at the largest batch: " + "; ".join(summary) + ".",
        "",
        "What differs, and why:",
        "",
        "- **The absolute times.** One sequence request costs a few ms of CPU here "
        "(the CPU ms per request above), so 1000 of them take seconds, not the claimed "
        "344 s (about 0.34 s per request). Most of the original time was spent outside "
        "the request's own work (client, network, machine: the comparison does not say), "
        "so only ratios can be compared.",
        "- **The sequence request is CPU-bound.** Under the GIL one Python process runs "
        "one thread at a time, so threads do not speed it up; only processes do, and on "
        f"{cores} cores by at most about {cores} x (less, as the load generator shares "
        "the cores). Any ratio beyond that comes from less work per request, not from "
        "concurrency." + _sequence_cpu_note(results, batches),
        "- **The I/O-bound request is where threads win.** A sleeping request releases "
        "the GIL: the single-threaded development server serves one at a time "
        f"(N x 100 ms), a stack with {multi.slots} slots serves all {BATCH_USERS} users "
        f"at once, so batches finish up to {min(BATCH_USERS, multi.slots)} x sooner: "
        "the speed-up is the concurrency, not faster code.",
    ]
    if skipped:
        text += [
            "",
            f"Not run in the {mode.name} mode (`--full` runs them): " + "; ".join(skipped) + ".",
        ]
    return text


def write_report(
    out_dir: Path,
    outcome: Outcome,
    *,
    mode: Mode,
    users: int,
    seconds: float,
    title: str = "wsgistack bench",
    docker: bool = False,
    extra_sections: list[str] | None = None,
    targets: bool = True,
) -> list[TargetCheck]:
    """results.csv, batches.csv, charts/*.png, report.md and report.html."""
    write_csv(out_dir / "results.csv", RESULT_COLUMNS, result_rows(outcome.results))
    if outcome.batches:
        write_csv(out_dir / "batches.csv", BATCH_COLUMNS, batch_rows(outcome.batches))
    checks = check_targets(outcome.results) if targets else []
    charts = out_dir / "charts"
    charts.mkdir(exist_ok=True)
    md = [
        f"# {title}: {out_dir.name}",
        "",
        f"Machine: {machine_line()}.",
        "",
        f"Each run: {users} users (closed loop: each sends its next request when the "
        f"last one is answered), {WARMUP_SECONDS:g} s of warm-up, then {seconds:g} s "
        "measured. Load generator: Locust (FastHttpUser, one process) on the same "
        "machine; a run where it used "
        f"{GENERATOR_BOUND_CORES} of a core or more is marked **generator-bound**: "
        "its requests/s are the generator's limit, not the server's. "
        + ("Stacks: the compose stacks, as they run. " if docker else "Stacks: native. ")
        + "CPU ms per request: *app* is the request thread's CPU from `Server-Timing`, "
        "*server* all the server processes' CPU (psutil) divided by the requests. "
        "*Other load* is the rest of the machine's CPU (other people's work: noise).",
    ]
    if outcome.interrupted:
        md += ["", "**Interrupted: the results below are partial.**"]
    if extra_sections:
        md += ["", *extra_sections]
    if checks:
        md += ["", "## Performance targets", "", *targets_table(checks)]
    for name in dict.fromkeys(r.workload for r in outcome.results):
        workload = WORKLOADS.get(name)
        heading = workload.title if workload else name
        chart = chart_workload(outcome.results, name, charts / f"{name}.png")
        md += ["", f"## {heading}", ""]
        if chart:
            md += [f"![requests/s and p95, {name}](charts/{chart.name})", ""]
        md += results_table(outcome.results, name)
    if outcome.batches:
        md += [
            "",
            "## The original comparison, replayed",
            "",
            *_replay_text(outcome.results, outcome.batches, mode),
        ]
        for name in dict.fromkeys(b.workload for b in outcome.batches):
            md += ["", f"### {WORKLOADS[name].title}", "", *_replay_table(outcome.batches, name)]
        chart = chart_replay(outcome.batches, charts / "replay.png")
        if chart:
            md += ["", f"![the comparison replayed](charts/{chart.name})"]
    md += [
        "",
        "## Files",
        "",
        "results.csv (one row per run), batches.csv (one row per batch), Locust's own "
        "CSV and HTML report of every run in locust/, the servers' logs in logs/.",
        "",
    ]
    text = "\n".join(md)
    (out_dir / "report.md").write_text(text, encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(text, out_dir, title), encoding="utf-8")
    return checks


def render_html(markdown: str, base: Path, title: str) -> str:
    """The report as one HTML file: markdown rendered, charts inlined as base64 PNG."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode((base / match[1]).read_bytes()).decode("ascii")
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="(charts/[^"]+\.png)"', inline, body)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 78rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: .25rem .5rem; }}
th {{ background: #f3f3f3; }}
tr:nth-child(even) td {{ background: #fafafa; }}
img {{ max-width: 100%; }}
code {{ background: #f3f3f3; padding: 0 .2rem; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


# one colour per stack in every chart
STACK_COLORS = {
    "uwsgi": "tab:blue",
    "apache": "tab:orange",
    "gunicorn": "tab:green",
    "devserver": "tab:red",
    "uwsgi-direct": "tab:purple",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def chart_workload(results: list[RunResult], workload: str, path: Path) -> Path | None:
    """Grouped bars: requests/s and p95 for each setting, one bar per stack."""
    runs = [r for r in results if r.workload == workload and r.rps is not None]
    if not runs:
        return None
    plt = _plt()
    settings = sorted({r.setting for r in runs})
    stacks = list(dict.fromkeys(r.stack for r in runs))
    width = 0.8 / len(stacks)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for metric, ax, label in (
        ("rps", axes[0], "requests/s (higher is better)"),
        ("p95_ms", axes[1], "p95 response time, ms (lower is better, log scale)"),
    ):
        for i, stack in enumerate(stacks):
            xs, ys, hatches = [], [], []
            for j, setting in enumerate(settings):
                run = next((r for r in runs if (r.stack, r.setting) == (stack, setting)), None)
                if run is not None and getattr(run, metric):
                    xs.append(j - 0.4 + width * (i + 0.5))
                    ys.append(getattr(run, metric))
                    hatches.append("//" if run.generator_bound else "")
            bars = ax.bar(xs, ys, width, label=stack, color=STACK_COLORS.get(stack))
            for bar, hatch in zip(bars, hatches, strict=True):
                bar.set_hatch(hatch)
        ax.set_xticks(range(len(settings)), [s.label for s in settings])
        ax.set_xlabel("processes x threads")
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if metric == "p95_ms":
            _log_axis(ax, [r.p95_ms for r in runs if r.p95_ms])
    axes[0].legend(fontsize=8, title="hatched: generator-bound", title_fontsize=8)
    title = WORKLOADS[workload].title if workload in WORKLOADS else workload
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _log_axis(ax, values: list[float]) -> None:
    """A log scale whose bars rise from a round number, with plain tick labels."""
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("log")
    ax.set_ylim(bottom=10 ** math.floor(math.log10(min(values) / 2)), top=max(values) * 2)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def chart_replay(batches: list[BatchResult], path: Path) -> Path | None:
    """Seconds to complete each batch: claimed and measured, per workload (log scale)."""
    timed = [b for b in batches if b.seconds is not None]
    if not timed:
        return None
    plt = _plt()
    workloads = list(dict.fromkeys(b.workload for b in timed))
    fig, axes = plt.subplots(1, len(workloads), figsize=(6.5 * len(workloads), 4.2))
    axes = [axes] if len(workloads) == 1 else list(axes)
    for ax, workload in zip(axes, workloads, strict=True):
        sizes = sorted({b.requests for b in timed if b.workload == workload})
        series: list[tuple[str, str | None, list[float | None]]] = [
            ("claimed: dev server", "lightgrey", [CLAIMED.get(s, (None, None))[0] for s in sizes]),
            ("claimed: multi", "darkgrey", [CLAIMED.get(s, (None, None))[1] for s in sizes]),
        ]
        # the development server first, beside the claims
        ordered = sorted(
            dict.fromkeys((b.stack, b.setting) for b in timed), key=lambda k: k[0] != "devserver"
        )
        for stack, setting in ordered:
            by_size = {
                b.requests: b.seconds
                for b in timed
                if (b.stack, b.setting, b.workload) == (stack, setting, workload)
            }
            if by_size:
                label = f"{stack} {_setting_label(stack, setting)}"
                series.append((label, STACK_COLORS.get(stack), [by_size.get(s) for s in sizes]))
        width = 0.8 / len(series)
        for i, (label, color, values) in enumerate(series):
            xs = [j - 0.4 + width * (i + 0.5) for j, v in enumerate(values) if v]
            hatch = "xx" if label.startswith("claimed") else ""
            bars = ax.bar(
                xs, [v for v in values if v], width, label=label, hatch=hatch, color=color
            )
            ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_xticks(range(len(sizes)), [f"{s} requests" for s in sizes])
        _log_axis(ax, [v for _, _, values in series for v in values if v])
        ax.set_ylabel("seconds to complete (log scale; hatched: claimed)")
        ax.set_title(WORKLOADS[workload].title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def print_summary(outcome: Outcome, checks: list[TargetCheck], out_dir: Path) -> None:
    """The main table: requests/s and p95 per workload, stack and setting; then the targets."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    workloads = list(dict.fromkeys(r.workload for r in outcome.results))
    table = Table(title="requests/s (p95 ms); * generator-bound, ! error")
    table.add_column("stack")
    table.add_column("P x T")
    for name in workloads:
        table.add_column(name, justify="right")
    for stack, setting in dict.fromkeys((r.stack, r.setting) for r in outcome.results):
        cells = []
        for name in workloads:
            run = next(
                (r for r in outcome.results
                 if (r.stack, r.setting, r.workload) == (stack, setting, name)),
                None,
            )  # fmt: skip
            if run is None:
                cells.append("")
            elif run.error:
                cells.append("!")
            else:
                star = "*" if run.generator_bound else ""
                cells.append(f"{run.rps:.1f} ({_num(run.p95_ms)}){star}")
        table.add_row(stack, setting.label, *cells)
    console.print(table)
    if checks:
        targets = Table(title="performance targets")
        for column in ("target", "figure", "verdict"):
            targets.add_column(column)
        for c in checks:
            targets.add_row(c.target, c.figure or c.note, c.verdict.replace("**", ""))
        console.print(targets)
    console.print(f"report: {out_dir / 'report.html'} (and report.md, results.csv)")


# ---------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------


def stack_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in STACKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown stack {', '.join(unknown) or text!r}; choose from: {', '.join(STACKS)}"
        )
    return list(dict.fromkeys(names))


def positive(kind: Callable[[str], float]):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
        return value

    return parse


def add_common_arguments(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument(
        "--port",
        type=positive(int),
        default=default_port,
        help=f"the port every stack listens on in turn (default {default_port})",
    )
    parser.add_argument(
        "--duration",
        type=positive(float),
        help=f"seconds measured per run, after {WARMUP_SECONDS:g} s of warm-up (default: by mode)",
    )
    parser.add_argument(
        "--users", type=positive(int), default=32, help="concurrent users (default 32)"
    )
    parser.add_argument(
        "--out", type=Path, help="report folder (default reports/<timestamp>, git-ignored)"
    )


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "bench",
        help="benchmark the stacks: processes x threads x workload, report with charts",
        description=__doc__.split("\n\n")[1],
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="one setting, 2 s per run, one batch of 10: under 2 minutes (a smoke test)",
    )
    size.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="11 settings, 15 s per run, every batch: the whole matrix (40-50 minutes)",
    )
    parser.set_defaults(mode="default")
    parser.add_argument(
        "--stacks",
        type=stack_list,
        default=list(DEFAULT_STACKS),
        help=f"comma-separated (default {','.join(DEFAULT_STACKS)})",
    )
    parser.add_argument(
        "--settings",
        type=lambda text: [parse_setting(s) for s in text.split(",")],
        help="processes x threads to run, e.g. 1x1,2x16 (default: by mode)",
    )
    parser.add_argument(
        "--docker",
        action="store_true",
        help="load the compose stacks already up (docker compose --profile STACK up -d) "
        "at the setting they run with, instead of starting native ones",
    )
    add_common_arguments(parser, default_port=8090)
    parser.set_defaults(func=main)


def preflight(stacks: list[str], port: int, docker: bool) -> list[str]:
    """Everything that can be checked before a server starts; the stacks to run."""
    import importlib.util

    if importlib.util.find_spec("locust") is None:
        raise StackError("Locust is not installed in this virtualenv: `make venv`")
    for path in (LOCUSTFILE, BATCH_LOCUSTFILE, PROBE):
        if not path.is_file():
            raise StackError(f"{path} is missing")
    if docker:
        natives = [s for s in stacks if s not in DOCKER_PORT_VARIABLES]
        stacks = [s for s in stacks if s in DOCKER_PORT_VARIABLES]
        if natives:
            print(f"wsgistack bench: --docker: no compose service for {', '.join(natives)}; "
                  "skipped", file=sys.stderr)  # fmt: skip
        for stack in stacks:
            docker_target(stack)
        return stacks
    for stack in stacks:
        spec = get_stack(stack)
        check_binaries(spec)
        check_system_python(spec)
        # render its configs once, so a broken one is reported before anything runs
        with tempfile.TemporaryDirectory(prefix="wsgistack-bench-check-") as scratch:
            try:
                spec.servers(bench_settings(Setting(1, 1), port), Path(scratch))
            except RenderError as exc:
                raise StackError(f"the {stack} stack's configs: {exc}") from None
    check_port_free("127.0.0.1", port)
    return stacks


def new_report_dir(out: Path | None, prefix: str = "") -> Path:
    out_dir = out or REPORTS_DIR / f"{prefix}{datetime.now():%Y%m%d-%H%M%S}"
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C or SIGTERM: KeyboardInterrupt once; a second one must not cut the cleanup."""

    def interrupt(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt), signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def main(args: argparse.Namespace) -> int:
    mode = MODES[args.mode]
    seconds = args.duration or mode.seconds
    if args.docker and args.settings:
        raise StackError(
            "--docker measures the compose stacks at the setting they were started with "
            "(WSGI_PROCESSES and WSGI_THREADS in .env); --settings cannot change it"
        )
    stacks = preflight(args.stacks, args.port, args.docker)
    if args.docker:
        plan = [StackRun(s, docker_target(s).setting, list(BENCH_WORKLOADS),
                         dict(mode.replay_sizes)) for s in stacks]  # fmt: skip
    else:
        plan = build_plan(stacks, mode, args.settings)
    out_dir = new_report_dir(args.out)
    with interruptible():
        outcome = execute(
            plan, port=args.port, users=args.users, seconds=seconds, out_dir=out_dir,
            docker=args.docker,
        )  # fmt: skip
    checks = write_report(
        out_dir, outcome, mode=mode, users=args.users, seconds=seconds, docker=args.docker
    )
    print_summary(outcome, checks, out_dir)
    if outcome.interrupted:
        print("wsgistack bench: interrupted; every server was stopped", file=sys.stderr)
        return 130
    return 0
