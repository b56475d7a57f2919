"""wsgistack/bench/sampling.py: a process tree's CPU time and memory, sampled."""

from __future__ import annotations

import os

from wsgistack.bench import cpu_time
from wsgistack.bench.sampling import ProcessSampler, peak


def test_the_sampler_reads_a_process_trees_cpu_and_memory():
    with ProcessSampler([os.getpid()]) as sampler:
        sum(range(2_000_000))
    memory = sampler.peak_memory()
    assert memory.processes >= 1 and 0 < memory.uss_mb <= memory.pss_mb <= memory.rss_mb
    assert sampler.samples[-1][cpu_time.SERVERS] > 0
    assert peak([]) is None
