"""wsgistack/bench/locust_engine.py: Locust's statistics of the replay batches read back."""

from __future__ import annotations

from wsgistack.bench.endpoints import Endpoint
from wsgistack.bench.locust_engine import parse_batches
from wsgistack.bench.plan import Concurrency as C


def test_repeated_batches_are_read_back_each_with_its_repeat():
    entries = [
        {"method": "BATCH", "name": "warm-up: 20 requests", "avg_ms": 900.0, "failures": 0},
        {"method": "BATCH", "name": "10 requests", "avg_ms": 100.0, "failures": 0},
        {"method": "BATCH", "name": "10 requests #2", "avg_ms": 50.0, "failures": 0},
        {"method": "GET", "name": "/fib/sequence?n=[n]", "avg_ms": 5.0, "failures": 0},
    ]
    endpoint = Endpoint("uwsgi", C(2, 16), "http://127.0.0.1:1", [])
    batches = parse_batches(entries, endpoint, "sequence", {10: 3})
    assert [(b.repeat, b.seconds) for b in batches] == [(1, 0.1), (2, 0.05), (3, None)]
    assert batches[2].error == "not completed"
