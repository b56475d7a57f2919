"""wsgistack/bench/results.py: a result's derived figures."""

from __future__ import annotations

import pytest

from tests.wsgistack.bench.made_up import run
from wsgistack.bench import results
from wsgistack.bench.plan import Concurrency as C


def test_overhead_is_server_cpu_minus_the_apps_own():
    r = run("uwsgi", C(2, 1), "sequence", 500, server_cpu_ms=3.5, app_cpu_ms=2.0)
    assert r.overhead_ms == pytest.approx(1.5)
    assert results.overhead_ms(None, 2.0) is None
