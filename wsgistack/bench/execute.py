"""Running the plan: each stack run started, warmed up, loaded workload by
workload (Locust or wrk), its batches replayed, then stopped."""

from __future__ import annotations

import contextlib
import signal
import statistics
from collections.abc import Iterator
from pathlib import Path

from wsgistack.bench.console import Progress, batches_line, run_line
from wsgistack.bench.endpoints import Endpoint, open_endpoint, warm_up
from wsgistack.bench.locust_engine import LOCUSTFILE, measure, replay
from wsgistack.bench.plan import WORKLOADS, WRK, StackRun, Workload
from wsgistack.bench.report import Outcome
from wsgistack.bench.results import Result
from wsgistack.bench.server_metrics import watch
from wsgistack.bench.wrk_engine import measure_wrk
from wsgistack.render import RenderError
from wsgistack.runner import StackError


def load(
    endpoint: Endpoint,
    workload: Workload,
    users: int,
    seconds: float,
    out_dir: Path,
    locustfile: Path,
    engine_html: bool,
) -> Result:
    """One workload on a started stack, warmed up first, with the workload's
    generator, the servers' own metrics watched meanwhile (server_metrics.py)."""
    app_cpu = warm_up(endpoint, workload.path) if workload.path else []
    with watch(endpoint.metrics_url) as server:
        if workload.engine == WRK:
            mean = statistics.fmean(app_cpu) if app_cpu else None
            result = measure_wrk(endpoint, workload, users, seconds, out_dir, app_cpu_ms=mean)
        else:
            result = measure(endpoint, workload, users, seconds, out_dir, locustfile, engine_html)
    server.apply(result)
    return result


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
    engine_html: bool = False,
    cpuset: str = "",
) -> Outcome:
    """Run the plan; a stack that fails to start is recorded and the rest go on."""
    outcome = Outcome()
    with Progress(plan, seconds) as progress:
        for index, run in enumerate(plan):
            progress.start(run, "start")
            try:
                with open_endpoint(run, port, out_dir, docker, overrides or {}, cpuset) as endpoint:
                    endpoint.repeat = run.repeat
                    progress.finish(index, "start")
                    for name in run.workloads:
                        progress.start(run, name)
                        result = load(
                            endpoint,
                            workloads[name],
                            users,
                            seconds,
                            out_dir,
                            locustfile,
                            engine_html,
                        )
                        outcome.results.append(result)
                        progress.finish(index, name, run_line(result))
                    for name, sizes in run.replays.items():
                        progress.start(run, f"{name} batches")
                        warm_up(endpoint, workloads[name].path)
                        batches = replay(endpoint, workloads[name], sizes, out_dir, engine_html)
                        outcome.batches += batches
                        progress.finish(index, f"{name} batches", batches_line(run, name, batches))
            except (StackError, RenderError) as exc:
                # a stack that cannot start is reported; the others still run
                log = out_dir / "logs" / f"{run.stack}-{run.concurrency.label}.log"
                if log.exists():
                    exc = StackError(f"{exc} (its log: {log.relative_to(out_dir)})")
                progress.print(f"{run.stack} {run.concurrency.label}: error: {exc}")
                done = {(r.stack, r.concurrency, r.workload, r.repeat) for r in outcome.results}
                for name in run.workloads:
                    if (run.stack, run.concurrency, name, run.repeat) not in done:
                        outcome.results.append(
                            Result(
                                run.stack,
                                run.concurrency.processes,
                                run.concurrency.threads,
                                name,
                                engine=workloads[name].engine,
                                interpreter=run.interpreter,
                                repeat=run.repeat,
                                users=users,
                                error=str(exc),
                            )
                        )
                progress.skip(index)
            except KeyboardInterrupt:
                # the `with` above has stopped the stack already
                outcome.interrupted = True
                break
    return outcome


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
