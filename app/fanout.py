"""The bounded thread pool shared by all /fanout requests of a process.

uWSGI and gunicorn may import the app in a master process and fork workers
from it; threads do not survive fork, so a pool created before the fork
would be a dead object in every worker. The executor is therefore created
lazily, on first use, and again whenever os.getpid() changes.

The pool has a fixed number of threads: when every thread is busy, calls
wait in the executor's queue instead of starting more threads, so load
cannot oversubscribe the process. The tasks only sleep and never submit
work to the pool themselves, so waiting on them cannot deadlock: a busy
pool makes a request slower, never stuck.
"""

import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor, wait

_pools: "weakref.WeakSet[FanoutPool]" = weakref.WeakSet()


class FanoutPool:
    """A fork-safe, lazily created ThreadPoolExecutor of a fixed size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pid: int | None = None
        _pools.add(self)

    def _after_fork(self) -> None:
        # the parent's lock may have been held by a thread that does not
        # exist in the child; start over with a fresh one
        self._lock = threading.Lock()
        self._executor = None
        self._pid = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        pid = os.getpid()
        executor = self._executor
        if executor is not None and self._pid == pid:
            return executor
        with self._lock:
            if self._executor is None or self._pid != pid:
                # an executor inherited through fork has no threads here;
                # drop it rather than shut it down
                self._executor = ThreadPoolExecutor(
                    max_workers=self.size, thread_name_prefix=f"fanout-{pid}"
                )
                self._pid = pid
            return self._executor

    def run_sleeps(self, calls: int, ms: int) -> None:
        """Run ``calls`` simulated upstream calls of ``ms`` each; wait for all."""
        futures = [self.executor.submit(time.sleep, ms / 1000) for _ in range(calls)]
        wait(futures)
        for future in futures:
            future.result()  # re-raise anything a call raised

    def shutdown(self) -> None:
        with self._lock:
            if self._executor is not None and self._pid == os.getpid():
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            self._pid = None


def _reset_pools_in_child() -> None:
    for pool in list(_pools):
        pool._after_fork()


# covers os.fork() and servers that call PyOS_AfterFork_Child; the pid check
# in FanoutPool.executor covers forks that skip the hooks
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pools_in_child)
