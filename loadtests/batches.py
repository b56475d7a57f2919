"""Replay of the original comparison: how long do 10, 100 and 1000 requests take?

    locust -f loadtests/batches.py --host http://127.0.0.1:8083 --headless SequenceBatchUser
    locust -f loadtests/batches.py --host http://127.0.0.1:8080 --headless IoBatchUser \
        --batch-sizes 10,100 --batch-users 10

Name one class: SequenceBatchUser, IoBatchUser or CpuBatchUser (the workloads of
loadtests/fib.py, answers checked the same way).

What a batch is: N requests sent by --batch-users concurrent users (default
10, as `ab -n N -c 10` would), each user sending its next request as soon as
its previous one is answered, until N have been sent. A batch's time runs from
its first request being sent to its last answer being received. Batches run
one after another, each starting about a second after the previous one ended
(one tick of the shape below, which lets the server settle); after the last one
the test stops.

Each batch's time is recorded as a Locust statistic of type BATCH named
"N requests" (a size given again: "N requests #2", #3, ...: repeats, for
their spread; the --batch-warmup batch is "warm-up: N requests"); its response
time is the batch's time in ms, a failure if any of its requests failed, so it
appears in the console summary, the CSV and the HTML report beside the
requests' own rows; the pass/fail thresholds of fib.py leave those rows out.

This lives in its own locustfile because Locust always applies the load shape
a locustfile defines: in fib.py it would take over every run.
"""

import logging
import time

import fib
from gevent.event import Event
from locust import LoadTestShape, events

log = logging.getLogger("batches")


class Batch:
    """N requests: hands out N tickets, times the first send to the last answer."""

    # the batch being sent, or None between batches; greenlets of one process
    # share it (a distributed run would need one per worker: not supported)
    current: "Batch | None" = None
    # set while tickets are left, so idle users wake together when a batch opens
    open = Event()
    # batches of each size recorded so far, so repeats get their own statistic
    recorded: dict[int, int] = {}

    def __init__(self, size: int, environment, warmup: bool = False) -> None:
        self.size = size
        self.warmup = warmup
        self.environment = environment
        self.sent = 0
        self.answered = 0
        self.failed = 0
        self.started: float | None = None
        self.seconds: float | None = None

    @classmethod
    def start(cls, size: int, environment, warmup: bool = False) -> "Batch":
        cls.current = cls(size, environment, warmup)
        cls.open.set()
        return cls.current

    def take(self) -> bool:
        if self.sent >= self.size:
            return False
        if self.started is None:
            self.started = time.perf_counter()
        self.sent += 1
        if self.sent == self.size:
            Batch.open.clear()
        return True

    def answer(self) -> None:
        self.answered += 1
        if self.answered == self.size:
            self.seconds = time.perf_counter() - self.started
            self._record()

    def _record(self) -> None:
        failures = f", {self.failed} failed" if self.failed else ""
        log.info("batch of %d requests: %.3f s%s", self.size, self.seconds, failures)
        if self.warmup:
            name = f"warm-up: {self.size} requests"
        else:
            count = Batch.recorded[self.size] = Batch.recorded.get(self.size, 0) + 1
            name = f"{self.size} requests" + (f" #{count}" if count > 1 else "")
        self.environment.events.request.fire(
            request_type=fib.BATCH,
            name=name,
            response_time=self.seconds * 1000,
            response_length=0,
            exception=RuntimeError(f"{self.failed} of {self.size} failed") if self.failed else None,
            context={},
        )

    @property
    def done(self) -> bool:
        return self.seconds is not None


@events.request.add_listener
def _count_failures(request_type, exception=None, **_kwargs) -> None:
    batch = Batch.current
    if batch is not None and request_type != fib.BATCH and exception is not None:
        batch.failed += 1


def batched(task):
    """Run ``task`` only with a ticket of the current batch; otherwise wait for one."""

    def run(user) -> None:
        batch = Batch.current
        if batch is None or not batch.take():
            Batch.open.wait(timeout=1.0)
            return
        try:
            task(user)
        finally:
            batch.answer()

    run.__name__ = task.__name__
    return run


class SequenceBatchUser(fib.FibUser):
    tasks = [batched(fib.sequence)]


class IoBatchUser(fib.FibUser):
    tasks = [batched(fib.io)]


class CpuBatchUser(fib.FibUser):
    tasks = [batched(fib.naive_fib)]


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    group = parser.add_argument_group("batch replay (loadtests/batches.py)")
    group.add_argument(
        "--batch-sizes",
        default="10,100,1000",
        help="requests per batch, comma-separated, run in this order (default 10,100,1000)",
    )
    group.add_argument(
        "--batch-users",
        type=int,
        default=10,
        help="concurrent users sending each batch (default 10)",
    )
    group.add_argument(
        "--batch-warmup",
        type=int,
        default=0,
        help="first send one batch of this many requests, recorded apart as "
        '"warm-up: N requests": connections opened, every process warm (default 0: none)',
    )


class ComparisonReplay(LoadTestShape):
    """Start --batch-users users, then run the batches one after another; stop after the last."""

    def __init__(self) -> None:
        super().__init__()
        # (size, warm-up?) of the batches still to run
        self.pending: list[tuple[int, bool]] | None = None

    def tick(self):
        options = self.runner.environment.parsed_options
        users = options.batch_users
        if self.pending is None:
            sizes = [int(size) for size in options.batch_sizes.split(",") if size.strip()]
            warmup = [(options.batch_warmup, True)] if options.batch_warmup > 0 else []
            self.pending = warmup + [(size, False) for size in sizes]
        # open a batch only once every user is there, so none starts short-handed
        if self.get_current_user_count() < users:
            return users, users
        batch = Batch.current
        if batch is None or batch.done:
            if not self.pending:
                return None
            size, warmup = self.pending.pop(0)
            Batch.start(size, self.runner.environment, warmup)
        return users, users
