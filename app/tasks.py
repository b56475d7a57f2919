"""The job queue's shared half: the task the workers run, and the records in Valkey.

The app (app/jobs.py) submits jobs and answers their status; the workers
(app/worker.py, configured by deploy/celery/celeryconfig.py) run them. Both
meet in Valkey, under these keys:

- ``jobs``: the queue, a list Celery's Redis transport (kombu) pushes
  submitted jobs onto; a job a worker took but has not acknowledged sits in
  kombu's ``unacked`` hash until it is done (late acknowledgement, docs/jobs.md);
- ``celery-task-meta-<id>``: Celery's result of a finished job (value or
  error), expiring JOB_RESULT_EXPIRES seconds after it was stored;
- ``wsgistack:job:<id>``: this module's record of a job, a hash: what was
  asked (n, method), when it was submitted, started and finished, and how many
  times a worker started it (``attempts``) and ran it to its end
  (``completions``). A job runs at least once; more than one completion
  means it ran twice, which the record says rather than hides;
- ``wsgistack:idempotency:<sha256 of the key>``: the job an ``Idempotency-Key``
  created, and the request it was created by.

A job is a pure function of its arguments (F(n) by one method), so running it
twice gives the same value twice: the guarantee is at-least-once delivery of
idempotent jobs (docs/jobs.md).
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping

import redis
from celery import Celery
from celery.signals import task_postrun
from celery.utils.log import get_task_logger
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from app.views import METHODS

# the queue the app submits to and the workers consume
QUEUE = "jobs"
# the task's name in messages: the app submits by name, without importing this code
FIB_TASK = "jobs.fib"
PREFIX = "wsgistack"
# seconds a job's record outlives its result when it never ran (a queue purged by
# hand, a job lost): long enough for any queue to drain, short enough to clean up
UNRUN_GRACE = 24 * 3600

# the workers' Celery app; deploy/celery/celeryconfig.py configures it (app/worker.py)
celery = Celery("wsgistack", set_as_current=False)


def client(url: str, *, retries: int, socket_timeout: float) -> redis.Redis:
    """A redis-py client of Valkey that reconnects on its own: a pooled connection
    that died with a Valkey restart is replaced on the next command, up to
    ``retries`` times with a short backoff, so the caller sees an error only when
    Valkey stays away."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=socket_timeout,
        socket_keepalive=True,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=2, base=0.05), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        decode_responses=True,
    )


# a job's completion, atomic and once per attempt: started() removes
# "finished", so a field already there means this attempt was counted (a first
# call whose answer was lost, its command run by Valkey all the same)
FINISH = """
if redis.call('HEXISTS', KEYS[1], 'finished') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'finished', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'completions', 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class Records:
    """The jobs' records and idempotency keys in Valkey (the module docstring)."""

    def __init__(self, valkey: redis.Redis, result_expires: int, hard_time_limit: int) -> None:
        self.valkey = valkey
        self.result_expires = result_expires
        self.hard_time_limit = hard_time_limit
        # EVALSHA, loaded again by redis-py when Valkey lost its scripts (a restart)
        self._finish = valkey.register_script(FINISH)

    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}"

    @staticmethod
    def idempotency_key(key: str) -> str:
        # hashed: a client's key may be long or hold anything printable
        return f"{PREFIX}:idempotency:{hashlib.sha256(key.encode()).hexdigest()}"

    def create(self, job_id: str, n: int, method: str) -> dict[str, str]:
        """The record of a job about to be submitted; as it reads back."""
        record = {"n": str(n), "method": method, "submitted": repr(time.time())}
        key = self.key(job_id)
        pipe = self.valkey.pipeline()
        pipe.hset(key, mapping=record)
        pipe.expire(key, self.result_expires + UNRUN_GRACE)
        pipe.execute()
        return record

    def forget(self, job_id: str) -> None:
        """A job whose submission failed: no record of it."""
        self.valkey.delete(self.key(job_id))

    def get(self, job_id: str) -> dict[str, str] | None:
        return self.valkey.hgetall(self.key(job_id)) or None

    def started(self, job_id: str, worker: str, pid: int) -> None:
        """A worker's process starts the job (again, after a lost worker): one
        attempt more. Kept until its hard limit has passed and its result expired."""
        key = self.key(job_id)
        pipe = self.valkey.pipeline()
        pipe.hset(key, mapping={"started": repr(time.time()), "worker": worker, "pid": pid})
        pipe.hdel(key, "finished")
        pipe.hincrby(key, "attempts", 1)
        pipe.expire(key, self.hard_time_limit + self.result_expires)
        pipe.execute()

    def finished(self, job_id: str) -> None:
        """The job ran to its end: one completion more; kept as long as its result.
        Once per attempt: called again before the job is started again (the
        first call cut short after Valkey had its command, FINISH) it changes
        nothing, so a completion is never counted twice."""
        self._finish(keys=[self.key(job_id)], args=[repr(time.time()), self.result_expires])

    def claim(self, key: str, job_id: str, request: str) -> tuple[str, str] | None:
        """Bind an Idempotency-Key to a new job; None if it is now bound to it,
        else the (job id, request fingerprint) the key was bound to before."""
        name = self.idempotency_key(key)
        ttl = self.result_expires + UNRUN_GRACE
        if self.valkey.set(name, f"{job_id} {request}", nx=True, ex=ttl):
            return None
        return self.bound(key)

    def bound(self, key: str) -> tuple[str, str] | None:
        """The (job id, request fingerprint) an Idempotency-Key is bound to, if any."""
        found = self.valkey.get(self.idempotency_key(key))
        if found is None:
            return None
        job_id, _, request = found.partition(" ")
        return job_id, request

    def release(self, key: str) -> None:
        """The submission the key was claimed for failed: free the key again."""
        self.valkey.delete(self.idempotency_key(key))

    def queued(self) -> int:
        """Jobs waiting in the queue (not those a worker holds)."""
        return self.valkey.llen(QUEUE)


logger = get_task_logger(__name__)

# the workers' records, made on first use in each worker process (app/worker.py
# sets the settings); a Valkey restart is waited out for about a minute
_worker_records: Records | None = None
WORKER_RETRIES = 30


def worker_records() -> Records:
    global _worker_records
    if _worker_records is None:
        conf: Mapping = celery.conf
        valkey = client(conf.broker_url, retries=WORKER_RETRIES, socket_timeout=10)
        _worker_records = Records(valkey, int(conf.result_expires), int(conf.task_time_limit))
    return _worker_records


class SoftLimitAfterTheWork:
    """The soft time limit is there to stop a job's work. Once the work is
    done, what is left is storing its outcome: the record's completion, then
    Celery's result. With Valkey away those stores wait (the clients retry),
    and a soft limit passing then would fail a job whose value is computed.
    So from the end of the work to the end of the job (Celery's task_postrun,
    after it stored the result), the limit's signal only notes that it came;
    the hard limit, 5 s later, still bounds the wait.

    billiard's pool sends the soft limit as SIGUSR1 to the job's process,
    whose handler raises SoftTimeLimitExceeded (billiard 4.3 pool.py,
    soft_timeout_sighandler). The handler is put back after each job, so the
    next job's limit stops its work as before. docs/jobs.md
    """

    SIGNAL = signal.SIGUSR1

    def __init__(self) -> None:
        self.saved: object = None
        self.passed = False

    def work_done(self) -> None:
        # a handler is set by the main thread only (a prefork process runs
        # its jobs there; a job run in a thread has no soft limit to turn off)
        if threading.current_thread() is threading.main_thread():
            self.passed = False
            self.saved = signal.signal(self.SIGNAL, self._note)

    def _note(self, signum: int, frame: object) -> None:
        self.passed = True

    def job_ended(self) -> bool:
        """The handler put back; whether the limit passed after the work."""
        if self.saved is None:
            return False
        signal.signal(self.SIGNAL, self.saved)  # type: ignore[arg-type]
        self.saved = None
        return self.passed


soft_limit = SoftLimitAfterTheWork()


# resultrepr_maxsize: the worker's log line of a finished job shows the
# value's first 100 characters, not its first 1024 (Celery's default)
@celery.task(name=FIB_TASK, bind=True, resultrepr_maxsize=100)
def fib_job(self, n: int, method: str) -> dict[str, object]:
    """F(n) by ``method``, as a decimal string: the job the app's POST /jobs/fib submits.

    Pure: its value depends on its arguments only, so a second run (a worker
    lost after the job finished but before it was acknowledged) gives the same
    answer; the record counts the runs. The time limits (celeryconfig.py) stop
    it when it runs too long; the soft one stops its work only
    (SoftLimitAfterTheWork).
    """
    records = worker_records()
    records.started(self.request.id, self.request.hostname, os.getpid())
    # a job's answer may have more digits than Python formats by default (4300);
    # the conversion is quadratic below 3.12, but its time counts against the
    # job's own time limits like the rest of its work
    sys.set_int_max_str_digits(0)
    text = str(METHODS[method](n))
    soft_limit.work_done()
    records.finished(self.request.id)
    return {"value": text, "digits": len(text)}


@task_postrun.connect
def _job_ended(task_id: str, **_: object) -> None:
    # after Celery stored the job's result (celery/app/trace.py), in the job's process
    if soft_limit.job_ended():
        logger.warning(
            "job %s: its soft time limit passed after its work was done, while its "
            "outcome was stored: stored, not failed",
            task_id,
        )
