"""gunicorn: the app server of the gunicorn stack, facing clients without a proxy.

    gunicorn --config deploy/gunicorn/gunicorn.conf.py app.wsgi:application

The knobs come from the environment through wsgistack.settings, the module that
renders the other stacks' configs (standard library only; importable natively
and in the image, where /srv is on PYTHONPATH), so every stack reads the same
defaults, the same validation and the same timeout ladder. Outside this project,
replace ``settings.X`` below with your values.

A command-line option overrides the value set here. Every setting below
differs from gunicorn's default or is stated because it matters; each says
why. https://docs.gunicorn.org/en/stable/settings.html

What gunicorn cannot do, unlike the web servers in front of the other stacks
(measured with gunicorn 27.0.1 and the gthread worker):

- No per-request timeout. ``timeout`` is a heartbeat of the worker process,
  which the gthread worker's main loop keeps beating while request threads
  run: a request that outlives REQUEST_TIMEOUT is neither stopped nor answered
  early; it runs to its end and the client waits (REQUEST_TIMEOUT=2:
  /io?ms=5000 answered 200 after 5 s, /io?ms=20000 after 20 s, no worker
  restarted). A request that never ends holds its thread until the worker is
  restarted. Only a worker whose main loop stops (the GIL held by C code) is
  killed after ``timeout``.
- No slow-client timeout, so CLIENT_TIMEOUT has no equivalent: a connection
  that sends nothing is dropped after 5 s (see keepalive), but one that
  trickles its request holds a thread until the request is complete
  (2 workers x 4 threads: 8 clients sending a byte a second made the server
  unresponsive for as long as they kept going).
- A client that keeps its connection open after the answer stalls the whole
  worker for up to 2 s per connection. gunicorn 27 closes a connection as
  RFC 9112 section 9.6 asks: it half-closes it, then reads until the client
  closes, for up to 2 s (``util.close_graceful``). It does this on the worker's main loop
  (gthread ``finish_request``), which meanwhile neither accepts connections
  nor hands answers back to clients. With 2 workers x 4 threads, 8 clients
  in turn that each kept their connection open: 4 of 16 requests (two runs)
  waited 1.9 to 6.0 s; closing their connections, all 8 were answered within
  5 ms. The granian stack does not stall this way
  (tests/integration/test_behaviour.py, idle_connections). A proxy in front
  closes its connection to gunicorn as soon as the answer has been read.
- No refusal under overload: requests beyond workers x threads wait in the
  kernel's backlog, and beyond that the kernel drops connections; none gets a
  quick 503.
- No Host check (any Host is served), no request body limit (MAX_BODY_BYTES
  is handed to the app, which answers a JSON 413: see raw_env below), and
  request-line or header errors (400, 414, 431) are gunicorn's built-in HTML
  pages, not problem+json.

In production, put a buffering proxy (nginx, Apache) in front for these.
"""

import json
import os
import shutil
from datetime import UTC, datetime

from gunicorn.glogging import Logger, SafeAtoms

from wsgistack.settings import Settings

settings = Settings.from_env()

# the app, when no APP_MODULE is given on the command line (WSGI_APP).
wsgi_app = settings.WSGI_APP

# the largest request body: gunicorn has no limit of its own, so the app's
# (Flask's MAX_CONTENT_LENGTH, app/__init__.py) is set from MAX_BODY_BYTES
# (0: none), unless FLASK_MAX_CONTENT_LENGTH is set already. default: none
os.environ.setdefault("FLASK_MAX_CONTENT_LENGTH", str(settings.MAX_BODY_BYTES or "null"))

# ---------------------------------------------------------------------------
# socket and capacity: workers x threads
# ---------------------------------------------------------------------------

# the public port: gunicorn speaks HTTP to clients itself. default: 127.0.0.1:8000
bind = [f"{settings.BIND_ADDRESS}:{settings.PORT}"]

# connections waiting in the kernel for a worker to accept them; must be <=
# net.core.somaxconn (the kernel silently caps it). default: 2048
backlog = settings.LISTEN_BACKLOG

# worker processes: the only way past the GIL for CPU-bound requests. Start
# at the number of cores; `wsgistack sizing` measures the best value. default: 1
workers = settings.WSGI_PROCESSES

# gthread: a pool of threads per worker, so requests that wait (I/O) overlap.
# default: sync (one request at a time per worker)
worker_class = "gthread"
# threads per worker; under the GIL they add no CPU throughput. default: 1
threads = settings.WSGI_THREADS

# connections a worker holds at once: one per thread. A worker then accepts a
# connection only when it has a free thread, and requests beyond that wait in
# the kernel's backlog (LISTEN_BACKLOG), shared by all workers, for the first
# free one: workers x threads is the real capacity, as in the other stacks.
# With the default a worker accepts far more than its threads can serve,
# queues them behind its own threads while another worker idles, and keeps
# keep-alive connections pinned to itself (measured, 2 workers x 4 threads:
# 8 requests at once reached both workers in 7 rounds out of 20; 16
# keep-alive clients of /io?ms=50 got 76-143 requests/s of the 160 possible).
# default: 1000
worker_connections = settings.WSGI_THREADS

# ---------------------------------------------------------------------------
# timeouts: the ladder from REQUEST_TIMEOUT (wsgistack/settings.py)
# ---------------------------------------------------------------------------

# kill and replace a worker whose main loop has not reported for this long
# (a heartbeat, not a request timeout: see the module docstring). default: 30
timeout = settings.REQUEST_TIMEOUT

# on SIGTERM (graceful stop) or SIGHUP (reload), workers stop accepting and get
# this long to finish their requests, then are killed: as long as a request
# may run, and within the stop grace period of the supervisor
# (STOP_GRACE_PERIOD = REQUEST_TIMEOUT + 15). default: 30
graceful_timeout = settings.REQUEST_TIMEOUT

# no keep-alive: an idle keep-alive connection would hold one of the
# worker_connections above, so every answer closes its connection (a new TCP
# connection per request costs less than the imbalance it avoids). It also
# drops a new connection that has sent nothing after 5 s. default: 2
keepalive = 0

# ---------------------------------------------------------------------------
# request limits: 400-class answers before the app sees anything
# ---------------------------------------------------------------------------

# the longest request line (method, URL, protocol), in bytes: 414 beyond
# (gunicorn's maximum; as nginx's 8k buffers in the other stack). default: 4094
limit_request_line = 8190
# the most header fields in one request. default: 100
limit_request_fields = 100
# the longest header field, in bytes. default: 8190
limit_request_field_size = 8190

# ---------------------------------------------------------------------------
# worker recycling
# ---------------------------------------------------------------------------

# restart a worker after this many requests: caps slow leaks in the app or
# its libraries. Trade-off: a restart costs an app import and the worker's warm
# caches; 0 disables it. default: 0 (never)
max_requests = settings.MAX_REQUESTS
# add up to this many requests at random to each worker's limit, so workers
# started together do not all restart at the same moment. default: 0
max_requests_jitter = settings.MAX_REQUESTS // 10
# (RELOAD_ON_RSS_MB: gunicorn has no memory-based recycling.)

# ---------------------------------------------------------------------------
# run folder: nothing is written outside RUN_DIR and /dev/shm
# ---------------------------------------------------------------------------

# the workers' heartbeat files: in memory, since the heartbeat (an fchmod)
# can stall a worker on a disk-backed /tmp. /dev/shm is a tmpfs on Linux and
# in containers, read-only root or not; the run folder where it is missing.
# default: the system temporary folder
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else settings.RUN_DIR

pidfile = f"{settings.RUN_DIR}/gunicorn.pid"

# the control socket of `gunicornc` (worker status, reload, stop; gunicorn 25.1+),
# owner-only. default: $XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl
control_socket = f"{settings.RUN_DIR}/gunicorn.ctl"

# ---------------------------------------------------------------------------
# logging: stdout/stderr, one line per event
# ---------------------------------------------------------------------------


class JsonAtoms(SafeAtoms):
    """The log line's values, each a valid JSON string body or number.

    gunicorn escapes only double quotes; a backslash, a control character or
    a non-ASCII byte from the client (URL, User-Agent, Host) would break the
    line as JSON. json.dumps escapes them all (non-ASCII as \\u00XX)."""

    def __init__(self, atoms):
        super().__init__({})
        for key, value in atoms.items():
            if isinstance(value, str):
                self[key] = json.dumps(value)[1:-1]
            else:
                self[key] = "null" if value is None else value


# health probes (docs: the health contract) would drown the requests
HEALTH_PATHS = frozenset({"/livez", "/readyz"})


class JsonLinesLogger(Logger):
    """gunicorn's logger, writing one valid JSON object per request, with ISO
    8601 times, as the other stacks log, and no line for health probes."""

    atoms_wrapper_class = JsonAtoms

    def now(self) -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds")

    def access(self, resp, req, environ, request_time) -> None:
        if environ.get("PATH_INFO") in HEALTH_PATHS:
            return
        super().access(resp, req, environ, request_time)


logger_class = JsonLinesLogger

# one JSON object per request, as the nginx stack logs: request_time_ms is
# the whole request as gunicorn saw it (%(M)s). Every value is JSON-escaped by
# JsonAtoms above. default: None (no access log)
accesslog = "-"
access_log_format = (
    '{"time":"%(t)s","remote_addr":"%(h)s","host":"%({host}i)s","request":"%(r)s",'
    '"status":%(s)s,"bytes_sent":%(B)s,"request_time_ms":%(M)s,"user_agent":"%(a)s"}'
)
# errors and worker events to stderr. default: "-" (stderr), stated for clarity
errorlog = "-"
loglevel = "info"

# ---------------------------------------------------------------------------
# metrics: Prometheus, on METRICS_PORT (internal, never published)
# ---------------------------------------------------------------------------
# gunicorn's own metrics go to StatsD only (statsd_host), which needs a
# statsd_exporter that Debian does not package, and they count what the app
# counts already. So the honest answer is the app's metrics
# (app/metrics.py), in prometheus_client's multiprocess mode, the way its
# docs give for gunicorn: the folder in the environment before any worker
# imports the app, emptied at start, and each worker that exits marked dead.
# The master serves them, with the listen queue and the slots, on
# BIND_ADDRESS:METRICS_PORT (wsgistack/exporter.py), from a thread started
# once the master is ready. https://prometheus.github.io/client_python/multiprocess/
if settings.METRICS:
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", settings.METRICS_DIR)

    def on_starting(server) -> None:
        # once, at start (not on a reload: the counters go on)
        shutil.rmtree(settings.METRICS_DIR, ignore_errors=True)
        os.makedirs(settings.METRICS_DIR)

    def when_ready(server) -> None:
        from wsgistack import exporter

        exporter.serve("gunicorn", settings)

    def child_exit(server, worker) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# The Server header is "gunicorn", without a version (gunicorn has no setting
# for it); the version reaches the app only, in SERVER_SOFTWARE.
