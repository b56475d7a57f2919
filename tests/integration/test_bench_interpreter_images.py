"""``wsgistack bench --interpreter``: the same servers in the images of Debian's
python3, the GIL control build and free-threaded CPython, run with ``docker
run`` pinned to one CPU, loaded, compared in the report, and removed.

The comparison's arithmetic is tested without containers in
tests/wsgistack/bench/test_interpreters.py.
"""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.compose import build_images, engine_problem
from wsgistack import cli
from wsgistack.runner import find_free_port

INTERPRETERS = ("debian", "gil", "freethreaded")
SERVERS = ("granian", "apache")
LABEL = "wsgistack.bench=interpreter"


def leftovers() -> list[str]:
    found = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"label={LABEL}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.split()


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    build_images()
    out = tmp_path_factory.mktemp("bench-interpreters")
    code = cli.main(
        [
            "bench",
            "--interpreter",
            ",".join(INTERPRETERS),
            "--stacks",
            ",".join(SERVERS),
            # one setting, two threads: where free-threading differs from the
            # GIL; every server on every interpreter, 15 runs (the arithmetic
            # of the other shapes: tests/wsgistack/bench/test_interpreters.py)
            "--settings",
            "1x2",
            "--quick",
            # 1 s per run: the tests read what ran where, not how fast
            "--duration",
            "1",
            "--cpuset",
            "0",
            "--port",
            str(find_free_port()),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def rows(report_dir: Path) -> list[dict]:
    with open(report_dir / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_every_server_ran_on_every_interpreter_it_has_an_image_for(report_dir):
    runs = {
        (r["stack"], r["interpreter"], r["processes"], r["threads"], r["workload"])
        for r in rows(report_dir)
    }
    expected = {
        (f"{server}-{name}", name, "1", "2", workload)
        for server in SERVERS
        for name in INTERPRETERS
        # no Apache on the GIL control build
        if (server, name) != ("apache", "gil")
        for workload in ("cpu", "sequence", "io")
    }
    assert runs == expected


def test_each_run_is_measured_on_the_interpreter_it_names(report_dir):
    for row in rows(report_dir):
        where = f"{row['stack']} {row['processes']}x{row['threads']} {row['workload']}"
        assert row["error"] == "" and row["failures"] == "0", f"{where}: {row['error']}"
        assert float(row["rps"]) > 0 and row["engine"] == "wrk", where
        # the container's processes are sampled from the host, as a native stack's
        for column in ("server_cpu_ms", "server_cores", "pss_mb", "uss_mb"):
            assert float(row[column]) > 0, f"{where}: {column}"
        free = row["interpreter"] == "freethreaded"
        assert row["python"].startswith("CPython 3.13"), where
        assert row["python"].endswith(" no-GIL") == free, where
        assert ("--disable-gil" in row["python_build"]) == free, where


def test_the_containers_were_pinned_to_the_cpuset(report_dir):
    """--cpuset 0: one CPU. Free-threaded, two threads of one process run CPU-bound
    requests on two cores where they can; pinned to one, they cannot pass it."""
    for row in rows(report_dir):
        if row["workload"] == "cpu":
            assert float(row["server_cores"]) < 1.1, (row["stack"], row["server_cores"])


def test_the_report_opens_with_the_comparison_and_its_verdict(report_dir):
    md = (report_dir / "report.md").read_text()
    assert "## The interpreters side by side: free-threaded or the GIL" in md
    # 2 x 1 was not run: the verdict says it has none rather than guessing
    # (nor 1 x 1: no scaling figure either)
    assert "**Verdict**: The CPU-bound runs at 1 x 2 and 2 x 1 are missing" in md
    assert "`docker run --cpuset-cpus\n0`" in md
    for name in INTERPRETERS:
        assert f"\n| {name} | " in md, name
    assert "| granian | 1x2 |" in md
    # Apache has no image on the GIL control build: a dash in its column
    assert re.search(r"\n\| apache \| 1x2 \| [0-9.]+ \| - \| [0-9.]+ \|", md)
    assert (report_dir / "report.html").stat().st_size > 0


def test_no_container_is_left_behind(report_dir):
    assert leftovers() == []


def test_a_missing_image_is_named_before_anything_starts(tmp_path, monkeypatch, capsys):
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    monkeypatch.setenv("IMAGE_TAG", "no-such-tag")
    code = cli.main(
        [
            "bench",
            "--interpreter",
            "debian,freethreaded",
            "--stacks",
            "granian",
            "--out",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert (
        "missing images: wsgistack-granian:no-such-tag, wsgistack-freethreaded:no-such-tag" in err
    )
    assert "make bench-interpreters" in err
    assert not (tmp_path / "results.csv").exists()
