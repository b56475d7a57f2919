"""CPU accounting: the server process trees' CPU time and the machine's, sampled
during a run, and what they come to per second and per request.

psutil is imported when a sampler starts, so ``wsgistack up`` never loads it.
"""

from __future__ import annotations

import contextlib
import threading
import time

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


class CpuSampler:
    """Samples, a few times a second, the CPU seconds used so far by the server
    process trees, and by the whole machine (busy, all cores together)."""

    INTERVAL = 0.2

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self._psutil = psutil
        self.roots = [psutil.Process(pid) for pid in pids]
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _tree_seconds(self) -> float:
        total = 0.0
        seen: set[int] = set()
        for root in self.roots:
            with contextlib.suppress(self._psutil.Error):
                for proc in (root, *root.children(recursive=True)):
                    if proc.pid in seen:
                        continue
                    seen.add(proc.pid)
                    with contextlib.suppress(self._psutil.Error):
                        t = proc.cpu_times()
                        # children_*: workers that died and were reaped meanwhile
                        total += t.user + t.system + t.children_user + t.children_system
        return total

    def _machine_seconds(self) -> float:
        t = self._psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)

    def sample(self) -> None:
        self.samples.append((time.time(), self._tree_seconds(), self._machine_seconds()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.INTERVAL)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def cores(self, start: float, end: float, column: int) -> float | None:
        return cores_between(self.samples, start, end, column)
