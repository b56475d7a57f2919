"""Repeated cells: every stack x processes x threads x workload of a run is
measured more than once, in interleaved rounds (every stack run of the plan,
then all of them again: A B C, A B C, ...), so that a slow spell of a shared
machine hits every setting alike instead of the one that happened to run then.

``cells`` turns the repetitions into one figure per cell: the median of each
measurement, with the requests/s of the slowest and the fastest repetition
beside it (``rps_low``, ``rps_high``): the spread the answer judges by
(answer.py). Pure functions of the results.
"""

from __future__ import annotations

import dataclasses
import statistics

from wsgistack.bench.plan import StackRun
from wsgistack.bench.results import KEY_FIELDS, Result, num

# the measurements a cell takes the median of
MEDIAN_FIELDS = (
    "rps",
    "avg_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "server_cores",
    "generator_cores",
    "other_cores",
    "app_cpu_ms",
    "app_ms",
    "server_cpu_ms",
    "rss_mb",
    "pss_mb",
    "uss_mb",
    "server_processes",
    "compressed",
    "bytes_per_answer",
    "queue_peak",
    "queue_median",
    "busy_slots",
)
# summed over the repetitions: the failure ratio is then the whole cell's
SUMMED_FIELDS = ("seconds", "requests", "failures", "reconnects")
# the rest is the first measured repetition's: the run's description (users,
# python, accept_encoding...), its exit code and files


def interleave(plan: list[StackRun], rounds: int) -> list[StackRun]:
    """The plan run ``rounds`` times over, round after round; the replay of the
    original comparison in the first round only (its short batches repeat on
    their own)."""
    out = []
    for number in range(1, rounds + 1):
        for run in plan:
            replays = run.replays if number == 1 else {}
            out.append(dataclasses.replace(run, repeat=number, replays=dict(replays)))
    return out


def cell_key(r: Result) -> tuple:
    return tuple(getattr(r, name) for name in KEY_FIELDS)


def combine(runs: list[Result]) -> Result:
    """One cell from its repetitions: medians, sums and the spread of requests/s.
    A cell none of whose repetitions was measured keeps the first one's error; a
    repetition that failed is left out of the figures and counted in ``errors``."""
    measured = [r for r in runs if r.measured]
    if not measured:
        return dataclasses.replace(runs[0], repeat=0, repeats=0, errors=len(runs))
    cell = dataclasses.replace(measured[0], repeat=0)
    for name in MEDIAN_FIELDS:
        values = [v for r in measured if (v := getattr(r, name)) is not None]
        setattr(cell, name, statistics.median(values) if values else None)
    for name in SUMMED_FIELDS:
        values = [v for r in measured if (v := getattr(r, name)) is not None]
        setattr(cell, name, sum(values) if values else None)
    rates = [r.rps for r in measured]
    cell.rps_low, cell.rps_high = min(rates), max(rates)
    cell.repeats = len(measured)
    cell.errors = len(runs) - len(measured)
    # generator-bound in most of its repetitions
    cell.generator_bound = sum(r.generator_bound for r in measured) * 2 > len(measured)
    return cell


def cells(results: list[Result]) -> list[Result]:
    """One result per cell, in the order the cells first ran."""
    groups: dict[tuple, list[Result]] = {}
    for r in results:
        groups.setdefault(cell_key(r), []).append(r)
    return [combine(runs) for runs in groups.values()]


def rps_range(r: Result) -> tuple[float, float]:
    """The slowest and the fastest repetition's requests/s; a single run's own."""
    low = r.rps_low if r.rps_low is not None else r.rps
    high = r.rps_high if r.rps_high is not None else r.rps
    return low, high


def overlap(a: Result, b: Result) -> bool:
    """Whether two cells' requests/s ranges (slowest to fastest repetition)
    overlap: neither was faster than the other in every repetition."""
    (a_low, a_high), (b_low, b_high) = rps_range(a), rps_range(b)
    return a_low <= b_high and b_low <= a_high


def rate(r: Result, digits: int = 1) -> str:
    """Requests/s for people: a repeated cell's median and its range."""
    if not r.repeats or r.repeats < 2:
        return num(r.rps, digits)
    low, high = rps_range(r)
    return f"{num(r.rps, digits)} ({num(low, 0)}-{num(high, 0)})"
