"""The Locust scenarios (loadtests/) against a real stack: they pass on right
answers, fail on wrong ones and on broken thresholds, and the batch replay sends
exactly the requests it says."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from wsgistack.runner import StackError, find_free_port, run_stack
from wsgistack.settings import Settings
from wsgistack.stacks import ROOT, get_stack

LOADTESTS = ROOT / "loadtests"


def locust(*args: str, timeout: float = 60) -> tuple[int, str]:
    """Run Locust headless; its exit code and its output (the summary goes to stderr)."""
    run = subprocess.run(
        [sys.executable, "-m", "locust", "--headless", "--only-summary", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return run.returncode, run.stdout


@pytest.fixture(scope="module")
def uwsgi_url(tmp_path_factory) -> Iterator[str]:
    """nginx + uWSGI (2 x 4) on a free port, for the whole module."""
    settings = Settings.from_env(
        {}, WSGI_PROCESSES=2, WSGI_THREADS=4, PORT=find_free_port(), BIND_ADDRESS="127.0.0.1"
    )
    log_path = tmp_path_factory.mktemp("locust-stack") / "uwsgi.log"
    with open(log_path, "w") as log:
        try:
            with run_stack(get_stack("uwsgi"), settings, log=log) as stack:
                yield stack.base_url
        except StackError as exc:
            pytest.skip(str(exc))


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _wrong_app(environ, start_response):
    """Answers shaped like the Fibonacci app's, with wrong values."""
    path = environ["PATH_INFO"]
    if path == "/fib/sequence":
        body = {"n": 1000, "values": ["0", "1", "1", "2", "4"] + ["0"] * 995}
    else:
        body = {"n": 25, "method": "naive", "value": "75026", "digits": 5}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


@pytest.fixture
def wrong_url() -> Iterator[str]:
    """A server that answers every request quickly and wrongly."""
    server = make_server("127.0.0.1", find_free_port(), _wrong_app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_every_scenario_passes_against_the_stack(uwsgi_url):
    code, output = locust(
        "-f",
        str(LOADTESTS / "fib.py"),
        "--host",
        uwsgi_url,
        "-u",
        "20",
        "-r",
        "10",
        "-t",
        "10s",
    )
    assert code == 0, output
    # each scenario ran (no class named: all of them), none failed
    for name in ("/fib/[n]?method=naive", "/fib/[n]?method=doubling", "/fib/sequence?n=[n]"):
        assert name in output
    assert "/io?ms=[ms]" in output and "/fanout" in output
    assert "0(0.00%)" in output.split("Aggregated")[1]


def test_the_config_file_runs_as_documented(uwsgi_url):
    code, output = locust(
        "--config", str(LOADTESTS / "locust.conf"), "--host", uwsgi_url, "-t", "3s", "IoUser"
    )
    assert code == 0, output
    assert "/io?ms=[ms]" in output


def test_a_wrong_fibonacci_value_fails_the_run(wrong_url):
    code, output = locust(
        "-f",
        str(LOADTESTS / "fib.py"),
        "--host",
        wrong_url,
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "3s",
        "CpuUser",
        "SequenceUser",
    )
    assert code == 1, output
    assert "wrong value for F(25): 75026" in output
    assert "wrong sequence from index 4" in output
    assert "threshold broken: failure ratio 100.00%" in output


def test_a_broken_p95_threshold_sets_the_exit_code(uwsgi_url):
    code, output = locust(
        "-f",
        str(LOADTESTS / "fib.py"),
        "--host",
        uwsgi_url,
        "-u",
        "8",
        "-r",
        "8",
        "-t",
        "3s",
        "--max-p95-ms",
        "1",
        "CpuUser",
    )
    assert code == 1, output
    assert "threshold broken: p95" in output


def test_the_batch_shape_sends_exactly_its_batches(uwsgi_url, tmp_path):
    prefix = tmp_path / "batches"
    code, output = locust(
        "-f",
        str(LOADTESTS / "batches.py"),
        "--host",
        uwsgi_url,
        "--csv",
        str(prefix),
        "--batch-sizes",
        "10,25",
        "--batch-users",
        "5",
        "SequenceBatchUser",
    )
    assert code == 0, output
    with open(f"{prefix}_stats.csv", newline="") as stats:
        rows = {(row["Type"], row["Name"]): row for row in csv.DictReader(stats)}
    assert rows[("GET", "/fib/sequence?n=[n]")]["Request Count"] == "35"
    for size in (10, 25):
        batch = rows[("BATCH", f"{size} requests")]
        assert batch["Request Count"] == "1" and batch["Failure Count"] == "0"
        assert 0 < float(batch["Average Response Time"]) < 30_000


def test_run_single_user_debugs_one_user(uwsgi_url):
    proc = subprocess.Popen(
        [sys.executable, str(LOADTESTS / "fib.py"), "--host", uwsgi_url, "IoUser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.kill()
        proc.wait()
    assert any("/io?ms=[ms]" in line for line in lines), lines
