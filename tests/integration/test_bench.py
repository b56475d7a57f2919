"""``wsgistack bench``: the quick benchmark end to end on the native stacks, the
files it writes, and its clean-up on Ctrl-C. Its refusals before anything starts
and the pure logic behind it are tested without servers in tests/wsgistack/bench/."""

from __future__ import annotations

import base64
import csv
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from wsgistack import bench
from wsgistack.runner import (
    StackError,
    check_binaries,
    check_system_python,
    find_free_port,
)
from wsgistack.stacks import ROOT, get_stack
from wsgistack.wait import wait_until


def wsgistack(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wsgistack.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def require_stacks(*names: str) -> None:
    for name in names:
        try:
            check_binaries(get_stack(name))
            check_system_python(get_stack(name))
        except StackError as exc:
            pytest.skip(str(exc))


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One `wsgistack bench --quick` on every native stack: its run and its folder."""
    require_stacks(*bench.DEFAULT_STACKS)
    out = tmp_path_factory.mktemp("bench") / "quick"
    port = find_free_port()
    started = time.monotonic()
    run = wsgistack("bench", "--quick", "--port", str(port), "--out", str(out))
    return run, out, port, time.monotonic() - started


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as source:
        return list(csv.DictReader(source))


def test_quick_bench_runs_every_stack_within_three_minutes(quick):
    run, out, port, seconds = quick
    assert run.returncode == 0, run.stdout + run.stderr
    # about 2 minutes; more on a machine others share
    assert seconds < 180, f"--quick took {seconds:.0f} s"
    # the main table is printed at the end, every server is stopped
    assert "requests/s (p95 ms), medians" in run.stdout
    assert port_is_free(port)


def test_results_csv_has_one_measured_row_per_run(quick):
    _, out, _, _ = quick
    rows = read_csv(out / "results.csv")
    assert list(rows[0]) == bench.RESULT_COLUMNS
    plan = bench.build_plan(bench.DEFAULT_STACKS, bench.MODES["quick"])
    expected = {
        (run.stack, str(run.concurrency.processes), str(run.concurrency.threads), workload)
        for run in plan
        for workload in run.workloads
    }
    assert {(r["stack"], r["processes"], r["threads"], r["workload"]) for r in rows} == expected
    assert len(rows) == len(expected)
    for row in rows:
        where = f"{row['stack']} {row['workload']}"
        assert row["error"] == "", f"{where}: {row['error']}"
        assert int(row["requests"]) > 0 and float(row["rps"]) > 0, where
        # answers are checked: a failure is a wrong answer or a refused request
        assert row["failures"] == "0", where
        assert float(row["p50_ms"]) <= float(row["p95_ms"]) <= float(row["p99_ms"]), where
        for column in ("server_cores", "generator_cores", "app_cpu_ms", "server_cpu_ms", "pss_mb"):
            assert float(row[column]) > 0, f"{where}: {column}"
        assert row["generator_bound"] in ("True", "False")
        assert row["python"].startswith("CPython 3."), where
        # wrk loads every workload; its output is kept beside ours
        assert row["engine"] == "wrk", where
        assert "WSGISTACK {" in (out / row["engine_files"]).read_text(), where
        # asked on purpose: compressed answers only where gzip was asked for,
        # and only from the proxies
        gzip = row["workload"] == "sequence-gzip"
        assert row["accept_encoding"] == ("gzip" if gzip else "identity"), where
        assert float(row["compressed"]) == (1.0 if gzip else 0.0), where
    assert {r["stack"] for r in rows if r["workload"] == "sequence-gzip"} == {"uwsgi", "apache"}
    # one run per cell in --quick: cells.csv has the same cells
    cells = read_csv(out / "cells.csv")
    assert {(r["stack"], r["workload"]) for r in cells} == {
        (r["stack"], r["workload"]) for r in rows
    }


def test_a_default_report_folder_stays_small(quick):
    _, out, _, _ = quick
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    assert size < 10_000_000, f"{size:,} bytes"


def test_batches_csv_times_the_replay(quick):
    _, out, _, _ = quick
    rows = read_csv(out / "batches.csv")
    assert list(rows[0]) == bench.BATCH_COLUMNS
    # --quick replays on the development server and the first stack only, each
    # batch repeated for its spread (the untimed warm-up batch is not a row)
    assert sorted((r["stack"], r["repeat"]) for r in rows) == [
        (stack, str(repeat)) for stack in ("devserver", "uwsgi") for repeat in (1, 2, 3)
    ]
    for row in rows:
        assert row["error"] == "" and row["failures"] == "0", row
        assert row["requests"] == "10" and 0 < float(row["seconds"]) < 10, row
        assert (row["claimed_devserver_seconds"], row["claimed_multi_seconds"]) == ("3.25", "2.52")


def test_report_md_has_the_tables(quick):
    _, out, _, _ = quick
    report = (out / "report.md").read_text()
    # the answer first, the project's own goals at the end
    headings = re.findall(r"^## (.+)$", report, re.M)
    assert headings[:3] == [
        "The answer",
        "Stack overhead per request",
        "The overhead floor: `/up` loaded by wrk",
    ]
    assert headings[-2:] == ["The project's performance goals", "Files"]
    assert "Memory per server process tree" in headings
    answers = re.findall(
        r"^\| (.+?) \| \*\*(uwsgi|apache|gunicorn) 2 x 4\*\* \| [\d,.]+ \|", report, re.M
    )
    assert len(answers) == 3, report[:3000]
    assert re.search(
        r"^\| uwsgi \| 2 x 4 \| floor \| wrk \| [\d.]+ \| [\d.]+ \| -?[\d.]+ \|", report, re.M
    )
    assert "| goal | figure | verdict | note |" in report
    for workload in ("cpu", "sequence", "io", "floor", "sequence-gzip"):
        assert f"![requests/s and p95, {workload}](charts/{workload}.png)" in report
    # what the load generators sent, and who compressed
    assert re.search(r"^\| sequence-gzip \| .+ \| wrk \| `gzip` \| uwsgi, apache \|", report, re.M)
    for stack in bench.DEFAULT_STACKS:
        assert re.search(rf"^\| {re.escape(stack)} \| \d", report, re.M), stack
    assert "## The original comparison, replayed" in report
    assert re.search(
        r"^\| 10 \| 3.25 s \| 2.52 s \| 1.29 x \| [\d.]+ s \([\d.]+-[\d.]+, 3 runs\)", report, re.M
    )


def test_report_html_is_self_contained_with_charts(quick):
    _, out, _, _ = quick
    html = (out / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    # cpu, sequence, io, floor, sequence-gzip, the overhead and the replay
    assert len(images) == 7
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert not re.search(r'(src|href)="(?!data:)', html), "refers to another file"
    assert "<table>" in html


def test_ctrl_c_stops_every_server(tmp_path):
    require_stacks("uwsgi")
    port = find_free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wsgistack.cli",
            "bench",
            "--stacks",
            "uwsgi",
            "--settings",
            "1x1",
            "--duration",
            "60",
            "--port",
            str(port),
            "--out",
            str(tmp_path / "r"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def servers_and_wrk() -> list[psutil.Process]:
            children = psutil.Process(proc.pid).children(recursive=True)
            return children if any(c.name() == "wrk" for c in children) else []

        # the stack is up and wrk loads it: every process the interrupt must end
        children = wait_until(
            servers_and_wrk,
            timeout=60,
            interval=0.2,
            what="the servers and wrk running",
            ignore=(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess),
        )
        assert len(children) >= 3
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "interrupted" in output
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert port_is_free(port)
    # what was measured before the interrupt is reported
    assert (tmp_path / "r" / "report.md").is_file()


HELLO_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from " + environ["PATH_INFO"].encode()]
"""
HELLO_LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Hello(FastHttpUser):
    wait_time = constant(0)

    @task
    def hello(self):
        with self.client.get("/x", catch_response=True) as resp:
            if resp.text != "hello from /x":
                resp.failure("wrong answer")
"""


@pytest.fixture
def own_app():
    """A WSGI app and its locustfile in a folder the servers' unprivileged user can read."""
    folder = Path(tempfile.mkdtemp(prefix="wsgistack-own-app-"))
    folder.chmod(0o755)
    (folder / "hello_app.py").write_text(HELLO_APP)
    (folder / "hello_locust.py").write_text(HELLO_LOCUSTFILE)
    for path in folder.iterdir():
        path.chmod(0o644)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.parametrize("stack", ["uwsgi", "gunicorn"])
def test_sizing_recommends_a_setting_for_your_own_app(stack, own_app, tmp_path):
    require_stacks(stack)
    out = tmp_path / "sizing"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "wsgistack.cli",
            "sizing",
            "--stack",
            stack,
            "--app",
            "hello_app:application",
            "--locustfile",
            "hello_locust.py",
            "--processes",
            "1,2",
            "--threads",
            "1,4",
            "--duration",
            "1",
            # one round: the rounds are tested without servers (tests/wsgistack/bench)
            "--repeats",
            "1",
            "--users",
            "8",
            "--max-memory",
            "2G",
            "--port",
            str(find_free_port()),
            "--out",
            str(out),
        ],
        cwd=own_app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Recommended:" in run.stdout and "within 2048 MB of memory" in run.stdout
    rows = read_csv(out / "results.csv")
    assert len(rows) == 4
    # the servers ran the app given, and the locustfile checked its answers
    assert all(r["error"] == "" and r["failures"] == "0" and int(r["requests"]) > 0 for r in rows)
    # the server process tree's memory: more processes, more of it
    pss = {(r["processes"], r["threads"]): float(r["pss_mb"]) for r in rows}
    assert all(0 < float(r["uss_mb"]) <= float(r["pss_mb"]) <= float(r["rss_mb"]) for r in rows)
    assert pss[("2", "1")] > pss[("1", "1")]
    report = (out / "report.md").read_text()
    assert "## Recommendation" in report and "hello_app:application" in report
    assert "![processes x threads](charts/grid.png)" in report
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert not re.search(r'(src|href)="(?!data:)', html), "refers to another file"
