"""What the servers say about themselves during a run: the listen queue and
the busy slots, read from the stack's own metrics endpoint (METRICS_PORT:
wsgistack/exporter.py) a few times a second, beside the load generator's
figures. A run whose queue held requests most of the time was saturated:
requests waited for a slot, whatever its requests/s say (answer.py uses it)."""

from __future__ import annotations

import contextlib
import statistics
import threading
import urllib.request
from collections.abc import Iterator

from wsgistack.bench.results import Result

# no proxy from the environment: the metrics port is on this machine
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def parse(text: str) -> tuple[float, float | None]:
    """(connections queued, share of the slots busy) from one scrape: the
    fullest of the kernel's and uWSGI's own listen queue figures (uWSGI's
    own is the one that sees its HTTP socket in uwsgi-direct)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        metric = name.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            if metric in ("server_listen_queue", "uwsgi_listen_queue"):
                values[metric] = values.get(metric, 0.0) + float(value)
            elif metric in ("app_requests_in_flight", "server_worker_slots"):
                values[metric] = float(value)
    queued = max(values.get("server_listen_queue", 0.0), values.get("uwsgi_listen_queue", 0.0))
    slots = values.get("server_worker_slots")
    in_flight = values.get("app_requests_in_flight")
    busy = in_flight / slots if slots and in_flight is not None else None
    return queued, busy


class Watch:
    """Scrapes ``url`` every INTERVAL seconds until stopped."""

    INTERVAL = 0.25

    def __init__(self, url: str) -> None:
        self.url = url
        self.queued: list[float] = []
        self.busy: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="server-metrics", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, ValueError):
                with _DIRECT.open(self.url, timeout=2) as answer:
                    queued, busy = parse(answer.read().decode())
                self.queued.append(queued)
                if busy is not None:
                    self.busy.append(busy)
            self._stop.wait(self.INTERVAL)

    def apply(self, result: Result) -> None:
        """The run's figures into its result; nothing if nothing was read."""
        if self.queued:
            result.queue_peak = int(max(self.queued))
            result.queue_median = statistics.median(self.queued)
        if self.busy:
            result.busy_slots = statistics.fmean(self.busy)


@contextlib.contextmanager
def watch(url: str) -> Iterator[Watch]:
    """A Watch of the stack's metrics for the ``with`` block; an empty one
    (no figures) for a stack without a metrics endpoint in reach."""
    watcher = Watch(url)
    if url:
        watcher._thread.start()
    try:
        yield watcher
    finally:
        watcher._stop.set()
        if url:
            watcher._thread.join()
