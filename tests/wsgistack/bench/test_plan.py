"""wsgistack/bench/plan.py: the plan of stack runs per mode, the replay's place in it,
processes x threads parsed, and the time estimate."""

from __future__ import annotations

import pytest

from wsgistack.bench import plan
from wsgistack.bench.plan import MODES, Concurrency, StackRun, build_plan, estimate_seconds

C = Concurrency


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
