"""Every app server's metrics endpoint, natively (`wsgistack up`): the app's
counter exact while workers are replaced (a reload halfway, and MAX_REQUESTS
where the server recycles that soon), the server's own figures beside it, and
the proxies' status pages on their internal port.
The compose stacks with Prometheus and the alerts: test_metrics.py."""

from __future__ import annotations

import pytest

from tests.integration.targets import make_target
from wsgistack.runner import http_get
from wsgistack.wait import wait_until

N = 60
# workers recycled every 10 requests (gunicorn, mod_wsgi; granian has no such
# setting, uWSGI waits for min-worker-lifetime)
OVERRIDES = {"WSGI_PROCESSES": 2, "WSGI_THREADS": 2, "MAX_REQUESTS": 10}
# what each server adds to the app's metrics (wsgistack/exporter.py)
OWN = {
    "uwsgi": ("uwsgi_up 1.0", 'uwsgi_workers{status="idle"}', "uwsgi_worker_respawns_total"),
    "apache": ('server_listen_queue{socket="app"}',),
    "gunicorn": ('server_listen_queue{socket="app"}',),
    "granian": ("granian_metrics_up 1.0", "granian_"),
}
# the proxy's status page on STATUS_PORT, and what it says
STATUS = {
    "uwsgi": ("/stub_status", b"Active connections"),
    "apache": ("/server-status?auto", b"BusyWorkers"),
}


def sample(text: str, prefix: str) -> float:
    return sum(
        float(line.rpartition(" ")[2]) for line in text.splitlines() if line.startswith(prefix)
    )


@pytest.mark.parametrize("name", list(OWN))
def test_the_app_servers_metrics_count_exactly_across_recycling(name, tmp_path):
    target = make_target(name, tmp_path / f"{name}.log", OVERRIDES)
    try:
        target.start()
        for i in range(N):
            if i == N // 2:
                # every worker replaced, as an operator's reload does it
                target.reload()
            status, _ = http_get(f"{target.base_url}/fib/{i}", timeout=10)
            assert status == 200
        url = f"http://127.0.0.1:{target.settings.METRICS_PORT}/metrics"
        counted = 'app_requests_total{method="GET",route="/fib/<n>",status="200"}'

        def scrape() -> str:
            status, body = http_get(url, timeout=5)
            assert status == 200, body
            return body.decode()

        wait_until(
            lambda: sample(scrape(), counted) == N,
            timeout=15,
            interval=0.3,
            what=f"{name}: the app's counter at {N}",
            ignore=(OSError,),
            detail=lambda: f"{sample(scrape(), counted)}\n{target.log_tail()}",
        )
        text = scrape()
        assert sample(text, "server_worker_slots") == 4
        assert sample(text, "app_request_timeout_seconds") == target.settings.REQUEST_TIMEOUT
        for expected in OWN[name]:
            assert expected in text, (name, expected)
        if name == "uwsgi":
            # the chain reload respawned both workers (MAX_REQUESTS does not
            # recycle a worker younger than uWSGI's min-worker-lifetime, 10 s)
            wait_until(
                lambda: sample(scrape(), "uwsgi_worker_respawns_total") >= 2,
                timeout=15,
                interval=0.3,
                what="both uWSGI workers respawned",
            )
        if name in STATUS:
            path, says = STATUS[name]
            status, body = http_get(f"http://127.0.0.1:{target.settings.STATUS_PORT}{path}")
            assert status == 200 and says in body, body[:300]
    finally:
        target.stop()
