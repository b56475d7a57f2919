"""``wsgistack bench``: every stack x processes x threads x workload, measured.

The package, one job a module:

- ``plan``: the workloads, processes x threads (``Concurrency``), the modes and
  the plan of stack runs, with its time estimate;
- ``endpoints``: where the load goes (a native stack started for the run, a
  compose stack already up) and its warm-up;
- ``locust_engine`` and ``wrk_engine``: the two load generators; ``sampling``:
  the server process trees' CPU and memory, sampled; ``cpu_time``: the CPU
  time accounting (cores busy, CPU per request; ``wsgistack.cpus`` is another
  job: how many CPUs this process may use);
- ``results``: one result type keyed by its axes, and the CSV;
- ``repeats``: the interleaved rounds of a plan, and each cell's repetitions
  combined (medians, the spread of requests/s);
- ``answer``: the recommendation per workload (by the spread: overlapping
  settings are a tie, the lighter one is picked), the overhead per request,
  the replay's ratios; ``goals``: the project's own goals, a data table;
- ``report`` (with templates/ and ``tables``), ``charts``, ``console``;
  ``execute`` runs a plan, ``command`` is the command line;
- ``crossover`` (the load and the answer) and ``crossover_command``: ``wsgistack
  crossover``, long work in the request or on the job queue (docs/jobs.md).

Everything lands in ``reports/<timestamp>/``: results.csv and batches.csv,
report.md and report.html (the charts inlined), charts/*.png, Locust's CSV per
run in locust/ (its HTML with --locust-html), wrk's output in wrk/ and the
servers' logs, compressed, in logs/. matplotlib, rich, psutil and Jinja2 are
imported by the functions that use them, so ``wsgistack up`` never loads them.

The names below are the package's public interface (``wsgistack sizing`` uses them).
"""

from wsgistack.bench.answer import Recommendation, recommend
from wsgistack.bench.charts import pyplot
from wsgistack.bench.command import (
    add_common_arguments,
    add_parser,
    main,
    new_report_dir,
    positive,
    preflight,
)
from wsgistack.bench.console import print_summary
from wsgistack.bench.execute import execute, interruptible
from wsgistack.bench.locust_engine import LOCUSTFILE
from wsgistack.bench.plan import (
    DEFAULT_STACKS,
    MODES,
    WORKLOADS,
    Concurrency,
    StackRun,
    Workload,
    build_plan,
)
from wsgistack.bench.repeats import cells, interleave
from wsgistack.bench.report import Outcome, write_report
from wsgistack.bench.results import BATCH_COLUMNS, RESULT_COLUMNS, BatchResult, Result, num

__all__ = [
    "BATCH_COLUMNS",
    "DEFAULT_STACKS",
    "LOCUSTFILE",
    "MODES",
    "RESULT_COLUMNS",
    "WORKLOADS",
    "BatchResult",
    "Concurrency",
    "Outcome",
    "Recommendation",
    "Result",
    "StackRun",
    "Workload",
    "add_common_arguments",
    "add_parser",
    "build_plan",
    "cells",
    "execute",
    "interleave",
    "interruptible",
    "main",
    "new_report_dir",
    "num",
    "positive",
    "preflight",
    "print_summary",
    "pyplot",
    "recommend",
    "write_report",
]
