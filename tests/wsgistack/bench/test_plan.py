"""wsgistack/bench/plan.py: the plan of stack runs per mode, the replay's place in it,
processes x threads parsed, and the time estimate."""

from __future__ import annotations

import pytest

from wsgistack.bench import plan
from wsgistack.bench.plan import MODES, Concurrency, StackRun, build_plan, estimate_seconds
from wsgistack.bench.repeats import interleave

C = Concurrency


def test_quick_plan_replays_on_the_devserver_and_the_first_stack_only():
    runs = build_plan(plan.DEFAULT_STACKS, MODES["quick"])
    assert [(r.stack, r.concurrency.label) for r in runs] == [
        ("uwsgi", "2x4"),
        ("apache", "2x4"),
        ("gunicorn", "2x4"),
        ("devserver", "1x1"),
        ("uwsgi-direct", "2x4"),
        ("granian-bare", "2x4"),
    ]
    assert [r.stack for r in runs if r.replays] == ["uwsgi", "devserver"]
    # the proxies compress: the sequence request once more, asking for gzip
    assert runs[0].workloads == ["cpu", "sequence", "io", "floor", "sequence-gzip"]
    assert runs[2].workloads == ["cpu", "sequence", "io", "floor"]
    # uWSGI alone is the yardstick for nginx: the CPU-bound request and the floor only
    assert runs[-2].workloads == ["cpu", "floor"]
    # granian alone, for what the stacks cost: the floor and the sequence request
    assert runs[-1].workloads == ["sequence", "floor"]


def test_granian_alone_runs_where_the_overhead_is_compared():
    runs = build_plan(["uwsgi", "granian-bare"], MODES["default"])
    assert [r.concurrency for r in runs if r.stack == "granian-bare"] == [C(2, 1)]
    runs = build_plan(["granian-bare"], MODES["default"], [C(4, 4), C(1, 1), C(8, 1)])
    assert [r.concurrency for r in runs] == [C(1, 1)]


def test_every_workload_of_the_matrix_is_loaded_by_wrk_and_checked():
    for name in (*plan.BENCH_WORKLOADS, *plan.COMPRESSED_WORKLOADS):
        workload = plan.WORKLOADS[name]
        assert workload.engine == plan.WRK, name
        assert workload.accept_encoding in (plan.IDENTITY, plan.GZIP)
        # an answer is checked for its value, but a compressed one
        assert bool(workload.expect) == (workload.accept_encoding == plan.IDENTITY), name
    assert plan.WORKLOADS["sequence"].expect.endswith(f'"{plan.fibonacci(999)}"]}}')


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
    run_ = StackRun("devserver", C(1, 1), ["cpu", "mix"], {"io": {10: 5, 100: 1}})
    steps = estimate_seconds(run_, 2.5)
    # wrk runs whole seconds and starts at once; Locust imports, then ramps up
    assert steps["cpu"] == 3 + plan.RUN_OVERHEAD[plan.WRK]
    assert steps["mix"] == 2.5 + plan.WARMUP_SECONDS + 2.5
    # 150 requests of 0.1 s one at a time, 6 batches a second apart, the warm-up
    assert steps["io batches"] == pytest.approx(4 + 15 + 6)
    assert plan.batch_sizes({100: 1, 10: 3}) == [10, 10, 10, 100]


def test_default_mode_stays_within_its_budget():
    mode = MODES["default"]
    runs = interleave(build_plan(plan.DEFAULT_STACKS, mode), mode.repeats)
    assert mode.repeats >= 3
    minutes = plan.estimate_plan(runs, mode.seconds) / 60
    assert 10 < minutes < 20


def test_time_estimate_of_your_own_locustfile():
    """wsgistack sizing --locustfile: a workload the benchmark does not know,
    run by Locust (it used to stop the sizing with a KeyError)."""
    steps = estimate_seconds(StackRun("gunicorn", Concurrency(1, 4), ["hello_locust"]), 2)
    assert steps["hello_locust"] == 2 + plan.RUN_OVERHEAD[plan.LOCUST]
