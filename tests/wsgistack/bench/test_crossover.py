"""wsgistack/bench/crossover.py without a stack: the CPU split of each mode, the
percentiles, where the crossover lies and the report. Its load runs against
the real job queue in tests/integration/test_jobs.py."""

from __future__ import annotations

import argparse
import csv

import pytest

from wsgistack.bench import crossover, crossover_command
from wsgistack.bench.crossover import Point, find_crossover, mode_env, percentile, write_report


def point(mode: str, size: int, short_p95: float, long_per_s: float = 1.0, cpu: float = 0.0):
    return Point(
        mode=mode,
        size=size,
        seconds=10,
        short_requests=100,
        short_per_s=10.0,
        short_p50_ms=short_p95 / 2,
        short_p95_ms=short_p95,
        long_done=10,
        long_per_s=long_per_s,
        long_p95_s=0.5,
        long_cpu_ms=cpu,
        errors=0,
    )


def test_both_modes_get_the_same_cpu_budget():
    assert mode_env("in-request", 2, 0.5) == {"APP_CPUS": "2"}
    assert mode_env("jobs", 2, 0.5) == {"APP_CPUS": "1", "WORKER_CPUS": "1"}
    split = mode_env("jobs", 3, 0.25)
    assert float(split["APP_CPUS"]) + float(split["WORKER_CPUS"]) == 3
    assert crossover.profiles("in-request") == ["--profile", "uwsgi"]
    assert crossover.profiles("jobs")[-2:] == ["--profile", "jobs"]


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.95) == 95 and percentile(values, 0.5) == 50
    assert percentile([3.0], 0.95) == 3 and percentile([], 0.95) == 0


def test_the_crossover_is_the_first_size_where_the_queue_protects_short_requests():
    points = [
        point("in-request", 20, 4, 40, cpu=2),
        point("jobs", 20, 9, 20),
        point("in-request", 26, 30, 6, cpu=33),
        point("jobs", 26, 8, 3),
        point("in-request", 29, 90, 1.4, cpu=140),
        point("jobs", 29, 7, 0.7),
    ]
    answer = find_crossover(points)
    assert (answer.size, answer.cpu_ms) == (26, 33)
    assert "n=26" in answer.sentence and "8 ms" in answer.sentence and "30 ms" in answer.sentence
    assert "3 instead of 6 long items/s" in answer.sentence


def test_no_crossover_is_said_so():
    answer = find_crossover([point("in-request", 20, 4, cpu=2), point("jobs", 20, 9)])
    assert answer.size is None and "no crossover" in answer.sentence
    assert find_crossover([point("jobs", 20, 9)]).size is None


def test_the_report_has_every_point_and_the_answer(tmp_path):
    points = [point("jobs", 23, 5), point("in-request", 23, 12, cpu=8)]
    answer = write_report(tmp_path, points, {"CPUs": "2"})
    with open(tmp_path / "crossover.csv", newline="") as source:
        rows = list(csv.DictReader(source))
    assert [(r["mode"], r["size"]) for r in rows] == [("jobs", "23"), ("in-request", "23")]
    page = (tmp_path / "crossover.md").read_text()
    assert answer.sentence in page and "CPUs: 2" in page
    # the table lists in-request before jobs for each size
    assert page.index("| 23 | in-request |") < page.index("| 23 | jobs |")


@pytest.mark.parametrize("text", ["0", "31", "20,x", ""])
def test_sizes_stay_within_what_a_request_may_ask(text):
    with pytest.raises(argparse.ArgumentTypeError):
        crossover_command.sizes_list(text)
    assert crossover_command.sizes_list("29,20,20") == [20, 29]
