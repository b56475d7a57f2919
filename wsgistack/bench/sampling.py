"""The server process trees sampled while a run loads them: CPU time (a few times
a second) and memory (once a second: RSS, and USS/PSS from /proc/PID/smaps).

psutil is imported when a sampler starts, so ``wsgistack up`` never loads it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

from wsgistack.bench.cpu_time import Sample, cores_between

MB = 1024 * 1024


@dataclass(frozen=True)
class Memory:
    """One process tree's memory, summed over its processes, in MB.

    RSS counts pages shared between the processes (the app's code after a fork)
    once per process: it overstates a tree. USS is what each process alone holds
    (freed if it ended); PSS splits every shared page between its sharers, so the
    PSS of a tree is its fair share of the machine's memory: the budget figure."""

    rss_mb: float
    pss_mb: float
    uss_mb: float
    processes: int


def peak(samples: list[Memory]) -> Memory | None:
    """The sample with the most PSS: the tree at its largest."""
    return max(samples, key=lambda m: m.pss_mb, default=None)


class ProcessSampler:
    """Samples the CPU seconds used so far by the server process trees and by the
    whole machine (busy, all cores together), and the trees' memory."""

    INTERVAL = 0.2
    # memory is dearer to read (smaps): every this many CPU samples
    MEMORY_EVERY = 5

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self._psutil = psutil
        self.roots = [psutil.Process(pid) for pid in pids]
        self.samples: list[Sample] = []
        self.memory: list[Memory] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _processes(self):
        seen: set[int] = set()
        for root in self.roots:
            with contextlib.suppress(self._psutil.Error):
                for proc in (root, *root.children(recursive=True)):
                    if proc.pid not in seen:
                        seen.add(proc.pid)
                        yield proc

    def _tree_seconds(self) -> float:
        total = 0.0
        for proc in self._processes():
            with contextlib.suppress(self._psutil.Error):
                t = proc.cpu_times()
                # children_*: workers that died and were reaped meanwhile
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def _machine_seconds(self) -> float:
        t = self._psutil.cpu_times()
        return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)

    def _tree_memory(self) -> Memory | None:
        rss = pss = uss = 0
        count = 0
        for proc in self._processes():
            with contextlib.suppress(self._psutil.Error):
                info = proc.memory_full_info()
                rss, pss, uss, count = rss + info.rss, pss + info.pss, uss + info.uss, count + 1
        return Memory(rss / MB, pss / MB, uss / MB, count) if count else None

    def sample(self, memory: bool = False) -> None:
        self.samples.append((time.time(), self._tree_seconds(), self._machine_seconds()))
        if memory and self.roots:
            found = self._tree_memory()
            if found is not None:
                self.memory.append(found)

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            self.sample(memory=count % self.MEMORY_EVERY == 0)
            count += 1
            self._stop.wait(self.INTERVAL)

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample(memory=True)

    def cores(self, start: float, end: float, column: int) -> float | None:
        return cores_between(self.samples, start, end, column)

    def peak_memory(self) -> Memory | None:
        return peak(self.memory)
