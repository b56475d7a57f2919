"""GIL against free-threaded CPython: the same app, server and processes x
threads, in containers pinned to the same CPUs, in interleaved rounds.

    python docs/measurements/compare_interpreters.py ROUNDS SECONDS IMAGE_TAG > run.csv
    python docs/measurements/compare_interpreters.py --table run.csv

Requests/s from wrk (1 thread, 4 connections); CPU per request from the
container's cgroup (cpuacct.usage, cgroup v1: Docker's cgroupfs driver).
Images: wsgistack-gunicorn, wsgistack-granian (Debian's python3) and
wsgistack-freethreaded (CPython built with --disable-gil), all at IMAGE_TAG:
`IMAGE_TAG=x docker compose --profile gunicorn --profile granian --profile
freethreaded build`. A stand-in until the benchmark package gains the axis.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict

CPUS = "0,1"
GUNICORN = ["gunicorn", "--config", "/srv/deploy/gunicorn/gunicorn.conf.py"]
# (interpreter, server, image, command, container port)
SERVERS = [
    ("gil", "gunicorn", "wsgistack-gunicorn", [], 8082),
    ("freethreaded", "gunicorn", "wsgistack-freethreaded", GUNICORN, 8085),
    ("gil", "granian", "wsgistack-granian", [], 8085),
    ("freethreaded", "granian", "wsgistack-freethreaded", [], 8085),
]
SHAPES = [(1, 1), (1, 2), (2, 1)]
WORKLOADS = {"cpu": "/fib/25?method=naive", "sequence": "/fib/sequence?n=1000", "io": "/io?ms=100"}
COLUMNS = ["round", "interpreter", "server", "processes", "threads", "workload", "requests",
           "requests_per_s", "cpu_ms_per_request", "non_2xx", "python"]  # fmt: skip


def sh(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def cpu_ns(container: str) -> int:
    with open(f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage") as usage:
        return int(usage.read())


def wait_info(base: str) -> dict:
    for _ in range(150):
        try:
            with urllib.request.urlopen(base + "/info", timeout=2) as answer:
                return json.load(answer)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{base} never answered")


def measure(rounds: int, seconds: int, tag: str) -> None:
    out = csv.writer(sys.stdout)
    out.writerow(COLUMNS)
    for rnd in range(1, rounds + 1):
        for processes, threads in SHAPES:
            for interpreter, server, image, command, port in SERVERS:
                container = sh(
                    "docker", "run", "--detach", "--rm", "--cpuset-cpus", CPUS, "--read-only",
                    "--tmpfs", "/tmp", "--no-healthcheck", "--env", f"WSGI_PROCESSES={processes}",
                    "--env", f"WSGI_THREADS={threads}", "--env", "MAX_REQUESTS=0",
                    "--publish", f"127.0.0.1::{port}", f"{image}:{tag}", *command,
                ).strip()  # fmt: skip
                try:
                    host_port = sh("docker", "port", container, f"{port}/tcp").split()[0]
                    base = f"http://127.0.0.1:{host_port.rsplit(':', 1)[1]}"
                    python = wait_info(base)["python"]
                    for workload, path in WORKLOADS.items():
                        sh("wrk", "-t1", "-c4", "-d1s", base + path)  # warm-up
                        before = cpu_ns(container)
                        text = sh("wrk", "-t1", "-c4", f"-d{seconds}s", base + path)
                        used = cpu_ns(container) - before
                        n = int(re.search(r"(\d+) requests in", text).group(1))
                        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
                        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
                        cpu = round(used / 1e6 / max(n, 1), 3)
                        out.writerow([rnd, interpreter, server, processes, threads, workload, n,
                                      rps, cpu, errors.group(1) if errors else 0,
                                      python])  # fmt: skip
                        sys.stdout.flush()
                finally:
                    subprocess.run(["docker", "rm", "--force", container], capture_output=True)


def table(path: str) -> None:
    """Medians over the rounds, side by side, and the scaling ratios."""
    with open(path) as results:
        rows = list(csv.DictReader(results))
    cells: dict = defaultdict(lambda: {"rps": [], "cpu": [], "cores": []})
    for row in rows:
        shape = f"{row['processes']}x{row['threads']}"
        cell = cells[(row["workload"], row["server"], row["interpreter"], shape)]
        rps, cpu = float(row["requests_per_s"]), float(row["cpu_ms_per_request"])
        cell["rps"].append(rps)
        cell["cpu"].append(cpu)
        cell["cores"].append(rps * cpu / 1000)
    med = statistics.median
    print("| workload | server | shape | req/s GIL | req/s free-threaded | CPU ms/req GIL "
          "| CPU ms/req free-threaded | cores used GIL | cores used free-threaded |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for workload in WORKLOADS:
        for server in ("gunicorn", "granian"):
            for shape in ("1x1", "1x2", "2x1"):
                gil = cells[(workload, server, "gil", shape)]
                free = cells[(workload, server, "freethreaded", shape)]
                print(f"| {workload} | {server} | {shape} | {med(gil['rps']):.1f} "
                      f"| {med(free['rps']):.1f} | {med(gil['cpu']):.2f} | {med(free['cpu']):.2f} "
                      f"| {med(gil['cores']):.2f} | {med(free['cores']):.2f} |")  # fmt: skip
    print("\n| workload | server | interpreter | 1x2 / 1x1 | 2x1 / 1x1 |")
    print("|---|---|---|---:|---:|")
    for workload in WORKLOADS:
        for server in ("gunicorn", "granian"):
            for interpreter in ("gil", "freethreaded"):
                one = med(cells[(workload, server, interpreter, "1x1")]["rps"])
                ratios = [med(cells[(workload, server, interpreter, s)]["rps"]) / one
                          for s in ("1x2", "2x1")]  # fmt: skip
                print(f"| {workload} | {server} | {interpreter} | x{ratios[0]:.2f} "
                      f"| x{ratios[1]:.2f} |")  # fmt: skip
    rounds = sorted({row["round"] for row in rows})
    print(f"\n{len(rows)} measurements in {len(rounds)} rounds; medians shown")


if __name__ == "__main__":
    if sys.argv[1] == "--table":
        table(sys.argv[2])
    else:
        measure(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
