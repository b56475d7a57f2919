"""The benchmark's pure logic, without a server: the plan and its time estimate,
CPU accounting, wrk's and Locust's summaries read back, the goals' verdicts,
the replay's ratio, the recommendations, and the report rendered from made-up
results (its sections in the order a reader needs them)."""

from __future__ import annotations

import ast
import base64
import re
from pathlib import Path

import pytest

from wsgistack.bench import answer, cpu, goals, plan, report, results, wrk_engine
from wsgistack.bench.endpoints import Endpoint
from wsgistack.bench.locust_engine import parse_batches
from wsgistack.bench.plan import MODES, Concurrency, StackRun, build_plan, estimate_seconds
from wsgistack.bench.results import BatchResult, Result

PACKAGE = Path(plan.__file__).parent
C = Concurrency


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


# --- the plan ---------------------------------------------------------------


def test_quick_plan_replays_on_the_devserver_and_the_first_stack_only():
    runs = build_plan(plan.DEFAULT_STACKS, MODES["quick"])
    assert [(r.stack, r.concurrency.label) for r in runs] == [
        ("uwsgi", "2x4"),
        ("apache", "2x4"),
        ("gunicorn", "2x4"),
        ("devserver", "1x1"),
        ("uwsgi-direct", "2x4"),
    ]
    assert [r.stack for r in runs if r.replays] == ["uwsgi", "devserver"]
    assert runs[0].workloads == ["cpu", "sequence", "io", "floor"]
    # uWSGI alone is the yardstick: the CPU-bound request and the floor only
    assert runs[-1].workloads == ["cpu", "floor"]


def test_default_plan_replays_at_2x16_on_every_stack():
    runs = build_plan(["uwsgi", "gunicorn", "devserver"], MODES["default"])
    replayed = [(r.stack, r.concurrency.label) for r in runs if r.replays]
    assert replayed == [("uwsgi", "2x16"), ("gunicorn", "2x16"), ("devserver", "1x1")]
    assert len([r for r in runs if r.stack == "devserver"]) == 2


def test_the_replay_moves_to_the_largest_concurrency_chosen():
    runs = build_plan(["uwsgi"], MODES["default"], [C(1, 1), C(4, 2), C(2, 4)])
    assert [r.concurrency for r in runs if r.replays] == [C(4, 2)]


def test_parse_concurrency():
    assert plan.parse_concurrency(" 2 x 16 ") == C(2, 16)
    with pytest.raises(Exception, match="PROCESSESxTHREADS"):
        plan.parse_concurrency("0x4")


def test_time_estimate_counts_every_repeat_of_a_batch():
    run_ = StackRun("devserver", C(1, 1), ["cpu"], {"io": {10: 5, 100: 1}})
    steps = estimate_seconds(run_, 4)
    assert steps["cpu"] == 4 + plan.WARMUP_SECONDS + 2.5
    # 150 requests of 0.1 s one at a time, 6 batches a second apart, the warm-up
    assert steps["io batches"] == pytest.approx(4 + 15 + 6)
    assert plan.batch_sizes({100: 1, 10: 3}) == [10, 10, 10, 100]


def test_default_mode_stays_within_its_budget():
    minutes = plan.estimate_plan(build_plan(plan.DEFAULT_STACKS, MODES["default"]), 4) / 60
    assert 5 < minutes < 15


# --- CPU accounting ---------------------------------------------------------


def test_cores_between_interpolates_between_samples():
    samples = [(0.0, 0.0, 0.0), (1.0, 1.0, 2.0), (2.0, 1.5, 3.0)]
    assert cpu.value_at(samples, 0.5, cpu.SERVERS) == 0.5
    assert cpu.cores_between(samples, 0.5, 1.5, cpu.SERVERS) == pytest.approx(0.75)
    assert cpu.cores_between(samples, 0.0, 2.0, cpu.MACHINE) == pytest.approx(1.5)
    # outside the samples: the nearest one
    assert cpu.value_at(samples, 5.0, cpu.SERVERS) == 1.5
    assert cpu.cores_between(samples[:1], 0, 1, cpu.SERVERS) is None


def test_cpu_per_request_and_the_rest_of_the_machine():
    # 1.5 cores for 4 s over 600 requests: 10 ms each
    assert cpu.cpu_ms_per_request(1.5, 4.0, 600) == pytest.approx(10.0)
    assert cpu.cpu_ms_per_request(1.5, 4.0, 0) is None
    assert cpu.other_cores(1.9, 1.0, 0.6) == pytest.approx(0.3)
    assert cpu.other_cores(1.0, 1.0, 0.6) == 0.0
    assert cpu.other_cores(None, 1.0, 0.6) is None


def test_overhead_is_server_cpu_minus_the_apps_own():
    r = run("uwsgi", C(2, 1), "sequence", 500, server_cpu_ms=3.5, app_cpu_ms=2.0)
    assert r.overhead_ms == pytest.approx(1.5)
    assert results.overhead_ms(None, 2.0) is None


# --- the generators' summaries ----------------------------------------------

WRK_OUTPUT = """Running 4s test @ http://127.0.0.1:8090/up
  1 threads and 32 connections
WSGISTACK {"requests": 20000, "duration_us": 4000000, "bytes": 1, "connect": 0, "read": 2, \
"write": 0, "status": 3, "timeout": 0, "mean_us": 1500.0, "p50_us": 1400, "p95_us": 2900, \
"p99_us": 5100, "server_timing_count": 19990, "app_cpu_ms_sum": 1999.0}
"""


def test_wrk_summary_is_read_back():
    summary = wrk_engine.parse_wrk_output(WRK_OUTPUT)
    r = Result("uwsgi", 2, 1, "floor", engine="wrk")
    wrk_engine.fill_from_summary(r, summary)
    assert (r.requests, r.failures, r.reconnects, r.rps) == (20000, 3, 2, 5000.0)
    assert (r.p50_ms, r.p95_ms, r.p99_ms) == (1.4, 2.9, 5.1)
    assert r.app_cpu_ms == pytest.approx(0.1)
    assert wrk_engine.parse_wrk_output("no summary") is None


def test_wrk_script_prints_the_fields_read_back():
    script = wrk_engine.SCRIPT.read_text()
    for key in wrk_engine.parse_wrk_output(WRK_OUTPUT):
        assert f'"{key}"' in script, key


def test_repeated_batches_are_read_back_each_with_its_repeat():
    entries = [
        {"method": "BATCH", "name": "warm-up: 20 requests", "avg_ms": 900.0, "failures": 0},
        {"method": "BATCH", "name": "10 requests", "avg_ms": 100.0, "failures": 0},
        {"method": "BATCH", "name": "10 requests #2", "avg_ms": 50.0, "failures": 0},
        {"method": "GET", "name": "/fib/sequence?n=[n]", "avg_ms": 5.0, "failures": 0},
    ]
    endpoint = Endpoint("uwsgi", C(2, 16), "http://127.0.0.1:1", [])
    batches = parse_batches(entries, endpoint, "sequence", {10: 3})
    assert [(b.repeat, b.seconds) for b in batches] == [(1, 0.1), (2, 0.05), (3, None)]
    assert batches[2].error == "not completed"


# --- the goals --------------------------------------------------------------


def test_goal_verdicts_follow_their_bounds():
    assert goals.within(1.6, 1.6, None) and not goals.within(1.59, 1.6, None)
    assert goals.within(1.2, 0.8, 1.2) and not goals.within(1.21, 0.8, 1.2)


def test_goals_are_evaluated_from_the_results():
    res = [
        run("uwsgi", C(1, 1), "cpu", 50, server_cpu_ms=20),
        run("uwsgi", C(2, 1), "cpu", 90, server_cpu_ms=20),
        run("uwsgi", C(1, 16), "cpu", 30, server_cpu_ms=30),
        run("uwsgi-direct", C(1, 1), "cpu", 52, server_cpu_ms=19),
        run("uwsgi", C(2, 16), "io", 300),
    ]
    verdicts = {v.goal: v for v in goals.evaluate(res)}
    assert verdicts["uwsgi: CPU-bound: 2x1 >= 1.6 x 1x1 (processes help CPU)"].holds is True
    threads = "uwsgi: CPU-bound: 1x16 within 0.8-1.2 x 1x1 (threads do not: the GIL)"
    assert verdicts[threads].holds is False
    direct = verdicts["1x1: CPU-bound: nginx+uWSGI >= 0.85 x uWSGI alone (uwsgi-direct)"]
    assert direct.holds is True and "server CPU per request 20.0 vs 19.0" in direct.figure
    # not measured: no uwsgi-direct at 2x1, no gunicorn at all, no apache
    assert verdicts["2x1: CPU-bound: nginx+uWSGI not below gunicorn"].holds is None
    io = verdicts["I/O-bound, 2x16, >= 32 users: nginx+uWSGI >= 0.9 x the ceiling"]
    assert io.holds is True and io.figure == "300.0 req/s / 320 = 0.94 x"
    apache = "I/O-bound, 2x16, >= 32 users: Apache+mod_wsgi >= 0.9 x the ceiling"
    assert verdicts[apache].holds is None
    assert all(v.source == goals.ISSUE_6 for v in verdicts.values())


def test_a_goal_notes_a_generator_bound_run():
    r = run("uwsgi", C(2, 16), "io", 250, generator_bound=True, other_cores=0.5)
    verdict = goals.ceiling_verdict(goals.GOALS[0], r)
    assert verdict.holds is False
    assert "generator-bound" in verdict.note and "0.50 cores" in verdict.note


# --- the replay -------------------------------------------------------------


def batch(stack, pxt, size, seconds, repeat=1, workload="sequence"):
    return BatchResult(stack, pxt.processes, pxt.threads, workload, size, repeat, seconds, 0)


def test_replay_ratio_is_median_against_the_fastest_stacks_median():
    batches = [
        # a cold first batch on the dev server must not decide the ratio
        batch("devserver", C(1, 1), 10, 1.5, 1),
        batch("devserver", C(1, 1), 10, 0.10, 2),
        batch("devserver", C(1, 1), 10, 0.12, 3),
        batch("uwsgi", C(2, 16), 10, 0.05, 1),
        batch("uwsgi", C(2, 16), 10, 0.04, 2),
        batch("uwsgi", C(2, 16), 10, 0.06, 3),
        batch("apache", C(2, 16), 10, 0.08),
    ]
    spreads = answer.batch_spreads(batches, "sequence", 10)
    assert spreads[("devserver", C(1, 1))] == results.Spread(0.10, 0.12, 1.5, 3)
    assert answer.replay_ratio(spreads) == pytest.approx(0.12 / 0.05)
    assert answer.replay_ratio({("uwsgi", C(2, 16)): spreads[("uwsgi", C(2, 16))]}) is None
    assert answer.claimed_ratio(1000) == pytest.approx(343.74 / 96.02)


# --- the recommendations ----------------------------------------------------


def test_recommend_takes_the_fastest_within_the_limits_and_names_lighter_ones():
    res = [
        run("uwsgi", C(4, 4), "io", 300, p95_ms=120),
        run("uwsgi", C(2, 16), "io", 310, p95_ms=110),
        run("uwsgi", C(8, 8), "io", 400, p95_ms=900),
        run("uwsgi", C(1, 1), "io", 9, p95_ms=3000),
    ]
    rec = answer.recommend(res, p95_ms=500)
    assert rec.best.concurrency == C(2, 16)
    assert [r.concurrency for r in rec.lighter] == []
    assert rec.fastest_overall.concurrency == C(8, 8)
    rec = answer.recommend(res[:2], p95_ms=500)
    assert rec.best.concurrency == C(2, 16) and rec.lighter == []
    res[0] = run("uwsgi", C(1, 16), "io", 300, p95_ms=120)
    assert [r.concurrency for r in answer.recommend(res, 500).lighter] == [C(1, 16)]
    none = answer.recommend(res, p95_ms=50)
    assert none.best is None and none.fastest_overall.concurrency == C(8, 8)


def test_recommend_leaves_out_failing_runs():
    failing = run("gunicorn", C(2, 1), "cpu", 100)
    failing.failures = 10
    ok = run("gunicorn", C(1, 1), "cpu", 50)
    assert answer.recommend([failing, ok]).best is ok


def test_the_answer_is_a_production_stack_per_workload():
    res = [
        run("devserver", C(1, 1), "cpu", 999),
        run("uwsgi-direct", C(2, 1), "cpu", 500),
        run("uwsgi", C(2, 1), "cpu", 90),
        run("gunicorn", C(2, 1), "cpu", 95),
        run("gunicorn", C(2, 1), "floor", 5000, engine="wrk"),
    ]
    found = answer.answers(res, ["cpu", "floor"])
    assert [a.workload for a in found] == ["cpu"]
    assert found[0].recommendation.best.stack == "gunicorn"
    assert [r.stack for r in found[0].others] == ["uwsgi"]
    assert [r.concurrency for r in found[0].ladder] == [C(2, 1)]
    assert "GIL" in found[0].reason


def test_the_answer_picks_the_lightest_run_within_the_noise():
    res = [
        run("gunicorn", C(2, 16), "cpu", 120.7),
        run("apache", C(2, 1), "cpu", 120.1),
        run("apache", C(1, 1), "cpu", 61.0),
        run("uwsgi", C(4, 4), "cpu", 114.5),
    ]
    (found,) = answer.answers(res, ["cpu"])
    assert found.recommendation.best.stack == "gunicorn"
    assert (found.pick.stack, found.pick.concurrency) == ("apache", C(2, 1))
    # the fastest first, then the other stacks' best; the evidence: apache's matrix
    assert [(r.stack, r.concurrency) for r in found.others] == [
        ("gunicorn", C(2, 16)),
        ("uwsgi", C(4, 4)),
    ]
    assert [r.concurrency for r in found.ladder] == [C(1, 1), C(2, 1)]


def test_overhead_is_compared_at_one_thread_per_process():
    res = [
        run("uwsgi", C(2, 16), "sequence", 500, server_cpu_ms=4.0, app_cpu_ms=2.5),
        run("uwsgi", C(2, 1), "sequence", 500, server_cpu_ms=3.0, app_cpu_ms=2.0),
        run("devserver", C(1, 1), "sequence", 300, server_cpu_ms=5.0, app_cpu_ms=2.0),
    ]
    assert answer.overhead_concurrency(res) == C(2, 1)
    rows = answer.overheads(res, ["sequence"])
    assert [(o.stack, o.concurrency, o.overhead_ms) for o in rows] == [
        ("uwsgi", C(2, 1), 1.0),
        ("devserver", C(1, 1), 3.0),
    ]
    assert rows[1].share == pytest.approx(0.6)


# --- the report -------------------------------------------------------------


def test_the_report_opens_with_the_answer_and_ends_with_the_goals(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "versions", lambda: "nginx 1.22")
    res = []
    for stack, speed in (("uwsgi", 1.0), ("gunicorn", 1.1), ("devserver", 0.8)):
        for pxt in (C(1, 1),) if stack == "devserver" else (C(1, 1), C(2, 1)):
            scale = speed * pxt.processes
            kw = {
                "p95_ms": 30,
                "server_cpu_ms": 3.0,
                "app_cpu_ms": 2.0,
                "server_cores": 1.0,
                "rss_mb": 90.0 * scale,
                "pss_mb": 60.0 * scale,
                "uss_mb": 50.0 * scale,
                "server_processes": pxt.processes + 1,
            }
            res += [
                run(stack, pxt, "sequence", 300 * scale, **kw),
                run(stack, pxt, "cpu", 50 * scale, **kw),
                run(stack, pxt, "io", 150 * pxt.processes, **kw),
                run(
                    stack,
                    pxt,
                    "floor",
                    3000 * scale,
                    engine="wrk",
                    generator_bound=True,
                    p95_ms=5,
                    server_cpu_ms=0.4,
                    app_cpu_ms=0.05,
                ),
            ]
    batches = [batch("devserver", C(1, 1), 10, 0.1 + i / 100, i + 1) for i in range(3)]
    batches += [batch("uwsgi", C(2, 1), 10, 0.05 + i / 100, i + 1) for i in range(3)]
    outcome = report.Outcome(res, batches)
    verdicts = report.write_report(tmp_path, outcome, mode=MODES["quick"], users=32, seconds=2)
    md = (tmp_path / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings[:4] == [
        "The answer",
        "Stack overhead per request",
        "The overhead floor: `/up` loaded by wrk",
        "Memory per server process tree",
    ]
    assert "| gunicorn | 2 x 1 | 3 | 198 | 132 | 110 | 44.0 | sequence |" in md
    assert headings[-2:] == ["The project's performance goals", "Files"]
    assert "| CPU-bound: /fib/25?method=naive (~20 ms of CPU) | **gunicorn 2 x 1** | 110.0 |" in md
    assert "| gunicorn | 2 x 1 | floor | wrk | 0.400 | 0.050 | 0.350 | 88% |" in md
    assert "**generator-bound**" in md
    assert "- **cpu**: gunicorn by processes x threads: 1x1 55.0, 2x1 110.0 req/s." in md
    assert "0.110 s (0.100-0.120, 3 runs)" in md
    assert verdicts and "issue 6" in md
    assert "{{" not in md and "{%" not in md
    html = (tmp_path / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    # sequence, cpu, io, floor, the overhead and the replay
    assert len(images) == 6
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert not re.search(r'(src|href)="(?!data:)', html)
    assert (tmp_path / "results.csv").read_text().splitlines()[0].split(",") == (
        results.RESULT_COLUMNS
    )


# --- the package's shape ----------------------------------------------------


@pytest.mark.parametrize("module", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_each_module_stays_small(module):
    assert len(module.read_text().splitlines()) < 400


def test_sizing_uses_only_public_names():
    tree = ast.parse((PACKAGE.parent / "sizing.py").read_text())
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and isinstance(node.value, ast.Name)
        and node.value.id == "bench"
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wsgistack.bench")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []


def test_a_relative_report_folder_is_made_absolute(tmp_path, monkeypatch):
    # the load generators run in folders of their own: a relative path would miss
    from wsgistack.bench.command import new_report_dir

    monkeypatch.chdir(tmp_path)
    out = new_report_dir(Path("reports/x"))
    assert out.is_absolute() and out.is_dir() and out == tmp_path / "reports" / "x"


# --- memory (issue 12) ------------------------------------------------------


def test_a_memory_budget_leaves_out_larger_trees():
    small = run("uwsgi", C(2, 4), "io", 300, pss_mb=120)
    large = run("uwsgi", C(4, 4), "io", 310, pss_mb=600)
    unmeasured = run("uwsgi", C(8, 4), "io", 400)
    assert answer.recommend([small, large, unmeasured]).best is unmeasured
    assert answer.recommend([small, large, unmeasured], max_memory_mb=512).best is small
    assert answer.recommend([large], max_memory_mb=512).best is None


@pytest.mark.parametrize(
    ("text", "mb"), [("512M", 512), ("1.5G", 1536), ("2048K", 2), ("300", 300), ("1GiB", 1024)]
)
def test_memory_sizes(text, mb):
    from wsgistack.sizing import memory_size

    assert memory_size(text) == mb


@pytest.mark.parametrize("text", ["", "0M", "lots", "5T", "-1G"])
def test_bad_memory_sizes_are_refused(text):
    import argparse

    from wsgistack.sizing import memory_size

    with pytest.raises(argparse.ArgumentTypeError):
        memory_size(text)


def test_the_sampler_reads_a_process_trees_cpu_and_memory():
    import os

    from wsgistack.bench.sampling import ProcessSampler, peak

    with ProcessSampler([os.getpid()]) as sampler:
        sum(range(2_000_000))
    memory = sampler.peak_memory()
    assert memory.processes >= 1 and 0 < memory.uss_mb <= memory.pss_mb <= memory.rss_mb
    assert sampler.samples[-1][cpu.SERVERS] > 0
    assert peak([]) is None
