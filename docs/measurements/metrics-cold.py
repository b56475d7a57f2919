"""What the app's metrics cost a request in-process, with the CPU's caches
warm (one request after the other) and cold (a buffer written between two
requests, as the proxy and the other workers do in a server), by part
(docs/metrics.md).

    .venv/bin/python docs/measurements/metrics-cold.py --rounds 5 --evict-mb 8

Each figure is one fresh process (``--variant``) that calls the app's WSGI
callable on ``/up`` --requests times, --repeats times, and prints the median
thread CPU per request; the buffer's writing is not counted. The variants,
interleaved round by round:

    off          no metrics (no PROMETHEUS_MULTIPROC_DIR)
    on           the metrics as shipped (multiprocess mode)
    no-in-flight the in-flight gauge's two writes left out
    no-writes    no writes at all (started and ended do nothing)
    no-route     the route not noted (Flask's own request context)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("off", "on", "no-in-flight", "no-writes", "no-route")


def one(variant: str, evict_mb: float, requests: int, repeats: int) -> float:
    """The median CPU microseconds per request of this process's runs."""
    sys.path.insert(0, str(ROOT))
    if variant != "off":
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
    import flask.ctx

    import app.metrics as metrics

    if variant == "no-route":
        metrics.RouteNotingContext = flask.ctx.RequestContext
    if variant == "no-writes":
        metrics.AppMetrics.started = lambda self: None
        metrics.AppMetrics.ended = lambda self, *args: None
    if variant == "no-in-flight":
        reset = metrics._FileWrites._reset

        class Nowhere:
            def add(self, amount: float) -> None:
                pass

        def no_in_flight(self) -> None:
            reset(self)
            self.in_flight = Nowhere()

        metrics._FileWrites._reset = no_in_flight
        metrics._FileWrites.started = lambda self: None
    from werkzeug.test import EnvironBuilder

    from app import create_app

    application = create_app()
    environ = EnvironBuilder(path="/up").get_environ()

    def start_response(status, headers, exc_info=None):
        pass

    def call() -> None:
        body = application(dict(environ), start_response)
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()

    buffer = bytearray(int(evict_mb * 2**20))
    lines = len(buffer[::64])

    def evict() -> None:
        if lines:
            buffer[::64] = bytes(lines)  # one write per cache line

    for _ in range(500):
        call()
    medians = []
    for _ in range(repeats):
        spent = 0
        for _ in range(requests):
            evict()
            started = time.thread_time_ns()
            call()
            spent += time.thread_time_ns() - started
        medians.append(spent / requests / 1e3)
    return statistics.median(medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--evict-mb", type=float, default=8.0, help="0: caches warm")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(one(args.variant, args.evict_mb, args.requests, args.repeats))
        return
    variants = args.variants.split(",")
    figures: dict[str, list[float]] = {v: [] for v in variants}
    for round_ in range(args.rounds):
        for variant in variants if round_ % 2 == 0 else variants[::-1]:
            out = subprocess.run(
                [sys.executable, __file__, "--variant", variant, "--evict-mb", str(args.evict_mb)]
                + ["--requests", str(args.requests), "--repeats", str(args.repeats)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            figures[variant].append(float(out))
            print(f"round {round_ + 1} {variant}: {figures[variant][-1]:.1f} us", flush=True)
    off = statistics.median(figures["off"]) if figures.get("off") else None
    for variant, values in figures.items():
        median = statistics.median(values)
        above = f", {median - off:+.1f} us against off" if off is not None else ""
        print(
            f"{variant}: {median:.1f} us per request (median of {len(values)};"
            f" {min(values):.1f}-{max(values):.1f}){above}"
        )


if __name__ == "__main__":
    main()
