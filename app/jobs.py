"""Jobs: work too long for a request, run by the job workers instead (docs/jobs.md).

    POST /jobs/fib   {"n": 35, "method": "naive"}
        202 Accepted, Location: /jobs/<id>, the job's status as below
    GET /jobs/<id>
        200 {"id", "state": queued|running|done|failed, "n", "method",
             "submitted_at", "started_at", "finished_at", "queued_s", "run_s",
             "attempts", "completions", "worker", and "value" and "digits"
             once done, "error" once failed}
    GET /jobs
        200 {"queued": jobs waiting, "limit": JOB_QUEUE_LIMIT}

The job queue is Valkey (VALKEY_ADDRESS, a knob of wsgistack/settings.py), the
workers Celery's (app/worker.py). Errors are problem+json like every other
(app/problems.py):

- 400: the body is not a JSON object, ``n`` is not an integer, ``method`` not
  one of the methods, the Idempotency-Key header is malformed;
- 415: the body is not ``application/json``;
- 422: ``n`` is out of range (``JOB_FIB_MAX_N``, ``JOB_FIB_NAIVE_MAX_N``: larger
  than the synchronous routes allow), or an Idempotency-Key is sent again with a
  different request;
- 404: no job has this id (never had, or its record expired);
- 503 with Retry-After: no job queue is configured, Valkey cannot be reached
  (answered within a few seconds, never a hang), it is out of memory, or
  ``JOB_QUEUE_LIMIT`` jobs are waiting already. Nothing was submitted.

A client that retries a POST (a lost answer, a timeout) sends the same
``Idempotency-Key`` header: the retry answers the job the first attempt
created, with ``Idempotent-Replayed: true``, instead of submitting another.
https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request, url_for
from werkzeug.exceptions import NotFound, ServiceUnavailable, UnsupportedMediaType

from app.problems import InvalidParams
from app.views import METHODS
from wsgistack.settings import Settings, SettingsError

bp = Blueprint("jobs", __name__)

# printable ASCII without spaces, as an sf-string or a bare token: a uuid, a hash
_IDEMPOTENCY_KEY = re.compile(r'"([!#-~]{1,255})"|([!#-~]{1,255})')
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# seconds a client is asked to wait before trying again after a 503
RETRY_AFTER = 5
# seconds the app waits for Valkey before it answers 503
SOCKET_TIMEOUT = 3
# why a job failed, by the exception its worker stored; any other: its message
REASONS = {
    "SoftTimeLimitExceeded": "the job ran past its time limit of {soft} s and was stopped",
    "TimeLimitExceeded": "the job ran past its hard time limit of {hard} s: its process was killed",
    "WorkerLostError": "the worker process running the job died",
}


class Jobs:
    """The job queue as the app sees it: the records, and a Celery client that
    submits jobs and reads their results (the workers' own settings are in
    deploy/celery/celeryconfig.py). Celery, kombu and redis-py are imported
    here, when a queue is configured: half a second of every worker's start
    that a stack without one does not pay."""

    def __init__(self, settings: Settings) -> None:
        import redis
        from celery import Celery
        from kombu.exceptions import OperationalError

        from app.tasks import FIB_TASK, QUEUE, Records, client

        self.task, self.queue = FIB_TASK, QUEUE
        # the queue failing: Valkey unreachable, timing out, refusing (out of memory)
        self.errors = (redis.RedisError, OperationalError, OSError)
        self.out_of_memory = redis.ResponseError
        self.settings = settings
        url = settings.VALKEY_URL
        # one quick retry: a pooled connection that died with a Valkey restart
        # is replaced at once; a Valkey that stays away is a 503
        valkey = client(url, retries=1, socket_timeout=SOCKET_TIMEOUT)
        self.records = Records(valkey, settings.JOB_RESULT_EXPIRES, settings.JOB_HARD_TIME_LIMIT)
        self.celery = Celery("wsgistack-app", set_as_current=False)
        self.celery.conf.update(
            broker_url=url,
            result_backend=url,
            # the queue the workers consume (app/tasks.py)
            task_default_queue=self.queue,
            # JSON only: no pickle, so no message can run code when decoded
            task_serializer="json",
            result_serializer="json",
            accept_content=["json"],
            result_accept_content=["json"],
            # a submission waits for Valkey a few seconds at most, then the
            # client gets a 503: connect and socket timeouts, and two quick
            # retries of the publish (a stale pooled connection is replaced).
            # defaults: 4 s to connect, no socket timeout, 3 retries
            broker_connection_timeout=2,
            broker_transport_options={
                "socket_connect_timeout": 2,
                "socket_timeout": SOCKET_TIMEOUT,
                "visibility_timeout": settings.JOB_VISIBILITY_TIMEOUT,
            },
            task_publish_retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            },
            # the same bounds on reading results. default: none
            redis_socket_connect_timeout=2,
            redis_socket_timeout=SOCKET_TIMEOUT,
        )

    def publish(self, job_id: str, n: int, method: str) -> None:
        """Put a recorded job on the queue."""
        self.celery.send_task(self.task, args=[n, method], task_id=job_id, queue=self.queue)

    def result(self, job_id: str) -> dict[str, Any]:
        """Celery's stored result of a job: {"status": "PENDING"} until there is one."""
        return self.celery.backend.get_task_meta(job_id)


def init_app(app: Flask) -> None:
    """Register the routes. Valkey is reached on first use only, so not before
    the servers fork their workers."""
    # the job queue's knobs only (wsgistack/settings.py), checked as the
    # workers check them; the others are the servers' to check
    env = {k: v for k, v in os.environ.items() if k.startswith(("VALKEY_", "JOB_"))}
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        from app import ConfigError

        raise ConfigError(str(exc)) from None
    app.extensions["jobs"] = Jobs(settings) if settings.VALKEY_ADDRESS else None
    app.extensions["jobs_settings"] = settings
    app.register_blueprint(bp)


def unavailable(description: str) -> ServiceUnavailable:
    return ServiceUnavailable(description, retry_after=RETRY_AFTER)


def _jobs() -> Jobs:
    jobs = current_app.extensions["jobs"]
    if jobs is None:
        raise unavailable("No job queue is configured here (VALKEY_ADDRESS is not set).")
    return jobs


@contextlib.contextmanager
def _queue_errors(jobs: Jobs) -> Iterator[None]:
    """The queue failing becomes a 503 with Retry-After, never a 500 or a hang."""
    try:
        yield
    except jobs.errors as exc:
        current_app.logger.warning("job queue unavailable: %r", exc)
        if isinstance(exc, jobs.out_of_memory) and str(exc).startswith("OOM"):
            raise unavailable("The job queue is out of memory; no job was submitted.") from None
        raise unavailable("The job queue cannot be reached; try again shortly.") from None


def _iso(stamp: str | None) -> str | None:
    if not stamp:
        return None
    moment = datetime.fromtimestamp(float(stamp), UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round(max(0.0, float(end) - float(start)), 3)


def _reason(meta: dict[str, Any]) -> dict[str, str]:
    exc = meta.get("result")
    kind = type(exc).__name__ if isinstance(exc, BaseException) else "Error"
    settings: Settings = current_app.extensions["jobs_settings"]
    template = REASONS.get(kind)
    soft, hard = settings.JOB_TIME_LIMIT, settings.JOB_HARD_TIME_LIMIT
    return {"type": kind, "detail": template.format(soft=soft, hard=hard) if template else str(exc)}


def _finished(record: dict[str, str], meta: dict[str, Any]) -> str | None:
    """When the job ended: its own record, or (a job killed at its hard limit
    never writes it) when Celery stored its failure."""
    if record.get("finished"):
        return record["finished"]
    done = meta.get("date_done")
    if not done:
        return None
    moment = done if isinstance(done, datetime) else datetime.fromisoformat(done)
    return str((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def status(job_id: str, record: dict[str, str], meta: dict[str, Any]) -> dict[str, Any]:
    """A job's representation, from its record and Celery's result."""
    outcome = meta.get("status")
    if outcome == "SUCCESS":
        state = "done"
    elif outcome in ("FAILURE", "REVOKED"):
        state = "failed"
    else:
        state = "running" if record.get("started") else "queued"
    finished = _finished(record, meta) if state in ("done", "failed") else None
    body: dict[str, Any] = {
        "id": job_id,
        "state": state,
        "n": int(record["n"]),
        "method": record["method"],
        "submitted_at": _iso(record.get("submitted")),
        "started_at": _iso(record.get("started")),
        "finished_at": _iso(finished),
        "queued_s": _seconds(record.get("submitted"), record.get("started")),
        "run_s": _seconds(record.get("started"), finished),
        # times a worker started it, and ran it to its end: more than one
        # completion means it ran twice (at-least-once, docs/jobs.md)
        "attempts": int(record.get("attempts", 0)),
        "completions": int(record.get("completions", 0)),
        # the Celery worker and process that started it last
        "worker": {"name": record["worker"], "pid": int(record["pid"])}
        if record.get("worker")
        else None,
    }
    if state == "done":
        body.update(meta["result"])
    elif state == "failed":
        body["error"] = _reason(meta)
    return body


def _read(jobs: Jobs, job_id: str) -> tuple[dict[str, Any], dict[str, str] | None]:
    """Celery's result, then the record: a worker writes the record's end before
    it stores the result, so a result read first never meets a record that has
    not caught up with it (the other way round, a job may finish between the
    two reads, and show done with no attempt)."""
    meta = jobs.result(job_id)
    return meta, jobs.records.get(job_id)


def _respond(job_id: str, body: dict[str, Any], code: int = 200, replayed: bool = False):
    response = jsonify(body)
    response.status_code = code
    # a job's state changes: never from a cache
    response.headers["Cache-Control"] = "no-store"
    if code == 202:
        response.headers["Location"] = url_for("jobs.job_status", job_id=job_id)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _submission() -> tuple[int, str]:
    """n and method from the JSON body; 415, 400 or 422 otherwise."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the job as JSON (Content-Type: application/json).")
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InvalidParams(400, [("body", 'must be a JSON object, such as {"n": 30}')])
    errors: list[tuple[str, str]] = []
    method, n = body.get("method", "doubling"), body.get("n")
    if method not in METHODS:
        errors.append(("method", f"must be one of: {', '.join(METHODS)}"))
    if n is None:
        errors.append(("n", "is required: a non-negative integer"))
    elif isinstance(n, bool) or not isinstance(n, int):
        errors.append(("n", "must be an integer, written without quotes"))
    if errors:
        raise InvalidParams(400, errors)
    maximum = current_app.config["JOB_FIB_NAIVE_MAX_N" if method == "naive" else "JOB_FIB_MAX_N"]
    if not 0 <= n <= maximum:
        raise InvalidParams(422, [("n", f"must be between 0 and {maximum}")])
    return n, method


def _idempotency_key() -> str | None:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    found = _IDEMPOTENCY_KEY.fullmatch(raw.strip())
    if not found:
        reason = "must be 1 to 255 printable ASCII characters without spaces"
        raise InvalidParams(400, [("Idempotency-Key", reason)])
    return found[1] or found[2]


def _replay(jobs: Jobs, bound: tuple[str, str], fingerprint: str):
    """The answer to a POST whose Idempotency-Key created a job before."""
    job_id, first_request = bound
    if first_request != fingerprint:
        raise InvalidParams(422, [("Idempotency-Key", "was sent before with a different job")])
    meta, record = _read(jobs, job_id)
    if record is None:
        raise NotFound("The job this Idempotency-Key created has expired.")
    return _respond(job_id, status(job_id, record, meta), 202, replayed=True)


@bp.post("/jobs/fib")
def submit_fib():
    n, method = _submission()
    key = _idempotency_key()
    jobs = _jobs()
    fingerprint = hashlib.sha256(f"{jobs.task} {n} {method}".encode()).hexdigest()
    with _queue_errors(jobs):
        if key is not None and (bound := jobs.records.bound(key)):
            return _replay(jobs, bound, fingerprint)
        # checked, then submitted: concurrent submissions may each pass, so
        # the queue may exceed the limit by the submissions in flight (docs/jobs.md)
        queued, limit = jobs.records.queued(), jobs.settings.JOB_QUEUE_LIMIT
        if queued >= limit:
            raise unavailable(
                f"The job queue is full ({queued} jobs waiting, at most {limit}); "
                "no job was submitted."
            )
        # the record first: a concurrent request that finds the key bound to
        # this job finds the job too
        job_id = str(uuid.uuid4())
        record = jobs.records.create(job_id, n, method)
        try:
            if key is not None and (bound := jobs.records.claim(key, job_id, fingerprint)):
                # a concurrent request with the same key bound it first
                jobs.records.forget(job_id)
                return _replay(jobs, bound, fingerprint)
            jobs.publish(job_id, n, method)
        except Exception:
            # nothing was submitted: no record, and the key free for a retry
            # (as far as Valkey can be reached: the client gets its 503 anyway)
            with contextlib.suppress(*jobs.errors):
                jobs.records.forget(job_id)
                if key is not None and jobs.records.bound(key) == (job_id, fingerprint):
                    jobs.records.release(key)
            raise
    return _respond(job_id, status(job_id, record, {"status": "PENDING"}), 202)


@bp.get("/jobs/<job_id>")
def job_status(job_id: str):
    if not _JOB_ID.fullmatch(job_id):
        raise NotFound("No job has this id.")
    jobs = _jobs()
    with _queue_errors(jobs):
        meta, record = _read(jobs, job_id)
    if record is None:
        raise NotFound("No job has this id (or its record has expired).")
    return _respond(job_id, status(job_id, record, meta))


@bp.get("/jobs")
def queue_status():
    jobs = _jobs()
    with _queue_errors(jobs):
        queued = jobs.records.queued()
    return jsonify(queued=queued, limit=jobs.settings.JOB_QUEUE_LIMIT)
