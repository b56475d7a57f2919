"""Metrics end to end: the uwsgi and apache profiles with the metrics profile,
one compose project for the whole module, Prometheus scraping every second
and alerting after 6 s (SCRAPE_INTERVAL, ALERT_FOR: the shipped defaults are
15 and 300).

In order, on that one started stack: every target up and the app's counter
exactly N on both stacks, workers recycled meanwhile (MAX_REQUESTS); no
metrics or status port reachable from outside; 10,000 distinct URLs adding no
series; then every alert driven into firing for real (a stuck request, an
overload burst, requests cut by the timeout, a hung exporter), read from
Prometheus' API. The rules' unit tests are tests/prometheus/ (fast).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.integration.compose import build_images, compose, docker, engine_problem
from wsgistack.runner import find_free_port, http_get
from wsgistack.wait import wait_until

PROJECT = "wsgistack-test-metrics"
PROFILES = ("--profile", "uwsgi", "--profile", "apache", "--profile", "metrics")
# two slots per stack (processes of one thread: uWSGI's harakiri is exact
# so), a short timeout, workers recycled every 25 requests
KNOBS = {
    "WSGI_PROCESSES": "2",
    "WSGI_THREADS": "1",
    "REQUEST_TIMEOUT": "3",
    "STOP_GRACE_PERIOD": "18s",
    "LISTEN_BACKLOG": "16",
    "MAX_REQUESTS": "25",
    "FLASK_IO_MAX_MS": "60000",
    "SCRAPE_INTERVAL": "1",
    "ALERT_FOR": "6",
    "RESTART_POLICY": "no",
}
# the scrape targets of uwsgi + apache + metrics: job -> instances
JOBS = {"uwsgi": 1, "nginx": 1, "apache": 1, "apache-status": 1, "prometheus": 1}
N = 120


@dataclass
class Stack:
    ports: dict[str, int]

    def url(self, stack: str) -> str:
        return f"http://127.0.0.1:{self.ports[stack]}"

    def query(self, promql: str) -> list[dict]:
        url = f"{self.url('prometheus')}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, body = http_get(url, timeout=5)
        assert status == 200, body
        return json.loads(body)["data"]["result"]

    def value(self, promql: str) -> dict[str, float]:
        """{job: value} of an instant query."""
        return {r["metric"].get("job", ""): float(r["value"][1]) for r in self.query(promql)}

    def alerts(self) -> list[dict]:
        status, body = http_get(f"{self.url('prometheus')}/api/v1/alerts", timeout=5)
        assert status == 200, body
        return json.loads(body)["data"]["alerts"]


def metrics_compose(*args: str, env: dict[str, str], timeout: float = 180, check: bool = True):
    return compose(*PROFILES, *args, project=PROJECT, env=env, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    problem = engine_problem()
    if problem:
        pytest.skip(problem)
    build_images(cpython=False)
    ports = {name: find_free_port() for name in ("uwsgi", "apache", "prometheus")}
    env = {
        **KNOBS,
        "UWSGI_HTTP_PORT": str(ports["uwsgi"]),
        "APACHE_HTTP_PORT": str(ports["apache"]),
        "UWSGI_HTTPS_PORT": str(find_free_port()),
        "APACHE_HTTPS_PORT": str(find_free_port()),
        "PROMETHEUS_PORT": str(ports["prometheus"]),
    }
    metrics_compose("down", "--volumes", "--timeout", "5", env=env, check=False)
    result = metrics_compose("up", "--detach", "--wait", env=env, check=False)
    if result.returncode != 0:
        logs = metrics_compose("logs", "--no-color", "--tail", "30", env=env, check=False)
        metrics_compose("down", "--volumes", "--timeout", "5", env=env, check=False)
        pytest.fail(f"compose up failed: {result.stderr[-3000:]}\n{logs.stdout[-6000:]}")
    try:
        yield Stack(ports)
    finally:
        metrics_compose("down", "--volumes", "--timeout", "10", env=env, check=False)


def container(service: str) -> str:
    # the profiles named: compose knows a service of an inactive profile as no service
    ids = compose(*PROFILES, "ps", "--quiet", service, project=PROJECT).stdout.split()
    assert ids, f"no container for {service}"
    return ids[0]


def get_many(base_url: str, paths: list[str], clients: int = 8) -> list[int]:
    """GET every path, ``clients`` keep-alive connections at once; the statuses."""
    host, port = urllib.parse.urlsplit(base_url).netloc.split(":")
    chunks = [paths[i::clients] for i in range(clients)]

    def run(chunk: list[str]) -> list[int]:
        statuses = []
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        for path in chunk:
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                statuses.append(0)
        conn.close()
        return statuses

    with ThreadPoolExecutor(clients) as pool:
        return [status for result in pool.map(run, chunks) for status in result]


# kill -9 the first process of a container whose command line has MARKER
KILL = """
import os, pathlib, signal, sys
for proc in sorted(pathlib.Path("/proc").glob("[0-9]*"), key=lambda p: int(p.name)):
    try:
        found = sys.argv[1].encode() in (proc / "cmdline").read_bytes()
        if found and int(proc.name) != os.getpid():
            os.kill(int(proc.name), signal.SIGKILL)
            print(proc.name)
            break
    except OSError:
        pass
"""
# the resident MB of the processes whose command line has MARKER
RSS = """
import os, pathlib, sys
for proc in pathlib.Path("/proc").glob("[0-9]*"):
    try:
        found = sys.argv[1].encode() in (proc / "cmdline").read_bytes()
        if found and int(proc.name) != os.getpid():
            status = (proc / "status").read_text().splitlines()
            kb = [int(line.split()[1]) for line in status if line.startswith("VmRSS:")]
            print(proc.name, kb[0] // 1024)
    except (OSError, IndexError):
        pass
"""
# how each stack's workers are replaced between the thirds of the requests:
# recycled (uWSGI's chain reload through its master FIFO: MAX_REQUESTS waits
# for uWSGI's min-worker-lifetime of 10 s; mod_wsgi's maximum-requests=25
# recycles the daemons meanwhile), then one killed
RECYCLE = {"uwsgi": ["sh", "-c", "echo c > /tmp/wsgistack/uwsgi.fifo"], "apache": None}
# mod_wsgi writes its display-name over argv[0], which is as long as the
# command ran ("apache2" in the image): "(wsgi:app)" shows as "(wsgi:a"
KILLED = {"uwsgi": "uWSGI worker", "apache": "(wsgi:a"}
RESPAWNS = "sum by (job) (uwsgi_worker_respawns_total)"
SERVICE = {"uwsgi": "uwsgi-app", "apache": "apache"}


def test_every_target_is_up_and_the_counter_is_exactly_n_across_recycling(stack: Stack):
    """N requests to each stack in thirds, the workers recycled after the
    first and one killed after the second: the app's counter of that route
    says N on both, every target is up, and the dead workers' files are
    folded into the archive, not left behind."""
    for name in ("uwsgi", "apache"):
        paths = [f"/fib/{i}" for i in range(N)]
        statuses = get_many(stack.url(name), paths[: N // 3], clients=4)
        if RECYCLE[name]:
            docker("exec", container(SERVICE[name]), *RECYCLE[name])
            # the chain reload done: both workers replaced, one after the other
            wait_until(
                lambda: stack.value(RESPAWNS).get("uwsgi", 0) >= 2,
                timeout=20,
                interval=0.3,
                what="both uWSGI workers respawned",
            )
        statuses += get_many(stack.url(name), paths[N // 3 : 2 * N // 3], clients=4)
        killed = docker("exec", container(SERVICE[name]), "python3", "-c", KILL, KILLED[name])
        assert killed.stdout.strip(), f"no {KILLED[name]} in {name}"
        statuses += get_many(stack.url(name), paths[2 * N // 3 :], clients=4)
        assert statuses == [200] * N, name
    counted = 'sum by (job) (app_requests_total{route="/fib/<n>"})'
    want = {"uwsgi": N, "apache": N}
    wait_until(
        lambda: stack.value(counted) == want,
        timeout=30,
        interval=0.5,
        what=f"the app's counter at {want}",
        detail=lambda: stack.value(counted),
    )
    up = {}
    for result in stack.query("up"):
        up.setdefault(result["metric"]["job"], []).append(float(result["value"][1]))
    assert up == {job: [1.0] * count for job, count in JOBS.items()}
    # uWSGI counts the respawns itself: two recycled, one killed
    wait_until(
        lambda: stack.value(RESPAWNS).get("uwsgi", 0) >= 3,
        timeout=15,
        interval=0.5,
        what="three uWSGI respawns counted",
        detail=lambda: stack.value(RESPAWNS),
    )

    # one file per live worker and kind, and the archive: none of the dead
    # ones once the next scrape has folded them
    def files() -> list[str]:
        return docker("exec", container("uwsgi-app"), "ls", "/tmp/wsgistack/metrics").stdout.split()

    wait_until(
        lambda: len(files()) <= 2 * 3 + 2,
        timeout=10,
        interval=0.5,
        what="dead files folded",
        detail=lambda: str(files()),
    )
    assert {"counter_archive.db", "histogram_archive.db"} <= set(files())
    # what the exporter process weighs beside uWSGI's master
    rss = docker("exec", container("uwsgi-app"), "python3", "-c", RSS, "wsgistack.exporter")
    print(f"uwsgi-app's exporter: {rss.stdout.strip()} MB resident")


def test_no_metrics_or_status_port_is_reachable_from_outside(stack: Stack):
    """Published are the stacks' HTTP(S) ports and Prometheus', on the
    host's loopback; through them no status or metrics path answers."""
    published = {}
    for service in (
        "uwsgi-app",
        "uwsgi-nginx",
        "uwsgi-nginx-exporter",
        "apache",
        "apache-exporter",
        "prometheus",
    ):
        ports = json.loads(
            docker(
                "inspect", "--format", "{{json .NetworkSettings.Ports}}", container(service)
            ).stdout
        )
        published[service] = sorted(
            (port, b["HostIp"]) for port, bindings in ports.items() for b in bindings or []
        )
    assert published["uwsgi-app"] == []
    assert published["uwsgi-nginx-exporter"] == published["apache-exporter"] == []
    assert {port for port, _ in published["uwsgi-nginx"]} == {"8080/tcp", "8443/tcp"}
    assert {port for port, _ in published["apache"]} == {"8081/tcp", "8443/tcp"}
    assert published["prometheus"] == [("9090/tcp", "127.0.0.1")]
    assert all(ip == "127.0.0.1" for ports in published.values() for _, ip in ports)
    for name in ("uwsgi", "apache"):
        for path in ("/metrics", "/stub_status", "/server-status", "/server-status?auto"):
            status, body = http_get(stack.url(name) + path, timeout=5)
            assert status in (403, 404), (name, path, status)
            assert b"app_requests" not in body and b"Scoreboard" not in body


def test_ten_thousand_distinct_urls_add_no_series(stack: Stack):
    """Every label is bounded: routes are URL rules, never URLs, and no
    query string or ID reaches a label."""
    series = 'count by (job) ({__name__=~"app_.+", job="uwsgi"})'
    # one request of each kind first, scraped, so that "before" has their series
    assert get_many(stack.url("uwsgi"), ["/fib/1?id=x", "/nope/x"], clients=1) == [200, 404]
    unmatched = 'sum(app_requests_total{job="uwsgi", route="<unmatched>", status="404"})'
    known = stack.value(unmatched).get("", 0)
    wait_until(
        lambda: stack.value(unmatched).get("", 0) > known,
        timeout=20,
        interval=0.5,
        what="the first 404 scraped",
    )
    before = stack.value(series)
    paths = [f"/fib/{i}?id={i}" for i in range(5000)] + [f"/nope/{i}" for i in range(5000)]
    statuses = get_many(stack.url("uwsgi"), paths, clients=8)
    assert len(statuses) == 10_000 and set(statuses) <= {200, 404, 422}, set(statuses)
    # the 404s are counted, under one route
    wait_until(
        lambda: stack.value(unmatched).get("", 0) >= known + 5001,
        timeout=20,
        interval=0.5,
        what="the 5,000 404s counted",
    )
    after = stack.value(series)
    print(f"app series of uwsgi: before {before}, after 10,000 distinct URLs {after}")
    assert after == before


# what each driven fault fires, on which job
EXPECTED = {
    ("WorkerKilledByTimeout", "uwsgi"),
    ("AppWorkersSaturated", "uwsgi"),
    ("ListenQueueNotEmpty", "uwsgi"),
    ("AppErrorRatioHigh", "apache"),
    ("AppRequestsSlow", "apache"),
    ("TargetDown", "apache-status"),
}


def test_every_alert_fires_when_the_stack_is_driven_into_its_condition(stack: Stack):
    """All faults at once: on uWSGI a request stuck past REQUEST_TIMEOUT
    (harakiri), then a burst of 12 slow requests for 2 slots; on Apache
    requests cut by mod_wsgi's request-timeout (504s, and slow); the Apache
    exporter hung (SIGSTOP). Each alert is read firing from the API."""
    # the 10,000 URLs of the test before may have queued requests a while
    wait_until(
        lambda: not [a for a in stack.alerts() if a["state"] == "firing"],
        timeout=30,
        interval=0.5,
        what="no alert firing before the faults",
    )
    stop = threading.Event()

    def keep_sending(base_url: str, path: str) -> None:
        while not stop.is_set():
            get_many(base_url, [path], clients=1)

    start = time.monotonic()
    seen: dict[tuple[str, str], float] = {}
    threads = [threading.Thread(target=get_many, args=(stack.url("uwsgi"), ["/io?ms=8000"], 1))]
    threads += [
        threading.Thread(target=keep_sending, args=(stack.url("uwsgi"), "/io?ms=1500"))
        for _ in range(12)
    ]
    threads += [
        threading.Thread(target=keep_sending, args=(stack.url("apache"), "/io?ms=5000"))
        for _ in range(2)
    ]
    exporter = container("apache-exporter")
    try:
        threads[0].start()
        time.sleep(0.5)  # the stuck request takes a worker before the burst queues
        for thread in threads[1:]:
            thread.start()
        # hung: stopped by SIGSTOP from the host (docker pause needs the
        # cgroup freezer, which this engine does not always have)
        docker("kill", "--signal", "SIGSTOP", exporter)

        def all_fired() -> bool:
            for alert in stack.alerts():
                key = (alert["labels"]["alertname"], alert["labels"].get("job", ""))
                if alert["state"] == "firing" and key not in seen:
                    seen[key] = time.monotonic() - start
            return set(seen) >= EXPECTED

        wait_until(
            all_fired,
            timeout=120,
            interval=0.5,
            what="every alert firing",
            detail=lambda: f"fired so far: {seen}",
        )
    finally:
        stop.set()
        docker("kill", "--signal", "SIGCONT", exporter, check=False)
        for thread in threads:
            if thread.is_alive() or thread.ident is not None:
                thread.join(timeout=30)
    for (alert, job), after in sorted(seen.items(), key=lambda item: item[1]):
        print(f"{alert} on {job}: firing {after:.1f} s after the faults began")
