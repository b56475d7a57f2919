"""wsgistack.wait.wait_until: the one readiness helper."""

from __future__ import annotations

import time

import pytest

from wsgistack.wait import wait_until


def test_returns_the_first_true_value_of_the_check():
    answers = iter([None, 0, "ready", "later"])
    assert wait_until(lambda: next(answers), timeout=5, interval=0, what="x") == "ready"


def test_times_out_with_what_it_waited_for_and_the_detail():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^the server answering: not within 0.2 s\nlog tail$"):
        wait_until(
            lambda: False,
            timeout=0.2,
            interval=0.05,
            what="the server answering",
            detail=lambda: "log tail",
        )
    assert 0.2 <= time.monotonic() - started < 1.0


def test_an_ignored_exception_is_not_yet_and_is_named_at_the_end():
    calls = []

    def refused():
        calls.append(1)
        raise ConnectionRefusedError("refused")

    with pytest.raises(RuntimeError, match=r"not within 0.1 s \(last: ConnectionRefused"):
        wait_until(
            refused, timeout=0.1, interval=0.02, what="up", ignore=(OSError,), error=RuntimeError
        )
    # polled at the start, every interval, and once at the deadline
    assert len(calls) >= 3


def test_any_other_exception_goes_through_at_once():
    def died():
        raise ValueError("the server exited")

    started = time.monotonic()
    with pytest.raises(ValueError, match="exited"):
        wait_until(died, timeout=10, interval=1, what="up", ignore=(OSError,))
    assert time.monotonic() - started < 0.5


def test_the_last_attempt_is_made_at_the_deadline():
    deadline = time.monotonic() + 0.3
    # true only once the deadline is past: a long interval must not skip that check
    assert wait_until(lambda: time.monotonic() >= deadline, timeout=0.3, interval=10, what="x")
