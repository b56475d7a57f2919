"""Locust scenario for the job queue: submit a job, poll it until done, check it.

Against a stack with the jobs profile up (docs/jobs.md):

    docker compose --profile uwsgi --profile jobs up -d --wait
    locust -f loadtests/jobs.py --host http://127.0.0.1:8080 --headless -u 8 -t 30s
    python loadtests/jobs.py --host http://127.0.0.1:8080      # one user, debugging

JobUser, in a closed loop: POST /jobs/fib (a naive Fibonacci, CPU for tens of
milliseconds, or a large one by doubling or iteration), then GET its Location
every POLL_SECONDS until the job is done or failed. A job counts as good when
it is done with the right value, computed here independently of the app; a
failed job, a wrong value, a refused submission (503: the queue full or away)
or a job not done within --job-timeout seconds is a failure.

Besides the requests themselves ("/jobs/fib", "/jobs/[id]"), each job is
recorded as a JOB statistic, "submitted to done": its response time is the
job's whole time, queue included, which is what the user waits for. The
pass/fail thresholds of fib.py (--max-fail-ratio, --max-p95-ms) judge the
requests; --max-job-p95-s judges the jobs.
"""

import logging
import random
import sys
import time

import fib
import gevent
from locust import FastHttpUser, constant, events, run_single_user, task
from locust.runners import WorkerRunner

# seconds between two polls of a running job
POLL_SECONDS = 0.25
# the jobs: naive recursion of ~1.6**n calls (27: ~50 ms of CPU), and large
# numbers by the two linear methods (beyond the synchronous routes' 20000)
JOBS = (("naive", 22), ("naive", 27), ("doubling", 50000), ("iterative", 30000))
# request_type of the whole-job statistics (left out of fib.py's thresholds)
JOB = fib.JOB


def _fibonacci(n: int) -> str:
    """F(n) as a decimal string, by plain iteration: independent of the app."""
    current, following = 0, 1
    for _ in range(n):
        current, following = following, current + following
    return str(current)


# the values may have more digits than Python formats by default (4300)
sys.set_int_max_str_digits(0)
EXPECTED = {n: _fibonacci(n) for _, n in JOBS}
# the checker checks itself first
assert EXPECTED[22] == "17711" and len(EXPECTED[50000]) == 10450


class JobUser(FastHttpUser):
    """A client that hands CPU-heavy work to the job queue and waits for it."""

    host = "http://127.0.0.1:8080"
    # closed loop: the next job once the previous one is done
    wait_time = constant(0)

    @task
    def job(self) -> None:
        method, n = random.choice(JOBS)
        started = time.perf_counter()
        location, problem = self.submit(n, method)
        if location is not None:
            problem = self.wait_for(location, n, method)
        events.request.fire(
            request_type=JOB,
            name="submitted to done",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=RuntimeError(problem) if problem else None,
            context={},
        )

    def submit(self, n: int, method: str) -> tuple[str | None, str | None]:
        """POST the job; its Location, or why not."""
        with self.client.post(
            "/jobs/fib", json={"n": n, "method": method}, name="/jobs/fib", catch_response=True
        ) as resp:
            if resp.status_code != 202 or not resp.headers.get("Location"):
                problem = f"submission: HTTP {resp.status_code or repr(resp.error)}"
                resp.failure(problem)
                return None, problem
            return resp.headers["Location"], None

    def wait_for(self, location: str, n: int, method: str) -> str | None:
        """Poll until done or failed; what is wrong with the outcome, if anything."""
        deadline = time.monotonic() + self.environment.parsed_options.job_timeout
        while time.monotonic() < deadline:
            with self.client.get(location, name="/jobs/[id]", catch_response=True) as resp:
                if resp.status_code != 200:
                    resp.failure(f"HTTP {resp.status_code or repr(resp.error)}")
                    return f"status: HTTP {resp.status_code}"
                body = resp.json()
            if body["state"] == "done":
                if (body["n"], body["method"]) != (n, method):
                    return f"asked for F({n}) by {method}, got F({body['n']}) by {body['method']}"
                if body["value"] != EXPECTED[n]:
                    return f"wrong value for F({n}): {body['value'][:40]}"
                return None
            if body["state"] == "failed":
                return f"job failed: {body['error']}"
            gevent.sleep(POLL_SECONDS)
        return f"not done within {self.environment.parsed_options.job_timeout:g} s"


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    group = parser.add_argument_group("jobs (loadtests/jobs.py)")
    group.add_argument(
        "--job-timeout",
        type=float,
        default=60,
        help="seconds a job may take, submitted to done, before it counts as failed",
    )
    group.add_argument(
        "--max-job-p95-s",
        type=float,
        default=0,
        help="exit 1 if the jobs' 95th percentile, submitted to done, exceeds this (0: no limit)",
    )


@events.quitting.add_listener
def _check_jobs(environment, **_kwargs) -> None:
    """Every job good, and (if asked) fast enough; fib.py judges the requests."""
    options = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner) or options is None or not options.headless:
        return
    jobs = environment.stats.get("submitted to done", JOB)
    broken = []
    if jobs.num_requests == 0:
        broken.append("no job was done")
    elif jobs.num_failures:
        broken.append(f"{jobs.num_failures} of {jobs.num_requests} jobs failed")
    p95 = jobs.get_response_time_percentile(0.95) / 1000 if jobs.num_requests else 0
    if options.max_job_p95_s and p95 > options.max_job_p95_s:
        broken.append(f"jobs' p95 {p95:.1f} s > {options.max_job_p95_s:g} s")
    for reason in broken:
        logging.error("threshold broken: %s", reason)
    if broken:
        environment.process_exit_code = 1


if __name__ == "__main__":
    # python loadtests/jobs.py [--host URL]: one user, every request printed
    run_single_user(JobUser, include_length=True, include_time=True)
