"""The jobs API in-process, where no job queue runs: its input checks, its
answers without a queue or with one out of reach, and how a job's record and
Celery's result become its status. The queue itself, the workers and the
faults are proven against real Valkey and real workers in
tests/integration/test_jobs.py."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime

import pytest
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from app import ConfigError, create_app
from app.jobs import status

JOB_ID = "0b7f3f5e-2a6b-4c47-9d0e-5b1f9c1e7a10"
PASSWORD = "unit-tests-only-password"


@pytest.fixture
def unreachable(monkeypatch):
    """An app whose Valkey is a port nothing listens on."""
    monkeypatch.setenv("VALKEY_ADDRESS", "127.0.0.1:9")
    monkeypatch.setenv("VALKEY_PASSWORD", PASSWORD)
    return create_app({"TESTING": True}).test_client()


def test_without_a_queue_a_submission_is_a_503_with_retry_after(client, assert_problem):
    response = client.post("/jobs/fib", json={"n": 10})
    body = assert_problem(response, 503)
    assert "VALKEY_ADDRESS" in body["detail"]
    assert response.headers["Retry-After"] == "5"
    assert_problem(client.get(f"/jobs/{JOB_ID}"), 503)
    assert_problem(client.get("/jobs"), 503)


def test_an_unreachable_queue_is_a_quick_503_not_a_hang_or_a_500(unreachable, assert_problem):
    for method, path, kwargs in (
        ("post", "/jobs/fib", {"json": {"n": 10}}),
        ("post", "/jobs/fib", {"json": {"n": 10}, "headers": {"Idempotency-Key": "k-1"}}),
        ("get", f"/jobs/{JOB_ID}", {}),
        ("get", "/jobs", {}),
    ):
        started = time.monotonic()
        response = getattr(unreachable, method)(path, **kwargs)
        assert time.monotonic() - started < 5, (method, path)
        body = assert_problem(response, 503)
        assert "cannot be reached" in body["detail"], body
        assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({}, ["n"]),
        ({"n": "10"}, ["n"]),
        ({"n": 1.5}, ["n"]),
        ({"n": True}, ["n"]),
        ({"n": None}, ["n"]),
        ({"n": 10, "method": "magic"}, ["method"]),
        ({"n": "x", "method": "magic"}, ["method", "n"]),
        ([10], ["body"]),
        ("10", ["body"]),
    ],
)
def test_malformed_submissions_are_400_naming_the_parameter(
    unreachable, assert_problem, body, names
):
    # checked before the queue is asked: a 400 even with the queue away
    assert_problem(unreachable.post("/jobs/fib", json=body), 400, *names)


def test_a_body_that_is_not_json_is_400_and_another_type_is_415(unreachable, assert_problem):
    sent = unreachable.post("/jobs/fib", data="{n: 1", content_type="application/json")
    assert_problem(sent, 400, "body")
    assert_problem(unreachable.post("/jobs/fib", data={"n": "1"}), 415)


@pytest.mark.parametrize(
    ("method", "largest"), [("doubling", 100000), ("iterative", 100000), ("naive", 40)]
)
def test_jobs_take_a_larger_n_than_requests_and_refuse_beyond_it(
    unreachable, assert_problem, method, largest
):
    body = assert_problem(
        unreachable.post("/jobs/fib", json={"n": largest + 1, "method": method}), 422, "n"
    )
    assert str(largest) in body["invalid_params"][0]["reason"]
    assert_problem(unreachable.post("/jobs/fib", json={"n": -1, "method": method}), 422, "n")
    # within the ceiling, the request is fine: only the queue is away
    assert_problem(unreachable.post("/jobs/fib", json={"n": largest, "method": method}), 503)


def test_the_ceilings_are_settings(monkeypatch, assert_problem):
    monkeypatch.setenv("VALKEY_ADDRESS", "127.0.0.1:9")
    monkeypatch.setenv("VALKEY_PASSWORD", PASSWORD)
    client = create_app({"JOB_FIB_NAIVE_MAX_N": 25}).test_client()
    assert_problem(client.post("/jobs/fib", json={"n": 26, "method": "naive"}), 422, "n")


@pytest.mark.parametrize("key", ["", "a b", "é", "x" * 256, '"unterminated'])
def test_a_malformed_idempotency_key_is_400(unreachable, assert_problem, key):
    headers = {"Idempotency-Key": key}
    assert_problem(
        unreachable.post("/jobs/fib", json={"n": 1}, headers=headers), 400, "Idempotency-Key"
    )


@pytest.mark.parametrize("job_id", ["nope", JOB_ID.upper(), JOB_ID + "0", "../jobs"])
def test_an_id_that_cannot_be_a_job_is_404_without_asking_the_queue(
    unreachable, assert_problem, job_id
):
    assert_problem(unreachable.get(f"/jobs/{job_id}"), 404)


def test_a_queue_needs_its_password(monkeypatch):
    monkeypatch.setenv("VALKEY_ADDRESS", "valkey:6379")
    monkeypatch.delenv("VALKEY_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="VALKEY_PASSWORD='': needed with VALKEY_ADDRESS"):
        create_app()


RECORD = {"n": "30", "method": "naive", "submitted": "1764700000.0"}


def test_a_job_nobody_started_is_queued():
    body = status(JOB_ID, RECORD, {"status": "PENDING"})
    assert body["state"] == "queued"
    assert (body["n"], body["method"], body["attempts"], body["completions"]) == (30, "naive", 0, 0)
    assert body["submitted_at"] == "2025-12-02T18:26:40.000Z"
    assert body["started_at"] is body["finished_at"] is body["run_s"] is None
    assert "value" not in body and "error" not in body


def test_a_started_job_is_running_with_its_attempts():
    record = {**RECORD, "started": "1764700002.5", "attempts": "2"}
    body = status(JOB_ID, record, {"status": "PENDING"})
    assert (body["state"], body["attempts"], body["queued_s"]) == ("running", 2, 2.5)


def test_a_done_job_has_its_value_and_timings():
    record = {**RECORD, "started": "1764700001", "finished": "1764700001.25"}
    record |= {"attempts": "1", "completions": "1"}
    meta = {"status": "SUCCESS", "result": {"value": "832040", "digits": 6}}
    body = status(JOB_ID, record, meta)
    assert body["state"] == "done"
    assert (body["value"], body["digits"], body["run_s"], body["completions"]) == (
        "832040",
        6,
        0.25,
        1,
    )


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (SoftTimeLimitExceeded(), "SoftTimeLimitExceeded", "time limit of 300 s"),
        (TimeLimitExceeded(305.0), "TimeLimitExceeded", "hard time limit of 305 s"),
        (ValueError("n must be >= 0"), "ValueError", "n must be >= 0"),
    ],
)
def test_a_failed_job_says_why(app, exc, kind, words):
    # a job killed at its hard limit never wrote its end: Celery's time is used
    record = {**RECORD, "started": "1764700001", "attempts": "1"}
    done = datetime.fromtimestamp(1764700306.0, UTC).replace(tzinfo=None)
    with app.app_context():
        body = status(JOB_ID, record, {"status": "FAILURE", "result": exc, "date_done": done})
    assert body["state"] == "failed"
    assert body["error"]["type"] == kind and words in body["error"]["detail"], body["error"]
    assert body["finished_at"] == "2025-12-02T18:31:46.000Z" and body["run_s"] == 305.0


def test_a_soft_limit_after_the_work_is_noted_and_the_next_job_gets_it_again():
    """billiard's pool raises SoftTimeLimitExceeded from its SIGUSR1 handler;
    between the end of a job's work and the end of the job the signal is only
    noted, and the handler is back for the next job (the real signal, sent to
    this process)."""
    from app.tasks import SoftLimitAfterTheWork

    def billiards(signum, frame):
        raise SoftTimeLimitExceeded()

    def limit_passes():
        os.kill(os.getpid(), SoftLimitAfterTheWork.SIGNAL)
        # the handler runs in the main thread at its next instruction
        time.sleep(0.01)

    previous = signal.signal(SoftLimitAfterTheWork.SIGNAL, billiards)
    try:
        guard = SoftLimitAfterTheWork()
        guard.work_done()
        limit_passes()
        assert guard.job_ended() is True
        assert signal.getsignal(SoftLimitAfterTheWork.SIGNAL) is billiards
        # the next job: its work is stopped by its limit
        with pytest.raises(SoftTimeLimitExceeded):
            limit_passes()
        guard.work_done()
        assert guard.job_ended() is False
        # a job that failed before its work was done ends with nothing to put back
        assert guard.job_ended() is False
    finally:
        signal.signal(SoftLimitAfterTheWork.SIGNAL, previous)
