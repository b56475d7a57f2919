"""wsgistack/bench/crossover.py and the `wsgistack crossover` command without a
stack: the CPU split of each mode, the percentiles, where the crossover lies,
the report, and the command's order (each mode's stack up in turn, every size
measured on it, the stacks torn down even when a point fails). Its load runs
against the real job queue in tests/integration/test_jobs.py."""

from __future__ import annotations

import argparse
import csv

import pytest

from wsgistack import cli
from wsgistack.bench import crossover, crossover_command
from wsgistack.bench.crossover import Point, find_crossover, mode_env, percentile, write_report
from wsgistack.runner import StackError


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


class FakeStacks:
    """crossover_command.Stacks without an engine: the modes brought up, the teardowns."""

    made: list[FakeStacks] = []

    def __init__(self, project, port, image_tag, cpus, share):
        self.args = (project, port, image_tag, cpus, share)
        self.ups: list[str] = []
        self.downs = 0
        FakeStacks.made.append(self)

    def up(self, mode: str) -> str:
        self.ups.append(mode)
        return f"http://127.0.0.1:{self.args[1]}"

    def down(self) -> None:
        self.downs += 1

    def valkey_cpu(self) -> float:
        return 0.0


@pytest.fixture
def fake_stacks(monkeypatch):
    FakeStacks.made = []
    monkeypatch.setattr(crossover_command, "Stacks", FakeStacks)
    return FakeStacks.made


def test_the_command_measures_every_size_in_each_mode_and_writes_the_report(
    monkeypatch, tmp_path, fake_stacks, capsys
):
    calls = []

    def measure(base_url, mode, size, seconds, short_users, long_users, valkey_cpu):
        calls.append((base_url, mode, size, seconds, short_users, long_users, valkey_cpu))
        # the queue protects the short requests from n=26 on
        slow = mode == "in-request" and size >= 26
        return point(mode, size, 40 if slow else 10 if mode == "jobs" else 5, cpu=size)

    monkeypatch.setattr(crossover_command, "measure", measure)
    argv = ["crossover", "--sizes", "26,20", "--cpus", "2", "--duration", "3"]
    assert cli.main([*argv, "--port", "9000", "--tag", "mine", "--out", str(tmp_path)]) == 0
    (stacks,) = fake_stacks
    assert stacks.args == ("wsgistack-crossover", 9000, "mine", 2.0, 0.5)
    # one stack per mode, in-request first, torn down once at the end
    assert stacks.ups == ["in-request", "jobs"] and stacks.downs == 1
    measured = [(mode, size) for _, mode, size, *_ in calls]
    assert measured == [("in-request", 20), ("in-request", 26), ("jobs", 20), ("jobs", 26)]
    assert {c[0] for c in calls} == {"http://127.0.0.1:9000"}
    assert {c[3:6] for c in calls} == {(3.0, 4, 8)}
    # Valkey's CPU is read in jobs mode only
    assert [c[6] is not None for c in calls] == [False, False, True, True]
    page = (tmp_path / "crossover.md").read_text()
    assert "From naive n=26" in page and "CPUs: 2" in page and "seconds per point: 3" in page
    assert "From naive n=26" in capsys.readouterr().out


def test_the_command_tears_the_stack_down_when_a_point_fails(monkeypatch, tmp_path, fake_stacks):
    def measure(*args):
        raise StackError("nginx answered 502")

    monkeypatch.setattr(crossover_command, "measure", measure)
    assert cli.main(["crossover", "--cpus", "1", "--out", str(tmp_path)]) == 1
    (stacks,) = fake_stacks
    assert stacks.ups == ["in-request"] and stacks.downs == 1
    assert not (tmp_path / "crossover.md").exists()


def test_the_workers_share_must_leave_the_app_some_cpu(tmp_path, fake_stacks, capsys):
    assert cli.main(["crossover", "--share", "1", "--out", str(tmp_path)]) == 1
    assert "--share" in capsys.readouterr().err and not fake_stacks


def test_each_mode_is_its_own_compose_stack_with_its_cpu_budget(monkeypatch):
    monkeypatch.delenv("VALKEY_PASSWORD", raising=False)
    stacks = crossover_command.Stacks("p", 9000, "mine", 2, 0.25)
    other = crossover_command.Stacks("p", 9000, "mine", 2, 0.25)
    env = stacks.env
    assert (env["IMAGE_TAG"], env["UWSGI_HTTP_PORT"], env["UWSGI_HTTPS_PORT"]) == (
        "mine",
        "9000",
        "9400",
    )
    # a password of the run's own, and a queue that never refuses the long work
    assert (
        len(env["VALKEY_PASSWORD"]) == 32 and env["VALKEY_PASSWORD"] != other.env["VALKEY_PASSWORD"]
    )
    assert env["JOB_QUEUE_LIMIT"] == "100000"
    commands = []
    monkeypatch.setattr(stacks, "compose", lambda *args, timeout=0: commands.append(args))
    assert stacks.up("jobs") == "http://127.0.0.1:9000"
    assert (env["APP_CPUS"], env["WORKER_CPUS"]) == ("1.5", "0.5")
    assert commands == [("--profile", "uwsgi", "--profile", "jobs", "up", "--detach", "--wait")]
    stacks.down()
    assert commands[-1][:2] == ("--profile", "*") and "--volumes" in commands[-1]
