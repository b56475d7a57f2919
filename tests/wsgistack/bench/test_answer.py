"""wsgistack/bench/answer.py: the replay's ratio, the recommendation per workload
(within the limits, the noise and a memory budget) and the overhead per request."""

from __future__ import annotations

import pytest

from tests.wsgistack.bench.made_up import batch, run
from wsgistack.bench import answer, results
from wsgistack.bench.plan import Concurrency as C


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


def test_a_memory_budget_leaves_out_larger_trees():
    small = run("uwsgi", C(2, 4), "io", 300, pss_mb=120)
    large = run("uwsgi", C(4, 4), "io", 310, pss_mb=600)
    unmeasured = run("uwsgi", C(8, 4), "io", 400)
    assert answer.recommend([small, large, unmeasured]).best is unmeasured
    assert answer.recommend([small, large, unmeasured], max_memory_mb=512).best is small
    assert answer.recommend([large], max_memory_mb=512).best is None


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


def test_a_lighter_run_whose_queue_held_requests_is_no_alternative():
    """The servers' own metrics: as fast within the noise, but saturated."""
    best = run("uwsgi", C(4, 1), "io", 300, p95_ms=120, queue_median=0.0, queue_peak=1)
    lighter = run("uwsgi", C(2, 1), "io", 295, p95_ms=130, queue_median=6.0, queue_peak=9)
    assert answer.recommend([best, lighter]).lighter == []
    assert lighter.saturated and not best.saturated
    # when the best is saturated too, being lighter still counts
    best.queue_median = 2.0
    assert answer.recommend([best, lighter]).lighter == [lighter]
