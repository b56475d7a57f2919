"""What ``wsgistack bench`` and ``wsgistack sizing`` add to any locustfile.

They run ``locust -f THEIR_LOCUSTFILE,wsgistack/locust_probe.py ...``: this file
defines no users, only listeners. It

- once every user has been spawned, waits --probe-warmup seconds (connections
  opened, caches warm), resets Locust's statistics as --reset-stats would, and
  ends the run --probe-seconds later, timed by the running event loop, so
  every run measures the same span of steady load;
- records that span (wall-clock start and end), the CPU time this generator
  process used in it, and the ``Server-Timing`` of every answer in it
  (``cpu;dur=`` and ``app;dur=`` in ms, as app.timing sends them);
- with --probe-accept-encoding, makes every request of the locustfile's users
  carry that Accept-Encoding (Locust's clients ask for gzip unless a request
  says otherwise), and counts the answers that came compressed;
- writes all of it as JSON to --probe-json when Locust quits, with Locust's
  final statistics (its CSV file is written once a second, so it may miss the
  last second).

Locust imports it as a plain file, so it uses Locust and the standard library only.
"""

import json
import re
import time

import gevent
from locust import events

_TIMING = re.compile(r"\b(app|cpu);dur=([0-9.]+)")


class _Probe:
    def __init__(self) -> None:
        self.scheduled = False
        self.started: float | None = None
        self.ended: float | None = None
        self.cpu_start = 0.0
        self.cpu_end = 0.0
        self.timed = 0
        self.app_ms = 0.0
        self.cpu_ms = 0.0
        self.answers = 0
        self.compressed = 0

    def start(self) -> None:
        self.started = time.time()
        self.cpu_start = time.process_time()
        self.timed, self.app_ms, self.cpu_ms = 0, 0.0, 0.0
        self.answers, self.compressed = 0, 0

    def stop(self) -> None:
        if self.started is not None and self.ended is None:
            self.ended = time.time()
            self.cpu_end = time.process_time()

    def summary(self, stats) -> dict:
        span = (self.ended or 0) - (self.started or 0)
        return {
            "total": _entry(stats.total),
            "entries": [_entry(entry) for entry in stats.entries.values()],
            "window_start": self.started,
            "window_end": self.ended,
            "generator_cpu_s": self.cpu_end - self.cpu_start,
            "generator_cores": (self.cpu_end - self.cpu_start) / span if span > 0 else None,
            "server_timing_count": self.timed,
            "app_ms_mean": self.app_ms / self.timed if self.timed else None,
            "cpu_ms_mean": self.cpu_ms / self.timed if self.timed else None,
            "compressed": self.compressed / self.answers if self.answers else None,
        }


def _entry(entry) -> dict:
    return {
        "method": entry.method,
        "name": entry.name,
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "avg_ms": entry.avg_response_time,
        "p50_ms": entry.get_response_time_percentile(0.50),
        "p95_ms": entry.get_response_time_percentile(0.95),
        "p99_ms": entry.get_response_time_percentile(0.99),
    }


probe = _Probe()
# the Environment, kept from the init event for the listeners that get none
_environment = None


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    global _environment
    _environment = environment
    options = environment.parsed_options
    if options is not None and options.probe_accept_encoding:
        _send_accept_encoding(options.probe_accept_encoding)


def _send_accept_encoding(value: str) -> None:
    """Every request of both Locust clients (FastHttpUser's and HttpUser's)
    carries ``Accept-Encoding: value``, whatever the locustfile's users say."""
    from locust.clients import HttpSession
    from locust.contrib.fasthttp import FastHttpSession

    for session in (FastHttpSession, HttpSession):

        def request(self, method, url, *args, _send=session.request, headers=None, **kwargs):
            headers = {**(headers or {}), "Accept-Encoding": value}
            return _send(self, method, url, *args, headers=headers, **kwargs)

        session.request = request


@events.init_command_line_parser.add_listener
def _add_options(parser) -> None:
    # on the parser itself: only Locust's parser knows include_in_web_ui
    parser.add_argument(
        "--probe-json", default="", include_in_web_ui=False, help="write the summary here"
    )
    parser.add_argument(
        "--probe-warmup",
        type=float,
        default=0,
        include_in_web_ui=False,
        help="seconds after all users are spawned before statistics start afresh",
    )
    parser.add_argument(
        "--probe-accept-encoding",
        default="",
        include_in_web_ui=False,
        help="the Accept-Encoding every request carries (default: the locustfile's own)",
    )
    parser.add_argument(
        "--probe-seconds",
        type=float,
        default=0,
        include_in_web_ui=False,
        help="stop this many seconds after the warm-up (0: Locust decides)",
    )


@events.spawning_complete.add_listener
def _on_spawned(user_count, **_kwargs) -> None:
    if probe.scheduled:
        return
    probe.scheduled = True
    options = _environment.parsed_options
    runner = _environment.runner

    def start() -> None:
        if options.probe_warmup:
            runner.stats.reset_all()
        probe.start()
        if options.probe_seconds:
            gevent.spawn_later(options.probe_seconds, runner.quit)

    if options.probe_warmup:
        gevent.spawn_later(options.probe_warmup, start)
    else:
        start()


@events.request.add_listener
def _on_request(response=None, **_kwargs) -> None:
    if probe.started is None or probe.ended is not None or response is None:
        return
    headers = getattr(response, "headers", None)
    if headers is None:
        return
    probe.answers += 1
    probe.compressed += bool(headers.get("Content-Encoding"))
    header = headers.get("Server-Timing")
    if not header:
        return
    values = dict(_TIMING.findall(header))
    if "cpu" in values and "app" in values:
        probe.timed += 1
        probe.app_ms += float(values["app"])
        probe.cpu_ms += float(values["cpu"])


@events.test_stop.add_listener
def _on_stop(**_kwargs) -> None:
    probe.stop()


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs) -> None:
    probe.stop()
    path = environment.parsed_options.probe_json
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(probe.summary(environment.stats), out, indent=1)
