"""Made-up results for the benchmark's tests: a run's figures, a replay batch."""

from __future__ import annotations

from wsgistack.bench.results import BatchResult, Result


def run(stack, pxt, workload, rps, **kw) -> Result:
    return Result(
        stack,
        pxt.processes,
        pxt.threads,
        workload,
        users=32,
        rps=rps,
        requests=int(rps * 4),
        failures=0,
        seconds=4.0,
        **kw,
    )


def batch(stack, pxt, size, seconds, repeat=1, workload="sequence"):
    return BatchResult(stack, pxt.processes, pxt.threads, workload, size, repeat, seconds, 0)
