"""wsgistack/bench/server_metrics.py: a scrape of the exporter read into the
listen queue and the busy slots, and a run's figures from its samples."""

from __future__ import annotations

from tests.wsgistack.bench.made_up import run
from wsgistack.bench import server_metrics
from wsgistack.bench.plan import Concurrency as C

SCRAPE = """\
# HELP server_listen_queue Connections waiting in the kernel for the server to accept them.
# TYPE server_listen_queue gauge
server_listen_queue{socket="app"} 3.0
# TYPE uwsgi_listen_queue gauge
uwsgi_listen_queue 5.0
# TYPE app_requests_in_flight gauge
app_requests_in_flight 6.0
server_worker_slots 8.0
app_requests_total{method="GET",route="/up",status="200"} 1234.0
"""


def test_a_scrape_gives_the_fullest_queue_and_the_busy_share():
    assert server_metrics.parse(SCRAPE) == (5.0, 0.75)
    assert server_metrics.parse('server_listen_queue{socket="app"} 0\n') == (0.0, None)


def test_a_run_gets_the_peak_and_median_of_its_samples():
    watch = server_metrics.Watch("")
    watch.queued = [0.0, 4.0, 9.0, 5.0, 0.0]
    watch.busy = [1.0, 0.5]
    result = run("uwsgi", C(2, 1), "io", 100)
    watch.apply(result)
    assert (result.queue_peak, result.queue_median, result.busy_slots) == (9, 4.0, 0.75)
    assert result.saturated


def test_no_endpoint_no_figures():
    result = run("devserver", C(1, 1), "io", 10)
    with server_metrics.watch("") as watch:
        pass
    watch.apply(result)
    assert result.queue_peak is None and not result.saturated
