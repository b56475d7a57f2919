"""wsgistack/bench/cpu_time.py: the cores busy between two samples, the CPU per
request and the rest of the machine's work."""

from __future__ import annotations

import pytest

from wsgistack.bench import cpu_time


def test_cores_between_interpolates_between_samples():
    samples = [(0.0, 0.0, 0.0), (1.0, 1.0, 2.0), (2.0, 1.5, 3.0)]
    assert cpu_time.value_at(samples, 0.5, cpu_time.SERVERS) == 0.5
    assert cpu_time.cores_between(samples, 0.5, 1.5, cpu_time.SERVERS) == pytest.approx(0.75)
    assert cpu_time.cores_between(samples, 0.0, 2.0, cpu_time.MACHINE) == pytest.approx(1.5)
    # outside the samples: the nearest one
    assert cpu_time.value_at(samples, 5.0, cpu_time.SERVERS) == 1.5
    assert cpu_time.cores_between(samples[:1], 0, 1, cpu_time.SERVERS) is None


def test_cpu_per_request_and_the_rest_of_the_machine():
    # 1.5 cores for 4 s over 600 requests: 10 ms each
    assert cpu_time.cpu_ms_per_request(1.5, 4.0, 600) == pytest.approx(10.0)
    assert cpu_time.cpu_ms_per_request(1.5, 4.0, 0) is None
    assert cpu_time.other_cores(1.9, 1.0, 0.6) == pytest.approx(0.3)
    assert cpu_time.other_cores(1.0, 1.0, 0.6) == 0.0
    assert cpu_time.other_cores(None, 1.0, 0.6) is None
