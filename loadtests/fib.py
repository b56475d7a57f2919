"""Locust scenarios for the Fibonacci app: one user class per workload.

From the repository root (loadtests/locust.conf holds the defaults: this file,
host http://127.0.0.1:8080 = `wsgistack up uwsgi`, 32 users for a minute):

    locust --config loadtests/locust.conf                      # web UI on :8089
    locust --config loadtests/locust.conf --headless -t 30s CpuUser
    locust -f loadtests/fib.py --host http://127.0.0.1:8083 --headless -u 8 -t 10s IoUser
    python loadtests/fib.py --host http://127.0.0.1:8080 SequenceUser   # one user, debugging

Name one class; without a name Locust runs all of them, users spread evenly.

    CpuUser       naive Fibonacci of 25: ~20 ms of CPU per request, GIL-bound
    SequenceUser  /fib/sequence?n=1000: the original comparison's request (~1-2 ms)
    IoUser        /io?ms=100: sleeps, as a request waiting on a database would
    FanoutUser    /fanout: each request waits on 8 calls run by the app's thread pool
    MixUser       a weighted mix of all of the above and random-sized doubling

Every answer is checked against values computed here, independently of the
app: a wrong Fibonacci value is a failure, not just a non-200 status.
When Locust quits, the failure ratio and the p95 are checked against
--max-fail-ratio and --max-p95-ms, which set the exit code (1: broken).
loadtests/batches.py replays the original comparison (batches of 10, 100 and
1000 requests, timed) with these workloads.
"""

import logging
import random

import gevent
from locust import FastHttpUser, constant, events, run_single_user
from locust.runners import WorkerRunner
from locust.stats import StatsEntry

# naive recursion makes ~1.6**n calls: n=25 measured ~20 ms of CPU per request
NAIVE_N = 25
SEQUENCE_N = 1000
IO_MS = 100
FANOUT_CALLS = 8
# n for /fib/<n>?method=doubling in the mix: the edges (0, 1, 2), the last
# value below 2**64 and the first above it, and the app's default limit
DOUBLING_NS = (0, 1, 2, 10, 93, 94, 1000, 5000, 20000)
# request_type of the entries loadtests/batches.py records for whole batches,
# and loadtests/jobs.py for whole jobs: not requests, left out of the thresholds
BATCH = "BATCH"
JOB = "JOB"


def _fibonacci_strings(count: int) -> list[str]:
    """F(0) .. F(count - 1) as decimal strings, computed here and not by the app."""
    values, current, following = [], 0, 1
    while len(values) < count:
        values.append(str(current))
        current, following = following, current + following
    return values


_TABLE = _fibonacci_strings(max(DOUBLING_NS) + 1)
# the checker checks itself against well-known values first
assert _TABLE[25] == "75025" and _TABLE[93] == "12200160415121876738"
EXPECTED_SEQUENCE = _TABLE[:SEQUENCE_N]
EXPECTED = {n: _TABLE[n] for n in (*DOUBLING_NS, NAIVE_N)}
del _TABLE


def _get_checked(user, path: str, name: str, check) -> None:
    """GET path; a non-200 status or an answer ``check`` objects to is a failure."""
    with user.client.get(path, name=name, catch_response=True) as resp:
        if resp.status_code != 200:
            # status 0: no answer at all (refused, reset, timed out)
            resp.failure(f"HTTP {resp.status_code}" if resp.status_code else repr(resp.error))
            return
        try:
            problem = check(resp.json())
        except (ValueError, KeyError, TypeError) as exc:
            problem = f"unreadable answer: {exc!r}"
        if problem:
            resp.failure(problem)


def _fib_check(n: int, method: str):
    def check(body) -> str | None:
        if body["n"] != n or body["method"] != method:
            return f"asked for F({n}) by {method}, got F({body['n']}) by {body['method']}"
        if body["value"] != EXPECTED[n]:
            return f"wrong value for F({n}): {body['value'][:40]}"
        return None

    return check


def naive_fib(user) -> None:
    """CPU-bound: exponential recursion in the app, the GIL held throughout."""
    path = f"/fib/{NAIVE_N}?method=naive"
    _get_checked(user, path, "/fib/[n]?method=naive", _fib_check(NAIVE_N, "naive"))


def doubling_fib(user) -> None:
    """Cheap big-integer arithmetic on a random n; one stats row for every n."""
    n = random.choice(DOUBLING_NS)
    path = f"/fib/{n}?method=doubling"
    _get_checked(user, path, "/fib/[n]?method=doubling", _fib_check(n, "doubling"))


def sequence(user) -> None:
    """The original comparison's request: the first 1000 Fibonacci numbers."""

    def check(body) -> str | None:
        values = body["values"]
        if values != EXPECTED_SEQUENCE:
            pairs = enumerate(zip(values, EXPECTED_SEQUENCE, strict=False))
            wrong = next((i for i, (a, b) in pairs if a != b), min(len(values), SEQUENCE_N))
            return f"wrong sequence from index {wrong} ({len(values)} values)"
        return None

    _get_checked(user, f"/fib/sequence?n={SEQUENCE_N}", "/fib/sequence?n=[n]", check)


def io(user) -> None:
    """I/O-bound: the app sleeps, the GIL released, as while waiting on a database."""

    def check(body) -> str | None:
        if body["ms"] != IO_MS or body["slept_ms"] < IO_MS:
            return f"asked for {IO_MS} ms of sleep, got {body['ms']} ms ({body['slept_ms']})"
        return None

    _get_checked(user, f"/io?ms={IO_MS}", "/io?ms=[ms]", check)


def fanout(user) -> None:
    """Thread fan-out: one request waits on several sleeps in the app's thread pool."""

    def check(body) -> str | None:
        if body["calls"] != FANOUT_CALLS or body["ms"] != IO_MS or body["elapsed_ms"] < IO_MS:
            return f"asked for {FANOUT_CALLS} calls of {IO_MS} ms, got {body}"
        return None

    path = f"/fanout?calls={FANOUT_CALLS}&ms={IO_MS}"
    _get_checked(user, path, "/fanout?calls=[calls]&ms=[ms]", check)


class FibUser(FastHttpUser):
    """A client of the Fibonacci app (FastHttpUser: the generator stays cheap)."""

    abstract = True
    # the nginx + uWSGI stack as `wsgistack up uwsgi` starts it, so that a bare
    # `locust -f loadtests/fib.py` has a target; --host (or locust.conf) wins
    host = "http://127.0.0.1:8080"
    # closed loop: each user sends its next request as soon as it has an answer,
    # so users = requests in flight and throughput is the server's to show
    wait_time = constant(0)


class CpuUser(FibUser):
    tasks = [naive_fib]


class SequenceUser(FibUser):
    tasks = [sequence]


class IoUser(FibUser):
    tasks = [io]


class FanoutUser(FibUser):
    tasks = [fanout]


class MixUser(FibUser):
    tasks = {doubling_fib: 4, io: 3, sequence: 2, naive_fib: 1, fanout: 1}


@events.init.add_listener
def _fresh_clock(environment, **kwargs):
    """gevent's loop keeps the time of its last turn; after slow imports (a busy
    machine, a cold container) --run-time would count from then and end the run
    before a request is sent. Fired before the run-time timer is set."""
    gevent.get_hub().loop.update_now()


@events.init_command_line_parser.add_listener
def _add_thresholds(parser) -> None:
    group = parser.add_argument_group("pass/fail thresholds (loadtests/fib.py)")
    group.add_argument(
        "--max-fail-ratio",
        type=float,
        default=0.01,
        help="exit 1 if more than this fraction of requests failed (default 0.01)",
    )
    group.add_argument(
        "--max-p95-ms",
        type=float,
        default=1000,
        help="exit 1 if the 95th percentile response time exceeds this (0: no limit)",
    )


def request_totals(stats) -> StatsEntry:
    """All requests together, without the whole-batch (batches.py) and whole-job
    (jobs.py) timings."""
    total = StatsEntry(stats, "Requests", "", use_response_times_cache=False)
    for (_, method), entry in stats.entries.items():
        if method not in (BATCH, JOB):
            total.extend(entry)
    return total


def broken_thresholds(total: StatsEntry, max_fail_ratio: float, max_p95_ms: float) -> list[str]:
    """What the run broke, in words; empty when it passed."""
    if total.num_requests == 0:
        return ["no request was made"]
    broken = []
    if total.fail_ratio > max_fail_ratio:
        broken.append(f"failure ratio {total.fail_ratio:.2%} > {max_fail_ratio:.2%}")
    p95 = total.get_response_time_percentile(0.95)
    if max_p95_ms and p95 > max_p95_ms:
        broken.append(f"p95 {p95:.0f} ms > {max_p95_ms:.0f} ms")
    return broken


@events.quitting.add_listener
def _check_thresholds(environment, **_kwargs) -> None:
    options = environment.parsed_options
    # workers report to the master, which judges the whole run; the web UI
    # can quit without a test ever having run
    if isinstance(environment.runner, WorkerRunner) or options is None or not options.headless:
        return
    broken = broken_thresholds(
        request_totals(environment.stats), options.max_fail_ratio, options.max_p95_ms
    )
    for reason in broken:
        logging.error("threshold broken: %s", reason)
    environment.process_exit_code = 1 if broken else 0


if __name__ == "__main__":
    # python loadtests/fib.py [--host URL] [UserClass]: one user, every request printed
    import sys

    chosen = [a for a in sys.argv[1:] if a in globals() and not a.startswith("-")]
    user_class = globals()[chosen[0]] if chosen else CpuUser
    user_class.host = user_class.host or "http://127.0.0.1:8080"
    run_single_user(user_class, include_length=True, include_time=True)
