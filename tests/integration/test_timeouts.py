"""A stuck request under concurrent traffic: cut near REQUEST_TIMEOUT, its
client answered with a JSON 504 within REQUEST_TIMEOUT + 2 s, its slot freed,
and no other request lost.

An idle stack proves little: uWSGI's harakiri and mod_wsgi 4.9/5.0's
request-timeout both look at a whole worker, so traffic on its other threads
hides one stuck thread. Here clients keep sending short requests while one
request sleeps far past the timeout (docs/apache-mod_wsgi.md has the figures).

Run by hand against any running stack (arguments: its URL, REQUEST_TIMEOUT,
processes x threads, and how long the traffic goes on), e.g. after
``REQUEST_TIMEOUT=3 WSGI_THREADS=8 FLASK_IO_MAX_MS=60000 wsgistack up apache``::

    .venv/bin/python -m tests.integration.test_timeouts http://127.0.0.1:8081 3 16 19

Only the Apache stacks run it here for now: the behaviour suite will take it
over for every stack.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import pytest

from tests.integration.http import Answer, SteadyTraffic, concurrently, request
from tests.integration.targets import make_target
from wsgistack.configs import apache_mod_wsgi

# the stuck request sleeps this long: far past every bound below, so that it
# ending by itself can never pass for the server freeing its slot
STUCK_MS = 40000
TRAFFIC_CLIENTS = 3
TRAFFIC_MS = 300
# the client's answer: a JSON 504 within REQUEST_TIMEOUT + this
ANSWER_MARGIN = 2.0


@dataclass
class StuckRun:
    stuck: Answer | Exception
    # each other request's status, or the exception of one that got no answer
    traffic: list[int | Exception]
    failures: list[int | Exception]
    # seconds from the stuck request's start until every slot served at once
    freed_after: float | None


def all_slots_serve(base_url: str, slots: int, ms: int = 1000) -> bool:
    """``slots`` requests of ``ms`` at once all end in about ``ms``: none queued
    behind a thread that is still stuck."""
    answers = concurrently(base_url, [f"/io?ms={ms}"] * slots, timeout=30)
    return (
        all(isinstance(a, Answer) and a.status == 200 for a in answers)
        and max(a.elapsed for a in answers) < (ms / 1000) * 1.8
    )


def stuck_under_traffic(
    base_url: str, slots: int, free_by: float, stuck_ms: int = STUCK_MS
) -> StuckRun:
    """One request of ``stuck_ms`` while clients keep sending short ones; the
    traffic goes on until ``free_by`` seconds after the stuck request started
    (through any restart of its worker), then the slots are checked."""
    with SteadyTraffic(base_url, f"/io?ms={TRAFFIC_MS}", clients=TRAFFIC_CLIENTS) as traffic:
        traffic.wait_flowing()
        start = time.monotonic()
        try:
            stuck: Answer | Exception = request(base_url, f"/io?ms={stuck_ms}", timeout=60)
        except Exception as exc:  # noqa: BLE001
            stuck = exc
        # fixed: the traffic runs until free_by, the moment the slot must be free
        time.sleep(max(0.0, start + free_by - time.monotonic()))
    freed_after = None
    if all_slots_serve(base_url, slots):
        freed_after = time.monotonic() - start
    return StuckRun(stuck, traffic.outcomes, traffic.failed, freed_after)


# settings of this test's own stack: 8 threads (the default), where a timeout
# judged over a whole process (mod_wsgi 4.9/5.0: the average of its threads)
# misses one stuck thread for 8 x REQUEST_TIMEOUT
STUCK_SETTINGS = {"WSGI_THREADS": 8}


def apache_free_by(settings) -> float:
    """Seconds after the stuck request's start by which mod_wsgi 6 has freed its
    thread (deploy/apache-mod_wsgi/wsgi-daemons.conf, docs/apache-mod_wsgi.md):
    it is judged at request-timeout x (1 + ln threads), checked each second; a
    thread blocked in C ignores the RequestTimeout raised in it, so after
    interrupt-timeout (2 s, checked each second) its process drains (at most
    graceful-timeout, REQUEST_TIMEOUT) and stops (shutdown-timeout, 5 s); the
    new process imports the app (3 s on a loaded machine)."""
    fire = apache_mod_wsgi.request_timeout(settings) * (1 + math.log(settings.WSGI_THREADS))
    return math.ceil(fire) + 1 + 3 + settings.REQUEST_TIMEOUT + 5 + 3


# the stacks this test runs on, and when each must have freed the stuck slot
FREE_BY = {"apache": apache_free_by, "docker-apache": apache_free_by}


@pytest.fixture(params=list(FREE_BY))
def stuck_stack(request, tmp_path):
    """A stack of its own (its worker gets restarted), with STUCK_SETTINGS."""
    name = request.param
    target = make_target(name, tmp_path / f"{name}.log", STUCK_SETTINGS)
    try:
        yield name, target.start()
    finally:
        target.stop()


def test_a_stuck_request_under_traffic_is_cut_and_nothing_else_is_lost(stuck_stack):
    name, stack = stuck_stack
    timeout = stack.settings.REQUEST_TIMEOUT
    free_by = FREE_BY[name](stack.settings)
    run = stuck_under_traffic(stack.base_url, stack.slots, free_by)
    stuck = run.stuck
    assert isinstance(stuck, Answer), f"the stuck request got no answer: {stuck!r}"
    assert stuck.status == 504, (stuck.status, stuck.body[:300])
    assert stuck.is_problem(504), stuck.body[:300]
    assert timeout - 0.5 <= stuck.elapsed <= timeout + ANSWER_MARGIN, stuck.elapsed
    # the traffic really went on (3 clients of 0.3 s requests, through the restart)
    assert len(run.traffic) >= free_by * TRAFFIC_CLIENTS, len(run.traffic)
    assert not run.failures, run.failures[:5]
    assert run.freed_after is not None, f"a slot was still held {free_by} s after the start"


def main(argv: list[str]) -> int:
    base_url, timeout, slots = argv[0], float(argv[1]), int(argv[2])
    free_by = float(argv[3]) if len(argv) > 3 else timeout + 15
    run = stuck_under_traffic(base_url, slots, free_by)
    stuck = run.stuck
    if isinstance(stuck, Answer):
        print(f"stuck request: {stuck.status} after {stuck.elapsed:.2f} s: {stuck.body[:160]!r}")
    else:
        print(f"stuck request: {stuck!r}")
    print(f"other requests: {len(run.traffic)}, failed: {len(run.failures)}")
    for failure in run.failures[:5]:
        print("  ", failure)
    freed = run.freed_after is not None
    print(f"every slot free {free_by:.1f} s after the stuck request started: {freed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
