"""The benchmark's interpreter axis (wsgistack/bench/interpreters.py): its plan,
the build flags it reads, the comparison tables and the one-sentence verdict,
and the report section, from made-up results. The containers run in
tests/integration/test_bench_interpreter_images.py."""

from __future__ import annotations

import argparse
import re

import pytest

from wsgistack.bench import interpreters as axis
from wsgistack.bench import report
from wsgistack.bench.plan import MODES, WRK, Concurrency
from wsgistack.bench.results import Result

C = Concurrency
ONE, TWO_THREADS, TWO_PROCESSES = axis.SCALING_SHAPES


def cell(server, interpreter, pxt, workload, rps, cpu_ms, **kw) -> Result:
    return Result(
        axis.run_name(server, interpreter),
        pxt.processes,
        pxt.threads,
        workload,
        engine=WRK,
        interpreter=interpreter,
        users=32,
        seconds=4.0,
        requests=int(rps * 4),
        failures=0,
        rps=rps,
        server_cpu_ms=cpu_ms,
        server_cores=rps * cpu_ms / 1000,
        **kw,
    )


def cpu_bound(ft_thread_gain: float, cost: float = 2.0) -> list[Result]:
    """gunicorn CPU-bound at 1x1, 1x2, 2x1: the GIL build scales with processes only,
    the free-threaded one with both, each request costing ``cost`` x the CPU."""
    out = []
    for name, per_request in (("debian", 10.0), ("freethreaded", 10.0 * cost)):
        base = 1000 / per_request
        gains = {
            ONE: 1.0,
            TWO_PROCESSES: 2.0,
            TWO_THREADS: ft_thread_gain if name == "freethreaded" else 1.0,
        }
        out += [
            cell("gunicorn", name, pxt, "cpu", base * gain, per_request)
            for pxt, gain in gains.items()
        ]
    return out


def test_the_plan_puts_the_interpreters_side_by_side_shape_by_shape():
    plan = axis.build_plan(["gunicorn", "apache"], ["debian", "gil", "freethreaded"])
    runs = [(r.stack, r.concurrency.label, tuple(r.workloads)) for r in plan]
    scaling = ("cpu", "sequence", "io")
    assert runs[:5] == [
        ("gunicorn-debian", "1x1", scaling),
        ("gunicorn-gil", "1x1", scaling),
        ("gunicorn-freethreaded", "1x1", scaling),
        # no Apache on the control build: no image of it
        ("apache-debian", "1x1", scaling),
        ("apache-freethreaded", "1x1", scaling),
    ]
    memory = [(stack, label) for stack, label, workloads in runs if workloads == ("io",)]
    assert {label for _, label in memory} == {"1x16", "2x8", "16x1"} and len(memory) == 15
    assert len(plan) == 5 * 3 + 15
    assert all(r.interpreter and r.stack.endswith(r.interpreter) for r in plan)
    assert axis.server_of(plan[4].stack, plan[4].interpreter) == "apache"
    assert axis.image_of(plan[4]).name == "wsgistack-apache-freethreaded"


def test_a_memory_shape_already_in_the_scaling_shapes_is_not_run_twice():
    plan = axis.build_plan(["granian"], ["freethreaded"], (C(1, 16),), axis.MEMORY_SHAPES)
    assert [(r.concurrency.label, r.workloads) for r in plan] == [
        ("1x16", ["cpu", "sequence", "io"]),
        ("2x8", ["io"]),
        ("16x1", ["io"]),
    ]


def test_only_servers_with_an_image_on_two_interpreters_compare():
    assert axis.servers_of(["gunicorn", "apache", "uwsgi"], ["gil", "freethreaded"]) == ["gunicorn"]
    assert axis.servers_of(["apache"], ["debian", "freethreaded"]) == ["apache"]


def test_interpreter_names_are_checked():
    assert axis.interpreter_list("freethreaded, debian,debian") == ["freethreaded", "debian"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown interpreter nogil"):
        axis.interpreter_list("debian,nogil")


def test_every_axis_workload_is_loaded_by_wrk():
    assert {w.engine for w in axis.AXIS_WORKLOADS.values()} == {WRK}
    assert axis.MEMORY_WORKLOAD in axis.AXIS_WORKLOADS


@pytest.mark.parametrize(
    ("config_args", "opt", "flags"),
    [
        (
            "'--prefix=/opt/python-ft' '--disable-gil' '--enable-shared' 'LDFLAGS=-Wl,-rpath'",
            "-DNDEBUG -g -O3 -Wall",
            "--disable-gil --enable-shared, -O3",
        ),
        (
            "'--enable-shared' '--prefix=/usr' '--with-computed-gotos'",
            "-DNDEBUG -g -O2 -Wall",
            "--enable-shared, -O2",
        ),
        (
            "'--enable-optimizations' '--with-lto=full'",
            "",
            "--enable-optimizations --with-lto=full",
        ),
        ("'--prefix=/usr'", "-O2", "no --disable-gil/--enable-optimizations/--with-lto, -O2"),
    ],
)
def test_the_build_flags_that_matter_to_speed(config_args, opt, flags):
    assert axis.speed_flags(config_args, opt) == flags


def test_scaling_and_cost_are_ratios_of_one_run():
    res = cpu_bound(ft_thread_gain=1.9, cost=2.2)
    assert axis.scaling(res, "gunicorn", "freethreaded", "cpu", TWO_THREADS) == pytest.approx(1.9)
    assert axis.scaling(res, "gunicorn", "debian", "cpu", TWO_THREADS) == pytest.approx(1.0)
    assert axis.scaling(res, "gunicorn", "debian", "cpu", TWO_PROCESSES) == pytest.approx(2.0)
    assert axis.cpu_cost(res, "freethreaded", "debian") == pytest.approx(2.2)
    # a missing cell is no ratio, not a zero
    assert axis.scaling(res, "granian", "debian", "cpu", TWO_THREADS) is None


def test_the_verdict_keeps_processes_when_threads_cost_more_than_they_bring():
    text = axis.verdict(cpu_bound(ft_thread_gain=1.9, cost=2.2))
    assert "x1.90 free-threaded (x1.00 with the GIL)" in text
    assert "x2.20 the CPU of debian's" in text
    assert "1 x 2 free-threaded did 86.4 req/s against 200.0 for 2 x 1 on debian" in text
    assert text.endswith("keep processes for CPU-bound work and threads for I/O.")


def test_the_verdict_separates_free_threadings_cost_from_the_builds():
    """With the control build measured, the sentence says what free-threading alone
    costs (free-threaded over gil) beside the cost against Debian's build."""
    res = cpu_bound(ft_thread_gain=1.9, cost=2.2)
    # the control: the GIL, the free-threaded build's flags, 10% slower than Debian's
    res += [
        cell("gunicorn", "gil", r.concurrency, "cpu", r.rps / 1.1, 11.0)
        for r in res
        if r.interpreter == "debian"
    ]
    text = axis.verdict(res)
    assert "x2.20 the CPU of debian's (x2.00 that of gil, the same build with the GIL" in text
    assert "x2.00 that of gil" not in axis.verdict(cpu_bound(1.9, 2.2))


def test_the_verdict_says_when_threads_match_processes():
    text = axis.verdict(cpu_bound(ft_thread_gain=2.0, cost=1.0))
    assert text.endswith("threads can replace processes for CPU-bound work on this build.")


def test_no_verdict_without_a_gil_build_or_the_shapes():
    only_ft = [r for r in cpu_bound(1.9) if r.interpreter == "freethreaded"]
    assert axis.verdict(only_ft).startswith("Not enough interpreters")
    no_2x1 = [r for r in cpu_bound(1.9) if r.concurrency != TWO_PROCESSES]
    assert "missing" in axis.verdict(no_2x1)


def test_the_report_opens_with_the_comparison(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "versions", lambda: "wrk 4.1")
    res = cpu_bound(ft_thread_gain=1.9, cost=2.2)
    for r in res:
        r.python = "CPython 3.13.5" + (" no-GIL" if r.interpreter == "freethreaded" else "")
        r.python_build = "--disable-gil --enable-shared, -O3" if "free" in r.interpreter else ""
    for name, pss in (("debian", 40.0), ("freethreaded", 55.0)):
        for pxt, processes in ((C(1, 16), 1), (C(2, 8), 2), (C(16, 1), 16)):
            res.append(
                cell(
                    "gunicorn",
                    name,
                    pxt,
                    "io",
                    150.0,
                    2.0,
                    pss_mb=pss * processes,
                    uss_mb=30.0 * processes,
                    server_processes=processes + 1,
                )
            )
    report.write_report(
        tmp_path,
        report.Outcome(res),
        mode=MODES["default"],
        users=32,
        seconds=4,
        with_answer=False,
        with_goals=False,
        cpuset="0,1",
    )
    md = (tmp_path / "report.md").read_text()
    headings = re.findall(r"^##+ (.+)$", md, re.M)
    assert headings[:6] == [
        "The interpreters side by side: free-threaded or the GIL",
        "CPU-bound: /fib/25?method=naive (~20 ms of CPU)",
        "Scaling: what a second thread and a second process bring",
        "Memory: 16 slots as threads, as processes, and between",
        *headings[4:6],
    ]
    assert "**Verdict**: On this machine a second thread took CPU-bound gunicorn" in md
    assert "`docker run --cpuset-cpus\n0,1`" in md
    assert "| freethreaded | CPython from Debian's source package" in md
    # the images of the servers run, not every image of the interpreter
    assert f"| wsgistack-freethreaded:{axis.image_tag()} |" in md
    assert "apache-freethreaded" not in md
    assert "| CPython 3.13.5 no-GIL | `--disable-gil --enable-shared, -O3` |" in md
    assert "| gunicorn | 1x2 | 100.0 | 86.4 | 10.00 | 22.00 | 1.00 | 1.90 |" in md
    assert "| cpu | gunicorn | x1.00 | x1.90 | x2.00 | x2.00 |" in md
    assert "| gunicorn | 16x1 | 640.0 | 880.0 | 480.0 | 480.0 | 17 | 17 |" in md
    assert "{{" not in md and "{%" not in md
