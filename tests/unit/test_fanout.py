"""FanoutPool: lazy, bounded, recreated after fork."""

import os
import signal
import threading
import time
import warnings

import pytest

from app import fanout
from app.fanout import FanoutPool


@pytest.fixture
def pool():
    """A small pool, shut down after the test."""
    pool = FanoutPool(3)
    yield pool
    pool.shutdown()


def test_executor_is_lazy_and_reused(pool):
    assert pool._executor is None
    first = pool.executor
    assert pool.executor is first
    assert first._max_workers == 3


def test_executor_is_created_once_under_contention(pool):
    seen = []
    barrier = threading.Barrier(16)

    def grab():
        barrier.wait()
        seen.append(pool.executor)

    threads = [threading.Thread(target=grab) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(e) for e in seen}) == 1


def test_new_pid_gets_a_new_executor(pool, monkeypatch):
    first = pool.executor
    monkeypatch.setattr(fanout.os, "getpid", lambda: -1)
    second = pool.executor
    assert second is not first
    assert pool.executor is second


def test_pool_is_bounded(pool):
    start = time.perf_counter()
    pool.run_sleeps(6, 30)
    elapsed = time.perf_counter() - start
    # 6 calls on 3 threads: two waves, and never more than 3 threads
    assert 0.06 <= elapsed < 0.18
    assert len(pool.executor._threads) == 3


def test_errors_in_calls_propagate(pool, monkeypatch):
    def broken_sleep(_):
        raise OSError("upstream down")

    monkeypatch.setattr(fanout.time, "sleep", broken_sleep)
    with pytest.raises(OSError, match="upstream down"):
        pool.run_sleeps(2, 1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_pool_works_in_a_forked_child(pool):
    # the parent's pool has live threads, which the child does not inherit
    pool.run_sleeps(3, 1)
    parent_executor = pool.executor
    with warnings.catch_warnings():
        # python 3.12+ warns that forking a threaded process is risky
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: report through the exit code, never return to pytest
        code = 1
        try:
            signal.alarm(10)  # a hung pool must not hang the test run
            pool.run_sleeps(3, 1)
            code = 0 if pool._executor is not parent_executor else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
