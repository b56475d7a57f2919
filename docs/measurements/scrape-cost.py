"""What one scrape of a stack's metrics endpoint costs, after traffic
(docs/metrics.md).

    .venv/bin/python docs/measurements/scrape-cost.py --stacks uwsgi,apache,granian

Each stack is started natively (`wsgistack up`'s code) at 2 x 1 with
METRICS=1 and loaded with wrk on /up for --seconds (1 thread, 16
connections), which leaves the connections it closed in TIME_WAIT, as a
server under load has them. Then the metrics endpoint is scraped --scrapes
times in a row. Prints the milliseconds per scrape, the CPU the stack's
processes spent per scrape (psutil, all of them), the size of the answer,
the TCP sockets in TIME_WAIT (`ss -s`), and what the bench's scrapes (4 a
second, wsgistack/bench/server_metrics.py) take of one core at that cost.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from wsgistack.runner import find_free_port, run_stack  # noqa: E402
from wsgistack.settings import Settings  # noqa: E402
from wsgistack.stacks import get_stack  # noqa: E402


def cpu_of(processes: list[psutil.Process]) -> dict[int, float]:
    spent = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        spent[process.pid] = times.user + times.system
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", default="uwsgi,apache,granian")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--scrapes", type=int, default=40)
    parser.add_argument("--log", default="/tmp/scrape-cost.log")
    args = parser.parse_args()
    for stack in args.stacks.split(","):
        settings = Settings.from_env(
            WSGI_PROCESSES=2,
            WSGI_THREADS=1,
            PORT=find_free_port(),
            METRICS_PORT=find_free_port(),
            STATUS_PORT=find_free_port(),
            BIND_ADDRESS="127.0.0.1",
            MAX_REQUESTS=0,
            METRICS=1,
        )
        with open(args.log, "a") as log, run_stack(get_stack(stack), settings, log=log) as running:
            subprocess.run(
                ["wrk", "-t1", "-c16", f"-d{args.seconds}s", running.base_url + "/up"],
                capture_output=True,
                check=True,
                timeout=args.seconds + 30,
            )
            summary = subprocess.run(["ss", "-s"], capture_output=True, text=True).stdout
            time_wait = re.search(r"timewait (\d+)", summary)
            url = f"http://127.0.0.1:{settings.METRICS_PORT}/metrics"
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            opener.open(url, timeout=10).read()
            processes = psutil.Process().children(recursive=True)
            before = cpu_of(processes)
            started = time.perf_counter()
            for _ in range(args.scrapes):
                body = opener.open(url, timeout=10).read()
            wall = (time.perf_counter() - started) / args.scrapes
            after = cpu_of(processes)
            cpu = sum(after[pid] - before[pid] for pid in after if pid in before) / args.scrapes
        print(
            f"{stack}: {wall * 1000:.2f} ms per scrape, {cpu * 1000:.2f} ms of the stack's CPU,"
            f" {len(body):,} bytes, {time_wait[1] if time_wait else '?'} sockets in TIME_WAIT;"
            f" 4 scrapes a second take {cpu * 4 * 100:.1f}% of a core",
            flush=True,
        )


if __name__ == "__main__":
    main()
