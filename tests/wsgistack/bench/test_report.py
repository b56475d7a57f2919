"""wsgistack/bench/report.py: the report written from made-up results, its sections
in the order a reader needs them, the HTML self-contained."""

from __future__ import annotations

import base64
import re

from tests.wsgistack.bench.made_up import batch, run
from wsgistack.bench import report, results
from wsgistack.bench.plan import MODES
from wsgistack.bench.plan import Concurrency as C


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
            # three interleaved rounds, the median the middle one
            for n, wobble in ((1, 0.98), (2, 1.02), (3, 1.0)):
                res += [
                    run(stack, pxt, "sequence", 300 * scale * wobble, repeat=n, **kw),
                    run(stack, pxt, "cpu", 50 * scale * wobble, repeat=n, **kw),
                    run(stack, pxt, "io", 150 * pxt.processes * wobble, repeat=n, **kw),
                    run(
                        stack,
                        pxt,
                        "floor",
                        3000 * scale * wobble,
                        repeat=n,
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
    assert (
        "| CPU-bound: /fib/25?method=naive (~20 ms of CPU) | **gunicorn 2 x 1** | "
        "110.0 (108-112) | 30 | no: the fastest in every round |"
    ) in md
    # io: uwsgi and gunicorn alike at 2x1, the same memory: a tie, the first kept
    assert "tie with gunicorn 2 x 1 300 (294-306): the fastest and the lightest" in md
    assert "| gunicorn | 2 x 1 | floor | wrk | 0.400 | 0.050 | 0.350 | 88% |" in md
    assert "**generator-bound**" in md
    assert (
        "- **cpu**: gunicorn by processes x threads: 1x1 55.0 (54-56), 2x1 110.0 (108-112) req/s."
    ) in md
    assert "0.110 s (0.100-0.120, 3 runs)" in md
    assert verdicts and "issue 6" in md
    assert "{{" not in md and "{%" not in md
    html = (tmp_path / "report.html").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    # sequence, cpu, io, floor, the overhead and the replay
    assert len(images) == 6
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert not re.search(r'(src|href)="(?!data:)', html)
    # every run in results.csv, a row per cell in cells.csv
    for name, rows in (("results.csv", len(res)), ("cells.csv", len(res) // 3)):
        lines = (tmp_path / name).read_text().splitlines()
        assert lines[0].split(",") == results.RESULT_COLUMNS
        assert len(lines) == rows + 1
