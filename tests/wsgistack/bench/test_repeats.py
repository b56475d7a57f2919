"""wsgistack/bench/repeats.py: the interleaved rounds of a plan, and each cell's
repetitions combined into medians and a spread."""

from __future__ import annotations

import dataclasses

from tests.wsgistack.bench.made_up import run
from wsgistack.bench import repeats
from wsgistack.bench.plan import Concurrency as C
from wsgistack.bench.plan import StackRun
from wsgistack.bench.results import Result


def test_rounds_interleave_every_run_and_replay_in_the_first_only():
    plan = [
        StackRun("uwsgi", C(2, 1), ["cpu"], {"sequence": {10: 3}}),
        StackRun("gunicorn", C(2, 1), ["cpu"]),
    ]
    rounds = repeats.interleave(plan, 3)
    assert [(r.stack, r.repeat) for r in rounds] == [
        ("uwsgi", 1),
        ("gunicorn", 1),
        ("uwsgi", 2),
        ("gunicorn", 2),
        ("uwsgi", 3),
        ("gunicorn", 3),
    ]
    assert [bool(r.replays) for r in rounds] == [True, False] * 1 + [False] * 4
    # the plan itself is left as it was
    assert plan[0].repeat == 1 and plan[0].replays


def test_a_cell_is_the_median_of_its_repetitions_with_their_range():
    runs = [
        run("uwsgi", C(2, 1), "cpu", rps, repeat=n, p95_ms=p95, server_cpu_ms=cpu)
        for n, (rps, p95, cpu) in enumerate(((100, 30, 2.0), (90, 50, 2.2), (120, 20, 1.9)), 1)
    ]
    runs[1].failures = 4
    other = run("gunicorn", C(2, 1), "cpu", 95)
    combined, single = repeats.cells([runs[0], other, runs[1], runs[2]])
    assert (combined.stack, combined.repeat, combined.repeats, combined.errors) == (
        "uwsgi",
        0,
        3,
        0,
    )
    assert (combined.rps, combined.rps_low, combined.rps_high) == (100, 90, 120)
    assert (combined.p95_ms, combined.server_cpu_ms) == (30, 2.0)
    # failures and requests are summed: the cell's failure ratio is all its runs'
    assert combined.requests == 4 * (100 + 90 + 120) and combined.failures == 4
    assert repeats.rate(combined) == "100.0 (90-120)"
    assert (single.repeats, repeats.rate(single)) == (1, "95.0")


def test_a_failed_repetition_is_left_out_and_counted():
    good = run("uwsgi", C(2, 1), "cpu", 100, repeat=1)
    bad = Result("uwsgi", 2, 1, "cpu", repeat=2, error="refused")
    (cell,) = repeats.cells([good, bad])
    assert (cell.rps, cell.repeats, cell.errors, cell.error) == (100, 1, 1, "")
    (lost,) = repeats.cells([bad, dataclasses.replace(bad, repeat=3)])
    assert (lost.measured, lost.error, lost.errors) == (False, "refused", 2)


def test_ranges_overlap_unless_one_was_faster_in_every_round():
    a = run("uwsgi", C(2, 1), "cpu", 100, rps_low=95, rps_high=110)
    b = run("uwsgi", C(1, 1), "cpu", 90, rps_low=80, rps_high=96)
    c = run("uwsgi", C(4, 4), "cpu", 60, rps_low=50, rps_high=70)
    assert repeats.overlap(a, b) and repeats.overlap(b, a)
    assert not repeats.overlap(a, c)
    # a single run's range is its own rate
    assert repeats.rps_range(run("uwsgi", C(1, 1), "cpu", 42)) == (42, 42)


def test_every_measurement_is_combined_one_way():
    measurements = {
        f.name
        for f in dataclasses.fields(Result)
        if f.type in ("float | None", "int | None")
        and f.name not in ("exit_code", "repeats", "errors", "rps_low", "rps_high")
    }
    assert measurements == set(repeats.MEDIAN_FIELDS) | set(repeats.SUMMED_FIELDS)
