"""wsgistack/bench/answer.py: the replay's ratio, the recommendation per workload
(within the limits and a memory budget, ties judged by the repetitions' spread)
and the overhead per request."""

from __future__ import annotations

import pytest

from tests.wsgistack.bench.made_up import batch, run
from wsgistack.bench import answer, repeats, results
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


def cell(stack, pxt, workload, rates, **kw):
    """A cell measured once per rate, combined as the report does."""
    (combined,) = repeats.cells(
        [run(stack, pxt, workload, rps, repeat=n, **kw) for n, rps in enumerate(rates, 1)]
    )
    return combined


def test_recommend_takes_the_fastest_median_within_the_limits_and_names_ties():
    res = [
        cell("uwsgi", C(4, 4), "io", [280, 300, 305], p95_ms=120),
        cell("uwsgi", C(2, 16), "io", [306, 310, 330], p95_ms=110),
        cell("uwsgi", C(8, 8), "io", [390, 400, 410], p95_ms=900),
        cell("uwsgi", C(1, 1), "io", [9, 9, 9], p95_ms=3000),
    ]
    rec = answer.recommend(res, p95_ms=500)
    # 4x4 was slower in every round: no tie
    assert rec.best.concurrency == C(2, 16) and rec.tied == [] and rec.pick is rec.best
    assert rec.fastest_overall.concurrency == C(8, 8)
    res[0] = cell("uwsgi", C(1, 16), "io", [290, 300, 307], p95_ms=120)
    rec = answer.recommend(res, 500)
    # its fastest round beat 2x16's slowest: a tie, and the lighter is picked
    assert [r.concurrency for r in rec.tied] == [C(1, 16)]
    assert rec.pick.concurrency == C(1, 16)
    none = answer.recommend(res, p95_ms=50)
    assert none.best is None and none.pick is None
    assert none.fastest_overall.concurrency == C(8, 8)


def test_a_tie_at_one_shape_goes_to_the_stack_with_less_memory():
    res = [
        cell("uwsgi", C(2, 1), "cpu", [100, 104, 102], pss_mb=120),
        cell("gunicorn", C(2, 1), "cpu", [101, 99, 103], pss_mb=90),
        cell("apache", C(2, 1), "cpu", [80, 85, 82], pss_mb=60),
    ]
    rec = answer.recommend(res)
    assert rec.best.stack == "uwsgi"
    assert [r.stack for r in rec.tied] == ["gunicorn"]
    assert rec.pick.stack == "gunicorn"


def test_single_runs_tie_only_when_equal():
    a = run("uwsgi", C(2, 1), "cpu", 100)
    b = run("uwsgi", C(1, 1), "cpu", 99)
    assert answer.recommend([a, b]).pick is a
    assert answer.recommend([a, run("uwsgi", C(1, 1), "cpu", 100)]).pick.concurrency == C(1, 1)


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
        run("granian-bare", C(2, 1), "cpu", 600),
        run("uwsgi", C(2, 1), "cpu", 90),
        run("gunicorn", C(2, 1), "cpu", 95),
        # the floor and the compressed request have no answer
        run("gunicorn", C(2, 1), "floor", 5000, engine="wrk"),
        run("uwsgi", C(2, 1), "sequence-gzip", 5000, engine="wrk"),
    ]
    found = answer.answers(res, ["cpu", "floor", "sequence-gzip"])
    assert [a.workload for a in found] == ["cpu"]
    assert found[0].recommendation.best.stack == "gunicorn"
    assert [r.stack for r in found[0].others] == ["uwsgi"]
    assert [r.concurrency for r in found[0].ladder] == [C(2, 1)]
    assert "GIL" in found[0].reason


def test_the_answer_picks_the_lightest_cell_tied_with_the_fastest():
    res = [
        cell("gunicorn", C(2, 16), "cpu", [118, 120.7, 125]),
        cell("apache", C(2, 1), "cpu", [112, 120.1, 121]),
        cell("apache", C(1, 1), "cpu", [60, 61.0, 62]),
        cell("uwsgi", C(4, 4), "cpu", [110, 114.5, 117]),
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
    # the ranges overlap (295 and 300 in every round): a tie, were it not saturated
    best.rps_low, best.rps_high, lighter.rps_low, lighter.rps_high = 290, 310, 285, 305
    assert answer.recommend([best, lighter]).tied == []
    assert answer.recommend([best, lighter]).pick is best
    assert lighter.saturated and not best.saturated
    # when the best is saturated too, the tie counts, and the lighter is picked
    best.queue_median = 2.0
    assert answer.recommend([best, lighter]).tied == [lighter]
    assert answer.recommend([best, lighter]).pick is lighter
