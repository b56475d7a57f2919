"""granian: the app server of the granian stack, facing clients without a proxy.

    python deploy/granian/serve.py          # what `wsgistack up granian` runs

granian (https://github.com/emmett-framework/granian) is an HTTP server
written in Rust (hyper and tokio) that calls the WSGI app on a pool of Python
threads. This file is its configuration: granian has no config file format,
only command-line options (``granian --help``, or GRANIAN_* variables), and the
same options as keyword arguments of ``granian.server.Server``, which is what
this script passes, each one commented. The knobs come from the environment
through wsgistack.settings, as for every other stack (gunicorn.conf.py does the
same); outside this project, replace ``settings.X`` with your values.

Checked against granian 2.7.9 (requirements-granian.txt; the options are
defined in granian/cli.py and granian/server/common.py of that tag:
https://github.com/emmett-framework/granian/blob/v2.7.9/granian/cli.py).

The same file serves both interpreters. On the GIL build (Debian's python3)
``workers`` are processes; on the free-threaded build (python3.13t, the
Dockerfile's ``freethreaded`` target) granian runs its free-threaded server,
whose ``workers`` are threads of one process (granian/server/__init__.py:
``Server = MPServer if BUILD_GIL else MTServer``), and it refuses to start if
the GIL is on.

What granian cannot do, unlike the web servers in front of the other stacks
(granian 2.7.9, WSGI interface; see docs/free-threading.md for measurements):

- No per-request timeout. Nothing stops a request that runs too long; it holds
  its blocking thread until it ends, and the client waits. A request that
  never ends holds its thread until the worker is restarted.
  ``workers_kill_timeout`` only bounds a graceful stop or reload.
- A graceful stop (SIGTERM) lets the requests in flight finish, but the
  connections still waiting in the kernel's backlog are reset when granian
  closes its socket (2 x 4 threads, 12 slow requests sent: the 8 in flight
  answered, the 4 queued got connection resets), as gunicorn's does.
- No refusal under overload: beyond ``backpressure`` connections per worker,
  granian stops accepting and connections wait in the kernel's backlog; past
  that the kernel drops them. None gets a quick 503.
- No Host check (any Host is served), no request body limit (MAX_BODY_BYTES
  is the app's to enforce), no slow-body defence (only the request headers
  have a deadline, http1 ``header_read_timeout``), no security headers; a
  malformed request gets hyper's bare 400 with an empty body, not problem+json.
- No recycling after N requests (MAX_REQUESTS has no equivalent); only by age
  (``workers_lifetime``) or, on the GIL build, by memory (``workers_max_rss``).
- On the free-threaded build, the app is imported once and shared by every
  worker thread: a reload (SIGHUP) restarts the threads, not the app's code,
  and there is no memory-based recycling.

In production, put a buffering proxy (nginx, Apache) in front for these.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes, TaskImpl
from granian.http import HTTP1Settings
from granian.log import LOGGING_CONFIG, LogLevels
from granian.server import Server
from granian.server.mp import MPServer

from wsgistack.settings import Settings

# sys._is_gil_enabled only exists from 3.13; before that the GIL is always on
FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()

# the health probes (/livez, /readyz), kept out of the access log as every
# stack keeps them (granian has no such option: a logging filter does it)
PROBES = {"/livez", "/readyz"}


class NoProbes:
    """Drops granian's access-log records of the health probes."""

    def filter(self, record) -> bool:
        # granian logs each request with a dict of its fields as the arguments
        return not (isinstance(record.args, dict) and record.args.get("path") in PROBES)


# granian's own logging config (granian/log.py), the access handler filtered;
# granian merges this dict's top-level keys over its own
LOG_CONFIG = {
    "filters": {"no_probes": {"()": NoProbes}},
    "handlers": {
        **LOGGING_CONFIG["handlers"],
        "access": {**LOGGING_CONFIG["handlers"]["access"], "filters": ["no_probes"]},
    },
}


def build(settings: Settings) -> Server:
    return Server(
        # the WSGI callable, module:name (WSGI_APP), or module:factory() whose
        # call returns it (granian wants the name, and factory=True below).
        # No default.
        settings.WSGI_APP.removesuffix("()"),
        # -------------------------------------------------------------------
        # socket
        # -------------------------------------------------------------------
        # the public address: granian speaks HTTP to clients itself.
        # default: 127.0.0.1:8000
        address=settings.BIND_ADDRESS,
        port=settings.PORT,
        # a unix socket instead of TCP, for a proxy on the same host. default: None
        uds=None,
        # WSGI: the app is a plain WSGI callable, run on blocking threads.
        # default: rsgi (granian's own async interface)
        interface=Interfaces.WSGI,
        # HTTP/1.1 only. "auto" also answers HTTP/2 with prior knowledge (h2c),
        # which no browser speaks without TLS and which brings its own limits
        # (16 MiB of headers by default). default: auto
        http=HTTPModes.http1,
        # websockets do not exist in WSGI; granian ignores this for WSGI anyway.
        # default: True
        websockets=False,
        # connections waiting in the kernel for a worker to accept them; granian
        # raises anything below 128 to 128 (LISTEN_BACKLOG may be lower), and
        # the kernel caps it at net.core.somaxconn. default: 1024
        backlog=settings.LISTEN_BACKLOG,
        # -------------------------------------------------------------------
        # capacity: workers x blocking threads
        # -------------------------------------------------------------------
        # worker processes on the GIL build, the only way past the GIL for
        # CPU-bound requests; worker threads of one process on the
        # free-threaded build. default: 1
        workers=settings.WSGI_PROCESSES,
        # the Python threads per worker that run the app, one request each:
        # the "threads" of processes x threads. default: backpressure / 2 for
        # WSGI, 512 with the default backpressure
        blocking_threads=settings.WSGI_THREADS,
        # connections a worker holds at once: granian takes a permit before
        # each accept() and holds it until the connection closes
        # (src/workers.rs, acceptor_impl_loop). One per blocking thread, so a
        # busy worker leaves new connections in the shared kernel backlog for
        # another worker instead of queueing them behind its own threads,
        # workers x threads is the real capacity, as in the other stacks.
        # With the default, 2 workers x 4 threads took two rounds for 8
        # concurrent 1 s requests in 2 runs of 3 (one worker took more than
        # its threads); with this value, one round. default: backlog / workers
        backpressure=settings.WSGI_THREADS,
        # an idle blocking thread exits after this many seconds and is started
        # again on demand (5-600). default: 30
        blocking_threads_idle_timeout=30,
        # Rust (tokio) threads per worker doing the network I/O; they never run
        # Python, one is plenty for a WSGI app. default: 1
        runtime_threads=1,
        # tokio's own pool for blocking I/O (static files, which we do not
        # serve). default: 512
        runtime_blocking_threads=None,
        # tokio's single-threaded runtime per worker (what "auto" picks for
        # WSGI). default: auto
        runtime_mode=RuntimeModes.st,
        # the asyncio loop and task implementation: unused by a WSGI app.
        # defaults: auto, asyncio
        loop=Loops.auto,
        task_impl=TaskImpl.asyncio,
        # -------------------------------------------------------------------
        # HTTP/1 and slow clients
        # -------------------------------------------------------------------
        http1_settings=HTTP1Settings(
            # milliseconds a client may take to send its request headers, then
            # the connection is closed (CLIENT_TIMEOUT). There is no deadline
            # for the body. default: 30000
            header_read_timeout=settings.CLIENT_TIMEOUT * 1000,
            # no keep-alive: an idle keep-alive connection would hold one of
            # the backpressure permits above, so every answer closes its
            # connection (as gunicorn's keepalive = 0 in this project). With
            # it on, a new client waits as long as that many clients idle
            # (tests/integration/test_behaviour.py, idle_connections).
            # default: True
            keep_alive=False,
            # the largest read buffer of a connection, request line and
            # headers included: about 400 KiB. default: 8192 + 4096 * 100
            max_buffer_size=8192 + 4096 * 100,
            # experimental batching of pipelined answers. default: False
            pipeline_flush=False,
        ),
        # -------------------------------------------------------------------
        # workers' life: crash, stop, reload, recycling
        # -------------------------------------------------------------------
        # start a worker again when it dies; without it granian exits when one
        # worker dies (a crash loop, within 5.5 s, still ends it). default: False
        respawn_failed_workers=True,
        # on a reload (SIGHUP) or recycling, seconds between starting a new
        # worker and stopping the old one: the app imports in well under a
        # second, and workers are replaced one after another. default: 3.5
        respawn_interval=1.0,
        # on SIGTERM/SIGINT (graceful stop) or SIGHUP (reload), an old worker
        # stops accepting and gets this long to finish its requests, then is
        # killed: as long as a request may run, and within the stop grace
        # period of the supervisor (STOP_GRACE_PERIOD). default: None (wait
        # for ever)
        workers_kill_timeout=settings.REQUEST_TIMEOUT,
        # restart each worker after this many seconds (at least 60): the only
        # periodic recycling granian has (no "after N requests"). default: None
        workers_lifetime=None,
        # restart a worker whose resident memory stays above this many MiB
        # (RELOAD_ON_RSS_MB; 0 = never), checked every rss_sample_interval
        # seconds, rss_samples times in a row. The free-threaded build refuses
        # it (one process for every worker). default: None, 30, 1
        workers_max_rss=(settings.RELOAD_ON_RSS_MB or None) if not FREE_THREADED else None,
        rss_sample_interval=30,
        rss_samples=1,
        # the main process's pid, for the supervisor. default: None
        pid_file=Path(settings.RUN_DIR) / "granian.pid",
        # -------------------------------------------------------------------
        # logging: stdout, one line per event
        # -------------------------------------------------------------------
        log_enabled=True,
        log_level=LogLevels.info,
        # the access log without the health probes (above). default: granian's own
        log_dictconfig=LOG_CONFIG,
        # one JSON object per request, as the other stacks log; dt_ms is the
        # whole request as granian saw it; granian has the path and the query
        # string apart, so a request without a query string ends in "?".
        # default: False (no access log)
        log_access=True,
        log_access_format=(
            '{"time":"%(time)s","remote_addr":"%(addr)s","request":"%(method)s'
            ' %(path)s?%(query_string)s %(protocol)s","status":%(status)d,'
            '"request_time_ms":%(dt_ms).3f}'
        ),
        # -------------------------------------------------------------------
        # not used here, stated so that nothing is implicit
        # -------------------------------------------------------------------
        # TLS: terminate it in front (a proxy or a load balancer). default: off
        ssl_cert=None,
        ssl_key=None,
        # a path prefix the app is mounted under (--url-path-prefix). default: None
        url_path_prefix=None,
        # granian's own Prometheus metrics (METRICS=1): workers, connections,
        # requests, blocking threads busy and idle, respawns, gathered from
        # the workers every scrape interval (1-60 s). On loopback, on
        # STATUS_PORT: the exporter (wsgistack/exporter.py) reads them and
        # serves them with the app's on METRICS_PORT. defaults: False, 15,
        # 127.0.0.1, 9090
        metrics_enabled=bool(settings.METRICS),
        metrics_scrape_interval=max(1, min(60, settings.SCRAPE_INTERVAL)),
        metrics_address="127.0.0.1",
        metrics_port=settings.STATUS_PORT,
        # reload on file changes, for development only (and not supported on
        # the free-threaded build). default: False
        reload=False,
        # WSGI_APP names the app itself, or (ending in "()") a factory to call
        # once per worker. default: False
        factory=settings.WSGI_APP.endswith("()"),
    )


def serve_metrics(settings: Settings) -> None:
    """The app's metrics (METRICS=1), in prometheus_client's multiprocess
    mode, as under the other servers: the folder emptied at start, its path
    in the environment the workers inherit before they import the app (and
    before anything here imports prometheus_client), and the exporter on
    METRICS_PORT in a thread of this process, which outlives the workers it
    adds up (docs/metrics.md)."""
    shutil.rmtree(settings.METRICS_DIR, ignore_errors=True)
    os.makedirs(settings.METRICS_DIR)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = settings.METRICS_DIR
    from wsgistack import exporter

    exporter.serve("granian", settings)


def end_now(status: int) -> None:
    """End the process at once, its logs and standard streams flushed first,
    without the interpreter's finalization: granian's Rust threads (tokio's and
    the blocking pool's) may outlive the server for a moment and attach to
    Python to drop what they hold, and CPython 3.13 ends a thread that attaches
    during finalization with pthread_exit, whose forced unwind through Rust code
    aborts the process ("panic in a function that cannot unwind") after every
    request was answered and before the buffered log lines are written (CPython
    gh-87135; 3.14 parks such a thread instead). atexit handlers do not run.
    docs/free-threading.md"""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def wsgi_worker(*args, **kwargs) -> None:
    """A worker process's life on the GIL build: granian's own, then the end of
    the process as a forked worker ends (multiprocessing's os._exit): a spawned
    one would otherwise go through the interpreter's finalization (end_now).
    A worker whose serving raised is left to multiprocessing, which prints the
    traceback and exits 1."""
    MPServer._spawn_wsgi_worker(*args, **kwargs)
    settle()
    end_now(0)


def settle(timeout: float = 3.0) -> None:
    """Wait, up to ``timeout`` seconds, for the threads granian started outside
    Python's threading module (tokio's, the blocking pool's) to end: the last
    access-log lines are written from them after granian's serve() returned
    (ending at once lost 2 of 8 in a graceful stop under load)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ours = sum(not isinstance(t, threading._DummyThread) for t in threading.enumerate())
        if len(os.listdir("/proc/self/task")) <= ours:
            return
        time.sleep(0.005)


def serve(settings: Settings) -> int:
    """Serves until a stop signal; the exit status granian ended with."""
    os.makedirs(settings.RUN_DIR, exist_ok=True)
    # How the GIL build starts its worker processes: "spawn", a fresh
    # interpreter that imports the app itself, not "fork", a copy of this
    # process. granian takes multiprocessing's start method (fork on Linux up
    # to Python 3.13; granian/server/mp.py) and, with its metrics on, forks
    # while its own Rust threads already run here (the metrics pipes' readers,
    # started before the workers: granian/server/common.py, startup). A worker
    # forked while one of them held a lock starts, logs "Started worker-1",
    # and never accepts a connection: every thread waits on a futex for ever.
    # Measured with granian 2.7.9 (METRICS=1, 1 x 8, a container started and
    # probed in a loop, docs/measurements/start-cycles.py): fork hung 6 of 253
    # starts (2 of 96 without this script's exporter thread), spawn 0 of 630;
    # METRICS=0 with fork 0 of 60.
    # The cost: ~0.3 s more per worker start, a resource tracker process, and
    # ~19 MB more PSS at 2 workers (72 -> 91 MB). granian 2.8.9 forks the same
    # way. The free-threaded build runs threads, not processes: unaffected.
    # A spawned worker ends as a forked one did, without the interpreter's
    # finalization (wsgi_worker). default: fork. docs/free-threading.md
    multiprocessing.set_start_method("spawn", force=True)
    if settings.METRICS:
        serve_metrics(settings)
    try:
        # the free-threaded build's workers are threads of this process:
        # granian's own worker, and the process ends below
        build(settings).serve(spawn_target=None if FREE_THREADED else wsgi_worker)
    except SystemExit as stop:  # granian's own exit, non-zero after a worker failed
        return stop.code if isinstance(stop.code, int) else 1
    return 0


if __name__ == "__main__":
    status = serve(Settings.from_env())
    # without the interpreter's finalization (end_now): on the free-threaded
    # build, granian's workers are threads of this process, and a graceful stop
    # aborted 1 in 20 times (exit 139 as PID 1) before this
    end_now(status)
