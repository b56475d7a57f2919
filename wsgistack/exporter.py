"""The app server's metrics endpoint: one scrape target per app server.

    python -m wsgistack.exporter uwsgi      # what uwsgi.ini's attach-daemon runs

It serves, on ``BIND_ADDRESS:METRICS_PORT`` (an internal port, never
published; docs/metrics.md), in Prometheus' text format:

- the app's metrics (app/metrics.py) of every worker process, added up from
  the files prometheus_client's multiprocess mode writes into
  ``PROMETHEUS_MULTIPROC_DIR``. The files of a worker that is gone
  (recycled by MAX_REQUESTS or RELOAD_ON_RSS_MB, killed by the request
  timeout) are marked dead, as the library's docs ask (its live gauges go),
  and its counters and histograms are folded into one archive file per type
  and its files removed: the sums stay exact and monotonic, and recycling
  leaves no file behind (``Archive``);
- the server's own figures: uWSGI's stats server (``UwsgiStats``, read on its
  unix socket), granian's built-in metrics (read on loopback, ``Relay``);
- what any server's socket holds waiting, read from the kernel by sock_diag
  (``server_listen_queue``: a TCP port or a unix socket), and what the
  server was given (``server_worker_slots``, ``app_request_timeout_seconds``),
  which the recording and alert rules divide by (deploy/prometheus/rules/).

The same registry serves the Apache stack from a mod_wsgi daemon of its own
(deploy/apache-mod_wsgi/metrics.wsgi) and gunicorn from its master process
(deploy/gunicorn/gunicorn.conf.py); granian's serve.py runs it in a thread.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import os
import socket
import struct
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from wsgistack.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# the metric types whose values add up over processes, and so can be archived
ARCHIVED_TYPES = ("counter", "histogram", "summary")
ARCHIVE = "archive"
TIMEOUT = 2.0


def metrics_dir(settings: Settings) -> str:
    """Where the workers write their values: in the run folder, which every
    server start empties (a fresh folder natively, a tmpfs in containers)."""
    return os.path.join(settings.RUN_DIR, "metrics")


def pid_alive(pid: int) -> bool:
    # /proc/PID exists for every process of this pid namespace, whoever owns it
    return os.path.exists(f"/proc/{pid}")


class Archive:
    """prometheus_client's MultiProcessCollector, with dead workers folded away.

    Only this collector reads or removes files in the folder (the workers
    each write their own), and it does both under one lock, so a scrape
    never sees a value twice (in a dead worker's file and in the archive)
    or not at all."""

    def __init__(self, path: str, alive: Callable[[int], bool] = pid_alive) -> None:
        self.path = path
        self.alive = alive
        self.lock = threading.Lock()

    def files(self) -> list[str]:
        return glob.glob(os.path.join(self.path, "*.db"))

    def dead(self) -> dict[int, list[str]]:
        """The files of processes that are gone, by pid."""
        found: dict[int, list[str]] = {}
        for name in self.files():
            pid = Path(name).stem.rsplit("_", 1)[1]
            if pid.isdigit() and not self.alive(int(pid)):
                found.setdefault(int(pid), []).append(name)
        return found

    def fold(self) -> None:
        """Mark dead workers dead and fold their sums into the archive files."""
        dead = self.dead()
        if not dead:
            return
        for pid in dead:
            mark_process_dead(pid, self.path)
        for kind in ARCHIVED_TYPES:
            gone = [f for files in dead.values() for f in files if Path(f).name.startswith(kind)]
            if not gone:
                continue
            archive = os.path.join(self.path, f"{kind}_{ARCHIVE}.db")
            sources = gone + ([archive] if os.path.exists(archive) else [])
            merged = MultiProcessCollector.merge(sources, accumulate=False)
            partial = archive + ".partial"
            if os.path.exists(partial):
                os.remove(partial)
            out = MmapedDict(partial)
            try:
                for metric in merged:
                    for sample in metric.samples:
                        key = json.dumps(
                            [metric.name, sample.name, sample.labels, metric.documentation],
                            sort_keys=True,
                        )
                        out.write_value(key, sample.value, 0.0)
            finally:
                out.close()
            # the partial file ends in .partial, not .db: no scrape reads it
            os.replace(partial, archive)
            for name in gone:
                os.remove(name)

    def collect(self) -> Iterable[Metric]:
        if not os.path.isdir(self.path):
            return []
        with self.lock:
            self.fold()
            return MultiProcessCollector.merge(self.files(), accumulate=True)


def _stats_json(address: str) -> dict:
    """uWSGI's stats server answers with one JSON document and closes."""
    if address.startswith("/"):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(TIMEOUT)
        conn.connect(address)
    else:
        host, _, port = address.rpartition(":")
        conn = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    with conn:
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return json.loads(b"".join(chunks))


class UwsgiStats:
    """uWSGI's stats server as metrics (uWSGI 2.0.21 and 2.0.28 alike:
    core/master_utils.c, uwsgi_master_generate_stats).

    The per-worker figures are labelled with the worker's id (1 to
    processes: bounded), which survives a respawn; uWSGI keeps a worker's
    requests, exceptions and harakiri counts across its respawns (the
    master never resets them), so they are counters. listen_queue is the
    fullest socket's queue as the master last measured it, once a second: on
    TCP from the kernel (TCP_INFO), on a unix socket only with a kernel
    patch no mainline Linux has (SIOBKLGQ), so 0 there: server_listen_queue
    reads that one. rss is filled in only when something asks uWSGI to
    measure memory (reload-on-rss does)."""

    def __init__(self, address: str, read: Callable[[str], dict] = _stats_json) -> None:
        self.address = address
        self.read = read

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("uwsgi_up", "1 if uWSGI's stats server answered this scrape.")
        try:
            stats = self.read(self.address)
        except (OSError, ValueError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "uwsgi_listen_queue",
            "Connections waiting in the fullest socket's listen queue (measured once a second).",
            value=stats.get("listen_queue", 0),
        )
        yield CounterMetricFamily(
            "uwsgi_listen_queue_errors",
            "Times uWSGI failed to measure a listen queue.",
            value=stats.get("listen_queue_errors", 0),
        )
        sockets = GaugeMetricFamily(
            "uwsgi_socket_listen_queue_limit",
            "The listen backlog of each socket uWSGI measures (0: not measured).",
            labels=["socket"],
        )
        for sock in stats.get("sockets", []):
            sockets.add_metric([sock.get("name", "")], sock.get("max_queue", 0))
        yield sockets
        workers = stats.get("workers", [])
        by_status = GaugeMetricFamily(
            "uwsgi_workers",
            "Worker processes by status: busy (running a request), idle, cheap, pause, sig.",
            labels=["status"],
        )
        counts: dict[str, int] = {"busy": 0, "idle": 0}
        for worker in workers:
            status = str(worker.get("status", "idle"))
            status = "sig" if status.startswith("sig") else status
            counts[status] = counts.get(status, 0) + 1
        for status, count in sorted(counts.items()):
            by_status.add_metric([status], count)
        yield by_status
        per_worker = [
            ("requests", "uwsgi_worker_requests", "Requests the worker served.", 1),
            ("exceptions", "uwsgi_worker_exceptions", "Exceptions the app raised.", 1),
            (
                "harakiri_count",
                "uwsgi_worker_harakiri",
                "Times the worker was killed for running a request past harakiri.",
                1,
            ),
        ]
        for key, name, documentation, scale in per_worker:
            family = CounterMetricFamily(name, documentation, labels=["worker"])
            for worker in workers:
                family.add_metric([str(worker.get("id"))], worker.get(key, 0) * scale)
            yield family
        respawns = CounterMetricFamily(
            "uwsgi_worker_respawns",
            "Times the worker was started again after it ended (recycled or killed).",
            labels=["worker"],
        )
        rss = GaugeMetricFamily(
            "uwsgi_worker_rss_bytes",
            "Resident memory of the worker after its last request (0: not measured).",
            labels=["worker"],
        )
        busy = GaugeMetricFamily(
            "uwsgi_worker_busy", "1 while the worker runs a request.", labels=["worker"]
        )
        for worker in workers:
            wid = str(worker.get("id"))
            # respawn_count counts the first spawn too
            respawns.add_metric([wid], max(0, worker.get("respawn_count", 1) - 1))
            rss.add_metric([wid], worker.get("rss", 0))
            busy.add_metric([wid], 1 if worker.get("status") == "busy" else 0)
        yield respawns
        yield rss
        yield busy


# sock_diag (linux/sock_diag.h, linux/inet_diag.h, linux/unix_diag.h)
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_DONE, NLMSG_ERROR = 3, 2
TCP_LISTEN = 10  # the state of a listening socket, TCP's and unix'
UDIAG_SHOW_NAME, UDIAG_SHOW_RQLEN = 0x01, 0x10
UNIX_DIAG_NAME, UNIX_DIAG_RQLEN = 0, 4
# inet_diag_msg: family, state, timer, retrans (4 bytes), inet_diag_sockid
# (48: the local port first, big-endian), expires, then rqueue: for a
# listening socket, the connections in its accept queue
INET_DIAG_PORT, INET_DIAG_RQUEUE = 4, 56


def _sock_diag(request: bytes) -> Iterator[bytes]:
    """The messages of one sock_diag dump (each without its netlink header)."""
    header = struct.pack(
        "=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0
    )
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(TIMEOUT)
        nl.sendto(header + request, (0, 0))
        while True:
            data = nl.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR or length < 16:
                    raise OSError("sock_diag refused the request")
                yield data[offset + 16 : offset + length]
                offset += (length + 3) & ~3


def tcp_listen_queues() -> dict[int, int]:
    """{port: connections waiting in its accept queue} of every listening TCP
    socket of this network namespace, IPv4 and IPv6 added up, from the
    kernel's sock_diag (what `ss -ltn` shows as Recv-Q). Asking for listening
    sockets only, the kernel walks its table of listeners alone: /proc/net/tcp
    lists every socket, those in TIME_WAIT included, which a server that
    closes its connections leaves by the tens of thousands under load, and
    reading it took 21 ms per scrape after a few seconds of wrk
    (docs/metrics.md)."""
    waiting: dict[int, int] = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        # inet_diag_req_v2: family, protocol, extensions, pad, states, and
        # an inet_diag_sockid of zeros (no filter)
        request = struct.pack("=BBBBI48x", family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN)
        for message in _sock_diag(request):
            if len(message) < INET_DIAG_RQUEUE + 4:
                continue
            port = int.from_bytes(message[INET_DIAG_PORT : INET_DIAG_PORT + 2], "big")
            (queued,) = struct.unpack_from("=I", message, INET_DIAG_RQUEUE)
            waiting[port] = waiting.get(port, 0) + queued
    return waiting


def unix_listen_queues() -> dict[str, tuple[int, int]]:
    """{path: (connections waiting, backlog)} of every listening unix socket
    of this network namespace, from the kernel's sock_diag (what `ss -xl`
    shows as Recv-Q and Send-Q)."""
    request = struct.pack(
        "=BBHIIIII",
        socket.AF_UNIX,
        0,
        0,
        1 << TCP_LISTEN,
        0,
        UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN,
        0xFFFFFFFF,
        0xFFFFFFFF,
    )
    found: dict[str, tuple[int, int]] = {}
    for message in _sock_diag(request):
        name, queue = _unix_diag_attributes(message[16:])
        if name is not None and queue is not None:
            found[name] = queue
    return found


def _unix_diag_attributes(data: bytes) -> tuple[str | None, tuple[int, int] | None]:
    name = queue = None
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        value = data[offset + 4 : offset + length]
        if kind == UNIX_DIAG_NAME:
            name = value.split(b"\0", 1)[0].decode(errors="replace")
        elif kind == UNIX_DIAG_RQLEN:
            queue = struct.unpack("=II", value[:8])
        offset += (length + 3) & ~3
    return name, queue


def _or_empty(read: Callable[[], dict]) -> dict:
    """A sock_diag table, or none where the kernel refused it: every queue
    then reads 0."""
    try:
        return read()
    except OSError:
        return {}


class ListenQueue:
    """What waits in the kernel for the server to accept it, for any server:
    ``sockets`` maps a label (bounded: the socket's role) to a TCP
    ``host:port``, or a unix socket path or glob (mod_wsgi's daemon sockets
    carry Apache's pid in their names: the label stays the same)."""

    def __init__(self, sockets: dict[str, str]) -> None:
        self.sockets = sockets

    def collect(self) -> Iterator[Metric]:
        waiting = GaugeMetricFamily(
            "server_listen_queue",
            "Connections waiting in the kernel for the server to accept them.",
            labels=["socket"],
        )
        # each kernel table read once per scrape, and only if asked for
        unix = tcp = None
        for label, address in self.sockets.items():
            if address.startswith("/"):
                unix = _or_empty(unix_listen_queues) if unix is None else unix
                queue = sum(q[0] for path, q in unix.items() if fnmatch.fnmatch(path, address))
            else:
                tcp = _or_empty(tcp_listen_queues) if tcp is None else tcp
                queue = tcp.get(int(address.rpartition(":")[2]), 0)
            waiting.add_metric([label], queue)
        yield waiting


class Given:
    """What the server was configured with, for the rules to divide by."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "server_worker_slots",
            "Requests the app server runs at once: WSGI_PROCESSES x WSGI_THREADS.",
            value=self.settings.WORKER_SLOTS,
        )
        yield GaugeMetricFamily(
            "app_request_timeout_seconds",
            "REQUEST_TIMEOUT: seconds a request may run before the app server cuts it.",
            value=self.settings.REQUEST_TIMEOUT,
        )


class Relay:
    """Another exporter's metrics on loopback (granian's), served as ours."""

    def __init__(self, url: str, up_name: str) -> None:
        self.url = url
        self.up_name = up_name

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(self.up_name, f"1 if {self.url} answered this scrape.")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.url, timeout=TIMEOUT) as answer:
                text = answer.read().decode()
        except OSError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from text_string_to_metric_families(text)


def sockets_of(server: str, settings: Settings) -> dict[str, str]:
    """The sockets whose queue the server's requests wait in."""
    if server == "uwsgi":
        address = settings.UWSGI_SOCKET
        return {"app": address if address.startswith("/") else address}
    if server == "apache":
        # WSGISocketPrefix RUN_DIR/wsgi: one socket per daemon process group
        return {"app": os.path.join(settings.RUN_DIR, "wsgi.*.sock")}
    return {"app": f"{settings.BIND_ADDRESS}:{settings.PORT}"}


def registry_for(
    server: str, settings: Settings, multiproc_dir: str | None = None
) -> CollectorRegistry:
    """Every collector of one app server, in a registry of its own."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiproc_dir or os.environ.get(MULTIPROC_ENV) or metrics_dir(settings)
    registry.register(Archive(path))
    registry.register(ListenQueue(sockets_of(server, settings)))
    registry.register(Given(settings))
    if server == "uwsgi":
        registry.register(UwsgiStats(os.path.join(settings.RUN_DIR, "uwsgi-stats.sock")))
    if server == "granian":
        url = f"http://127.0.0.1:{settings.STATUS_PORT}/metrics"
        registry.register(Relay(url, "granian_metrics_up"))
    return registry


def serve(server: str, settings: Settings) -> threading.Thread | None:
    """Serve the registry on BIND_ADDRESS:METRICS_PORT from a daemon thread.
    A port in use costs the metrics, not the server: said on stderr, and
    Prometheus reports the target down."""
    registry = registry_for(server, settings)
    try:
        _, thread = start_http_server(settings.METRICS_PORT, settings.BIND_ADDRESS, registry)
    except OSError as exc:
        address = f"{settings.BIND_ADDRESS}:{settings.METRICS_PORT}"
        print(f"exporter: no metrics on {address}: {exc}", file=sys.stderr, flush=True)
        return None
    return thread


SERVERS = ("uwsgi", "apache", "gunicorn", "granian")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wsgistack.exporter", description=__doc__.splitlines()[0]
    )
    parser.add_argument("server", choices=SERVERS, help="the app server whose metrics to serve")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    thread = serve(args.server, settings)
    if thread is None:
        return 1
    print(
        f"exporter: {args.server} metrics on {settings.BIND_ADDRESS}:{settings.METRICS_PORT}",
        file=sys.stderr,
        flush=True,
    )
    thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
