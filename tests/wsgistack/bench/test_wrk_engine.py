"""wsgistack/bench/wrk_engine.py: wrk's summary (printed by wrk_report.lua) read back."""

from __future__ import annotations

import pytest

from wsgistack.bench import wrk_engine
from wsgistack.bench.results import Result

WRK_OUTPUT = """Running 4s test @ http://127.0.0.1:8090/up
  1 threads and 32 connections
WSGISTACK {"requests": 20000, "duration_us": 4000000, "bytes": 1, "connect": 0, "read": 2, \
"write": 0, "status": 3, "timeout": 0, "mean_us": 1500.0, "p50_us": 1400, "p95_us": 2900, \
"p99_us": 5100, "server_timing_count": 19990, "app_cpu_ms_sum": 1999.0, "compressed": 5000, \
"wrong": 4}
"""


def test_wrk_summary_is_read_back():
    summary = wrk_engine.parse_wrk_output(WRK_OUTPUT)
    r = Result("uwsgi", 2, 1, "floor", engine="wrk")
    wrk_engine.fill_from_summary(r, summary)
    # failed: the non-2xx answers and the 2xx ones without the expected value
    assert (r.requests, r.failures, r.reconnects, r.rps) == (20000, 3 + 4, 2, 5000.0)
    assert (r.compressed, r.bytes_per_answer) == (0.25, 1 / 20000)
    assert (r.p50_ms, r.p95_ms, r.p99_ms) == (1.4, 2.9, 5.1)
    assert r.app_cpu_ms == pytest.approx(0.1)
    assert wrk_engine.parse_wrk_output("no summary") is None


def test_wrk_script_prints_the_fields_read_back():
    script = wrk_engine.SCRIPT.read_text()
    for key in wrk_engine.parse_wrk_output(WRK_OUTPUT):
        assert f'"{key}"' in script, key


def test_wrk_sends_the_workloads_accept_encoding_and_checks_its_text():
    argv = wrk_engine.wrk_argv("wrk", "http://h/up", 16, 2.5, "gzip", '{"status":"ok"}')
    assert argv[argv.index("--header") + 1] == "Accept-Encoding: gzip"
    assert argv[argv.index("--duration") + 1] == "3s"
    # the script's argument, after the URL and wrk's `--`
    assert argv[-3:] == ["http://h/up", "--", '{"status":"ok"}']
    assert "--header" not in wrk_engine.wrk_argv("wrk", "http://h/up", 16, 2, "", "")
