"""``wsgistack crossover``, the command: the compose stack of each mode in turn,
the measurements of wsgistack/bench/crossover.py on it, the report."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from pathlib import Path

from wsgistack.bench import crossover
from wsgistack.bench.crossover import (
    DEFAULT_SIZES,
    MODES,
    SHORT_PATH,
    Point,
    measure,
    mode_env,
    profiles,
    write_report,
)
from wsgistack.cpus import available_cpus
from wsgistack.runner import StackError
from wsgistack.stacks import ROOT

DEFAULT_PORT = 8091
DEFAULT_PROJECT = "wsgistack-crossover"
UP_TIMEOUT = 240


# ---------------------------------------------------------------------------


class Stacks:
    """The compose stack of each mode, brought up in turn in a project of its own."""

    def __init__(self, project: str, port: int, image_tag: str, cpus: float, share: float):
        self.project, self.port, self.cpus, self.share = project, port, cpus, share
        self.env = {
            **os.environ,
            "IMAGE_TAG": image_tag,
            "UWSGI_HTTP_PORT": str(port),
            "UWSGI_HTTPS_PORT": str(port + 400),
            "HEALTHCHECK_INTERVAL": "2s",
            # a password of this run's own: the stack is torn down after it
            "VALKEY_PASSWORD": secrets.token_hex(16),
            # the long work must never be refused for a full queue
            "JOB_QUEUE_LIMIT": "100000",
        }
        if not Path(self.env.get("CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")).is_file():
            self.env["CA_BUNDLE"] = "/dev/null"

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "--project-name", self.project]
        command += ["--project-directory", str(ROOT), "--file", str(ROOT / "compose.yaml")]
        command += ["--env-file", os.devnull, *args]
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise StackError(f"{' '.join(args[:4])}...: {result.stderr.strip()[-1500:]}")
        return result

    def up(self, mode: str) -> str:
        self.env.update(mode_env(mode, self.cpus, self.share))
        self.compose(*profiles(mode), "up", "--detach", "--wait", timeout=UP_TIMEOUT)
        return f"http://127.0.0.1:{self.port}"

    def down(self) -> None:
        self.compose("--profile", "*", "down", "--volumes", "--timeout", "20")

    def valkey_cpu(self) -> float:
        """Valkey's CPU seconds so far (its /proc/1/stat: user + system)."""
        ids = self.compose("ps", "--quiet", "valkey").stdout.split()
        if not ids:
            return 0.0
        stat = subprocess.run(
            ["docker", "exec", ids[0], "cat", "/proc/1/stat"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        fields_ = stat.rpartition(")")[2].split()
        return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK") if fields_ else 0.0


def sizes_list(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes are whole numbers, e.g. 20,24") from None
    if not sizes or not all(1 <= s <= 30 for s in sizes):
        # FIB_NAIVE_MAX_N: the in-request mode cannot ask for more
        raise argparse.ArgumentTypeError("sizes are between 1 and 30 (FIB_NAIVE_MAX_N)")
    return sorted(set(sizes))


def add_parser(sub) -> None:
    from wsgistack.bench.command import positive

    parser = sub.add_parser(
        "crossover",
        help="short requests and long CPU work: in the request or on the job queue, "
        "at the same CPU budget",
        description=crossover.__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "--sizes",
        type=sizes_list,
        default=list(DEFAULT_SIZES),
        help="naive Fibonacci sizes of the long work, up to 30 (default "
        f"{','.join(map(str, DEFAULT_SIZES))})",
    )
    parser.add_argument(
        "--cpus",
        type=positive(float),
        help="the CPU budget of the app server and the workers (default: half the CPUs "
        "available, at least 1: the rest is the load generator's, nginx's and Valkey's)",
    )
    parser.add_argument(
        "--share",
        type=positive(float),
        default=0.5,
        help="the workers' share of the budget in jobs mode (default 0.5)",
    )
    parser.add_argument(
        "--duration", type=positive(float), default=20.0, help="seconds per point (default 20)"
    )
    parser.add_argument(
        "--short-users",
        type=positive(int),
        default=4,
        help="clients sending short requests back to back (default 4)",
    )
    parser.add_argument(
        "--long-users",
        type=positive(int),
        default=8,
        help="clients asking for long work back to back (default 8: as many as the uwsgi "
        "stack's processes, so that in the request the long work can take every one)",
    )
    parser.add_argument(
        "--port",
        type=positive(int),
        default=DEFAULT_PORT,
        help=f"nginx's published port (default {DEFAULT_PORT})",
    )
    parser.add_argument("--project", default=DEFAULT_PROJECT, help="the compose project")
    parser.add_argument("--tag", default=os.environ.get("IMAGE_TAG", "latest"), help="image tag")
    parser.add_argument("--out", type=Path, help="report folder (default reports/crossover-<time>)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from wsgistack.bench.command import new_report_dir

    if args.share >= 1:
        raise StackError("--share is the workers' part of the budget: below 1")
    cpus = args.cpus or max(1.0, available_cpus() / 2)
    stacks = Stacks(args.project, args.port, args.tag, cpus, args.share)
    out = new_report_dir(args.out, prefix="crossover-")
    points: list[Point] = []
    try:
        for mode in MODES:
            base_url = stacks.up(mode)
            for size in args.sizes:
                point = measure(
                    base_url,
                    mode,
                    size,
                    args.duration,
                    args.short_users,
                    args.long_users,
                    stacks.valkey_cpu if mode == "jobs" else None,
                )
                points.append(point)
                print(
                    f"wsgistack crossover: {mode} n={size}: short p95 {point.short_p95_ms} ms, "
                    f"long {point.long_per_s}/s, errors {point.errors}",
                    flush=True,
                )
    finally:
        stacks.down()
    meta = {
        "CPUs": f"{cpus:g}",
        "workers' share": f"{args.share:g}",
        "seconds per point": f"{args.duration:g}",
        "short users": str(args.short_users),
        "long users": str(args.long_users),
        "short request": SHORT_PATH,
    }
    answer = write_report(out, points, meta)
    print(
        f"wsgistack crossover: {answer.sentence}\nreport: {out / 'crossover.md'}", file=sys.stdout
    )
    return 0
