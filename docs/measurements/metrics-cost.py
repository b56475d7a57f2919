"""What the metrics cost the floor: `/up` requests/s with METRICS=1 and
METRICS=0, in one run, the two interleaved round by round so that the
machine's drift falls on both alike (docs/metrics.md).

    .venv/bin/python docs/measurements/metrics-cost.py --stacks uwsgi,gunicorn --rounds 3

Each round starts the native stack (`wsgistack up`'s code) with metrics on,
loads /up with wrk (1 thread, --connections, --seconds after a 2 s warm-up),
stops it, then the same with metrics off; the other order the next round.
Prints each figure, the medians and the cost: 1 - median(on) / median(off).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wsgistack.runner import find_free_port, run_stack  # noqa: E402
from wsgistack.settings import Settings  # noqa: E402
from wsgistack.stacks import get_stack  # noqa: E402

RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")


def wrk(url: str, connections: int, seconds: float) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"{url}: {non_2xx[1]} answers were not 2xx:\n{out}")
    return float(RPS.search(out)[1])


def measure(stack: str, metrics: int, args) -> float:
    settings = Settings.from_env(
        WSGI_PROCESSES=args.processes,
        WSGI_THREADS=args.threads,
        PORT=find_free_port(),
        METRICS_PORT=find_free_port(),
        STATUS_PORT=find_free_port(),
        BIND_ADDRESS="127.0.0.1",
        MAX_REQUESTS=0,
        METRICS=metrics,
    )
    with open(args.log, "a") as log, run_stack(get_stack(stack), settings, log=log) as running:
        url = running.base_url + "/up"
        wrk(url, args.connections, 2)
        return wrk(url, args.connections, args.seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", default="uwsgi,gunicorn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log", default="/tmp/metrics-cost.log")
    args = parser.parse_args()
    for stack in args.stacks.split(","):
        figures: dict[int, list[float]] = {1: [], 0: []}
        for round_ in range(args.rounds):
            for metrics in (1, 0) if round_ % 2 == 0 else (0, 1):
                rps = measure(stack, metrics, args)
                figures[metrics].append(rps)
                print(f"{stack} round {round_ + 1} metrics={metrics}: {rps:,.0f} req/s", flush=True)
        on, off = statistics.median(figures[1]), statistics.median(figures[0])
        print(
            f"{stack} {args.processes} x {args.threads}, /up, wrk -c{args.connections}: "
            f"metrics on {on:,.0f} req/s, off {off:,.0f} req/s (medians of {args.rounds}): "
            f"cost {1 - on / off:.1%}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
