"""The exporter's collectors (wsgistack/exporter.py) on made-up inputs: the
multiprocess files of workers that come and go, uWSGI's stats JSON, the
kernel's listen queues of sockets made here."""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest, values

from app.metrics import AppMetrics
from wsgistack import exporter
from wsgistack.settings import Settings


@pytest.fixture
def workers(tmp_path, monkeypatch):
    """Start a "worker": the app's metrics written to files as process PID
    would write them (prometheus_client's multiprocess values)."""
    monkeypatch.setenv(exporter.MULTIPROC_ENV, str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)

    def start(pid: int) -> AppMetrics:
        monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue(lambda: pid))
        return AppMetrics(None, 30)

    return start


def serve(metrics: AppMetrics, requests: int) -> None:
    for i in range(requests):
        metrics.child(metrics.requests, "/up", "GET", "200").inc()
        metrics.child(metrics.duration, "/up").observe(0.01 * i)
    metrics.in_flight.inc()  # one still running


def scrape(collector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def sample(text: str, name: str) -> float:
    (line,) = [
        line
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    ]
    return float(line.rpartition(" ")[2])


def test_dead_workers_are_folded_into_the_archive_and_the_sums_stay_exact(tmp_path, workers):
    alive = {101, 102}
    archive = exporter.Archive(str(tmp_path), alive=lambda pid: pid in alive)
    serve(workers(101), 5)
    serve(workers(102), 7)
    before = scrape(archive)
    assert sample(before, "app_requests_total") == 12
    assert sample(before, "app_requests_in_flight") == 2
    alive.discard(101)  # recycled: its requests stay counted, its in-flight goes
    after = scrape(archive)
    assert sample(after, "app_requests_total") == 12
    assert sample(after, "app_request_duration_seconds_count") == 12
    assert sample(after, "app_requests_in_flight") == 1
    assert not [f for f in os.listdir(tmp_path) if "101" in f]
    # a new worker, another death: the archive grows, the files do not
    alive.add(103)
    serve(workers(103), 3)
    alive.discard(102)
    later = scrape(archive)
    assert sample(later, "app_requests_total") == 15
    assert sorted(os.listdir(tmp_path)) == [
        "counter_103.db",
        "counter_archive.db",
        "gauge_livesum_103.db",
        "histogram_103.db",
        "histogram_archive.db",
    ]
    # the buckets add up over the folds: durations 0, 0.01, ... of each worker
    bucket = 'app_request_duration_seconds_bucket{le="0.05",route="/up"}'
    assert sample(later, bucket) == 5 + 6 + 3


def test_no_folder_no_metrics(tmp_path):
    assert scrape(exporter.Archive(str(tmp_path / "missing"))).strip() == ""


STATS = {
    "version": "2.0.28",
    "listen_queue": 3,
    "listen_queue_errors": 0,
    "sockets": [{"name": "0.0.0.0:3031", "proto": "uwsgi", "queue": 3, "max_queue": 128}],
    "workers": [
        {"id": 1, "pid": 11, "requests": 40, "exceptions": 1, "harakiri_count": 2,
         "status": "busy", "rss": 50_000_000, "respawn_count": 3},
        {"id": 2, "pid": 12, "requests": 38, "exceptions": 0, "harakiri_count": 0,
         "status": "idle", "rss": 0, "respawn_count": 1},
    ],
}  # fmt: skip


def test_uwsgi_stats_become_metrics():
    text = scrape(exporter.UwsgiStats("/x", read=lambda address: STATS))
    assert sample(text, "uwsgi_up") == 1
    assert sample(text, "uwsgi_listen_queue") == 3
    assert 'uwsgi_workers{status="busy"} 1.0' in text
    assert 'uwsgi_workers{status="idle"} 1.0' in text
    assert 'uwsgi_worker_harakiri_total{worker="1"} 2.0' in text
    assert 'uwsgi_worker_requests_total{worker="2"} 38.0' in text
    # respawn_count counts the first spawn: two respawns, then none
    assert 'uwsgi_worker_respawns_total{worker="1"} 2.0' in text
    assert 'uwsgi_worker_respawns_total{worker="2"} 0.0' in text
    assert 'uwsgi_worker_rss_bytes{worker="1"} 5e+07' in text
    assert 'uwsgi_socket_listen_queue_limit{socket="0.0.0.0:3031"} 128.0' in text


def test_uwsgi_down_is_said_not_raised():
    def refused(address):
        raise ConnectionRefusedError(address)

    assert sample(scrape(exporter.UwsgiStats("/x", read=refused)), "uwsgi_up") == 0


def test_the_stats_server_is_read_from_its_unix_socket(tmp_path):
    """uWSGI writes the JSON and closes the connection."""
    path = str(tmp_path / "stats.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)

        def answer():
            peer, _ = server.accept()
            peer.sendall(json.dumps(STATS).encode())
            peer.close()

        thread = threading.Thread(target=answer)
        thread.start()
        assert exporter._stats_json(path) == STATS
        thread.join()


def test_the_kernel_says_what_waits_in_a_listen_queue(tmp_path):
    """Connections nobody accepted yet, on a unix socket and on a TCP port
    (IPv4 and IPv6 added up); one accepted is no longer waiting, though it
    has the same local port."""
    path = str(tmp_path / "app.sock")
    held = []
    with (
        socket.socket(socket.AF_UNIX) as unix,
        socket.socket() as tcp,
        socket.socket(socket.AF_INET6) as tcp6,
    ):
        unix.bind(path)
        unix.listen(8)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(8)
        port = tcp.getsockname()[1]
        tcp6.bind(("::1", port))
        tcp6.listen(8)
        for _ in range(3):
            held.append(socket.socket(socket.AF_UNIX))
            held[-1].connect(path)
        for _ in range(3):
            held.append(socket.create_connection(("127.0.0.1", port)))
        held.append(socket.create_connection(("::1", port)))
        accepted, _ = tcp.accept()
        held.append(accepted)
        # unread on the accepted connection: not a connection waiting
        held[3].sendall(b"GET / HTTP/1.1\r\n")
        queue = exporter.ListenQueue({"unix": str(tmp_path / "*.sock"), "tcp": f"127.0.0.1:{port}"})
        text = scrape(queue)
        for conn in held:
            conn.close()
    assert 'server_listen_queue{socket="unix"} 3.0' in text
    assert 'server_listen_queue{socket="tcp"} 3.0' in text


def test_the_slots_and_the_timeout_are_served_for_the_rules():
    settings = Settings.from_env({}, WSGI_PROCESSES=3, WSGI_THREADS=4, REQUEST_TIMEOUT=20)
    text = scrape(exporter.Given(settings))
    assert sample(text, "server_worker_slots") == 12
    assert sample(text, "app_request_timeout_seconds") == 20


def test_each_server_names_the_socket_its_requests_wait_in():
    s = Settings.from_env({}, RUN_DIR="/run/w", PORT=8082, BIND_ADDRESS="0.0.0.0")
    assert exporter.sockets_of("uwsgi", s) == {"app": "/run/w/uwsgi.sock"}
    assert exporter.sockets_of("apache", s) == {"app": "/run/w/wsgi.*.sock"}
    assert exporter.sockets_of("gunicorn", s) == {"app": "0.0.0.0:8082"}
