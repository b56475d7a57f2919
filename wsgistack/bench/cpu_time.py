"""CPU time accounting: from the samples of the server process trees' CPU time
and the machine's (sampling.ProcessSampler), the cores busy over a window and
the CPU per request. Pure arithmetic. (How many CPUs a process may use at all,
the default of the worker counts, is another job: wsgistack/cpus.py.)"""

from __future__ import annotations

# (wall-clock time, server trees' CPU seconds so far, machine's busy CPU seconds so far)
Sample = tuple[float, float, float]
SERVERS, MACHINE = 1, 2


def value_at(samples: list[Sample], when: float, column: int) -> float:
    """A column's value at a wall-clock time, linear between the two samples around it."""
    for before, after in zip(samples, samples[1:], strict=False):
        if before[0] <= when <= after[0]:
            span = after[0] - before[0]
            weight = (when - before[0]) / span if span else 0.0
            return before[column] + weight * (after[column] - before[column])
    return samples[0][column] if when < samples[0][0] else samples[-1][column]


def cores_between(samples: list[Sample], start: float, end: float, column: int) -> float | None:
    """Mean cores in use between two wall-clock times (column SERVERS or MACHINE)."""
    if end <= start or len(samples) < 2:
        return None
    return (value_at(samples, end, column) - value_at(samples, start, column)) / (end - start)


def cpu_ms_per_request(cores: float | None, seconds: float | None, requests: int | None):
    """CPU ms per request from the mean cores busy over a window and its requests."""
    if cores is None or not seconds or not requests:
        return None
    return cores * seconds / requests * 1000


def other_cores(machine: float | None, servers: float | None, generator: float | None):
    """The rest of the machine's work (this process, other people's): noise."""
    if None in (machine, servers, generator):
        return None
    return max(0.0, machine - servers - generator)
