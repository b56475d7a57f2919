"""The request counter and the app under many concurrent threads."""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app import create_app
from app.timing import RequestCounter

THREADS = 32
INCREMENTS = 500


@pytest.fixture
def fast_switching():
    """Switch threads as often as possible so races show up."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def run_together(threads, target):
    """Start `threads` threads on `target` at the same moment and join them."""
    barrier = threading.Barrier(threads)

    def worker():
        barrier.wait()
        target()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
        assert not thread.is_alive()


def test_counter_hammered(fast_switching):
    counter = RequestCounter()
    seen = []
    lock = threading.Lock()

    def hammer():
        mine = [counter.increment() for _ in range(INCREMENTS)]
        with lock:
            seen.extend(mine)

    run_together(THREADS, hammer)
    assert counter.value == THREADS * INCREMENTS
    # every increment got its own number: none lost, none repeated
    assert sorted(seen) == list(range(1, THREADS * INCREMENTS + 1))


def test_app_hammered(fast_switching):
    app = create_app({"TESTING": True})
    per_thread = 40
    failures = []

    def hammer():
        client = app.test_client()  # one client per thread, one shared app
        for i in range(per_thread):
            url, expected = [
                ("/up", {"status": "ok"}),
                ("/fib/12", {"n": 12, "method": "doubling", "value": "144", "digits": 3}),
                ("/fib/sequence?n=3", {"n": 3, "values": ["0", "1", "1"]}),
                ("/fib/x", None),
            ][i % 4]
            response = client.get(url)
            if expected is None:
                ok = response.status_code == 400
            else:
                ok = response.status_code == 200 and response.get_json() == expected
            if not ok:
                failures.append((url, response.status_code, response.data))

    run_together(THREADS, hammer)
    assert failures == []
    served = app.test_client().get("/info").get_json()["requests_served"]
    assert served == THREADS * per_thread + 1  # + this /info


def test_fanout_under_concurrent_requests():
    # 8 requests of 4 calls on a 4-thread pool: calls queue, nothing deadlocks
    app = create_app({"TESTING": True, "FANOUT_POOL_SIZE": 4})

    def one_request(_):
        return app.test_client().get("/fanout?calls=4&ms=20").get_json()

    with ThreadPoolExecutor(max_workers=8) as requests:
        results = list(requests.map(one_request, range(8), timeout=30))
    assert [r["calls"] for r in results] == [4] * 8
    # 32 calls of 20 ms on 4 threads need at least 8 waves in total
    assert max(r["elapsed_ms"] for r in results) >= 8 * 20 * 0.9
