"""The deployment knobs, each declared once, read from the environment.

Every server config in ``deploy/`` is rendered from these settings (see
``wsgistack.render``), natively and in containers alike, so one variable changes
every server at once. ``.env.example`` documents each knob for compose users.
What one server's config derives from the knobs lives beside it, in
``wsgistack.configs`` (one module per folder of ``deploy/``).

The timeout ladder, shared by every server, is derived here from ``REQUEST_TIMEOUT``:

    app server's limit (REQUEST_TIMEOUT: uWSGI harakiri, mod_wsgi's cut)
      < proxy timeout (PROXY_TIMEOUT: nginx uwsgi_read_timeout, Apache Timeout)
      < stop grace period (STOP_GRACE_PERIOD: compose, the native runner's wait)

The app server's limit is the knob itself, not a value derived from it: the
knob is how long a request may run, and the app server is where it runs and
where cutting it frees a worker (uWSGI's harakiri; mod_wsgi's request-timeout,
scaled to cut at it in wsgistack/configs/apache_mod_wsgi.py; the time gunicorn
and granian give a request to finish on a stop or reload).

so a stuck request is killed by the server that can free its worker, the proxy
answers the client before giving up itself, and a graceful stop never cuts a
request that was still allowed to finish.

This module uses the standard library only: container images without the app's
virtualenv (nginx) run ``python3 -m wsgistack.render`` too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wsgistack.knobs import (
    Knob,
    SettingsError,
    address,
    addresses,
    cpus,
    knob,
    level,
    or_else,
    secret,
    switch,
    text,
    url_path,
    whole,
)

# seconds the proxy waits beyond the app server's own kill: long enough for the
# kill to land and be reported, short enough that clients are not left hanging
PROXY_MARGIN = 5
# seconds a graceful stop waits beyond the proxy timeout before it kills
STOP_MARGIN = 10
# the job queue's ladder (docs/jobs.md), from JOB_TIME_LIMIT, Celery's soft
# limit: seconds a job that ignores it (stuck in C code) runs on before its
# process is killed (Celery's hard limit)
JOB_KILL_MARGIN = 5
# seconds an unacknowledged job stays with its worker beyond the hard limit
# before Valkey hands it to another worker (kombu's visibility timeout): the
# time a delivered job may wait for a free process, and the workers' clock skew
JOB_REDELIVERY_MARGIN = 10
# seconds the proxy keeps an idle keep-alive connection beyond the balancer's
# BALANCER_IDLE_TIMEOUT: the balancer must always be the one that closes it, or
# it may send a request on a connection the proxy is closing (a 502 at the
# balancer); 20 s covers timer granularity and a slow FIN
KEEPALIVE_MARGIN = 20
# the proxy's Content-Security-Policy by default (CONTENT_SECURITY_POLICY):
# what a plain server-rendered app needs, inline styles and scripts (a
# `style=` attribute, an `onclick="return confirm(...)"`) and files from https:
# CDNs, and nothing a page should not do: no plugins, no <base> pointing
# elsewhere, forms posting only to this site, no framing by other sites, no
# fetch, XHR or WebSocket to other origins, nothing over plain http:
# (docs/edge.md says how to tighten it)
DEFAULT_CSP = (
    "default-src 'self'; "
    "script-src 'self' https: 'unsafe-inline'; "
    "style-src 'self' https: 'unsafe-inline'; "
    "img-src 'self' https: data:; "
    "font-src 'self' https: data:; "
    "object-src 'none'; "
    "base-uri 'self'; "
    "form-action 'self'; "
    "frame-ancestors 'none'"
)
# the app's static files (the front page's CSS and JS), beside this package
APP_STATIC = Path(__file__).resolve().parents[1] / "app" / "static"


def policy(raw: str, known: Mapping[str, Any]) -> str:
    """A Content-Security-Policy; empty: DEFAULT_CSP; "none" (kept as it is): the
    proxies send none. Both render it inside double quotes, where nginx would
    expand a $ and Apache a %, so those, quotes, backslashes and control
    characters are refused."""
    value = raw.strip()
    if not value:
        return DEFAULT_CSP
    bad = sorted({c for c in value if c in '"\\$%' or not c.isprintable()})
    if bad:
        raise ValueError(f"must not contain {''.join(bad)!r}")
    return value


def made_tls_file(known: Mapping[str, Any], name: str) -> str:
    """Where the throwaway certificate and its key are made (wsgistack/tls.py)."""
    return os.path.join(known["RUN_DIR"], "tls", name)


def tls_key(raw: str, known: Mapping[str, Any]) -> str:
    if raw:
        return raw
    if known["TLS_CERT"] != made_tls_file(known, "cert.pem"):
        raise ValueError(f"needed with TLS_CERT={known['TLS_CERT']!r}")
    return made_tls_file(known, "key.pem")


# the app servers settings can be for (``Settings.from_env(server=...)``):
# where a knob's default differs between them, the server's applies
APP_SERVERS = ("uwsgi", "mod_wsgi", "gunicorn", "granian", "devserver")

# uWSGI's own worker shape: processes of one thread each. uWSGI 2.0's request
# timeout (harakiri) is one deadline per worker process, re-armed by each
# request that starts on any of its threads and cleared by each that ends, so
# with threads a stuck request under traffic is not cut at REQUEST_TIMEOUT
# (docs/nginx-uwsgi.md). 8 processes: eight requests at once, whatever the CPUs.
# Every way to run the stack reads it from here: `wsgistack up`, `wsgistack
# render` (deploy/uwsgi and deploy/nginx, whose limits count uWSGI's slots) and
# the images' entrypoint, so compose, Swarm and Kubernetes leave both knobs
# empty unless a user sets them.
UWSGI_SHAPE = {"WSGI_PROCESSES": {"uwsgi": 8}, "WSGI_THREADS": {"uwsgi": 1}}


# the knobs, with defaults that are safe for production on a small machine
@dataclass(frozen=True)
class Settings:
    WSGI_PROCESSES: int = knob(
        "",
        cpus,
        "worker processes (uWSGI processes, mod_wsgi processes, gunicorn workers); "
        "unset or empty: the app server's default (uWSGI's is 8), else the CPUs available "
        "(cgroup quota, affinity)",
        servers=UWSGI_SHAPE["WSGI_PROCESSES"],
    )
    WSGI_THREADS: int = knob(
        8,
        whole(1),
        "threads per worker process; unset or empty: the app server's default "
        "(uWSGI's is 1: its request timeout is exact only so), else 8",
        servers=UWSGI_SHAPE["WSGI_THREADS"],
    )
    REQUEST_TIMEOUT: int = knob(
        30, whole(1), "seconds one request may run before the app server kills it"
    )
    LISTEN_BACKLOG: int = knob(
        128, whole(1), "connections queued at the app server's socket (<= net.core.somaxconn)"
    )
    MAX_BODY_BYTES: int = knob(
        1048576, whole(0), "largest request body accepted, in bytes (413 beyond)"
    )
    MAX_REQUESTS: int = knob(
        5000, whole(0), "requests a worker serves before it is recycled (0 = never)"
    )
    RELOAD_ON_RSS_MB: int = knob(
        96, whole(0), "recycle a uWSGI worker whose resident memory exceeds this (0 = never)"
    )
    CLIENT_TIMEOUT: int = knob(
        10, whole(1), "seconds a client may take to send its headers or body (slow clients)"
    )
    SERVER_NAMES: str = knob(
        "localhost 127.0.0.1",
        text,
        "Host names served; any other Host is refused (space-separated)",
    )
    PORT: int = knob(8080, whole(1), "the public HTTP port")
    BIND_ADDRESS: str = knob(
        "127.0.0.1", text, "address the public port listens on (0.0.0.0 in containers)"
    )
    RUN_DIR: str = knob(
        "/tmp/wsgistack", text, "scratch folder: pid files, sockets, proxy temp files"
    )
    UWSGI_SOCKET: str = knob(
        "",
        or_else(lambda known: os.path.join(known["RUN_DIR"], "uwsgi.sock")),
        "uwsgi-protocol socket: a path (unix) or host:port; default RUN_DIR/uwsgi.sock",
    )
    VENV: str = knob(
        "",
        text,
        "virtualenv the app is installed in (uWSGI virtualenv, mod_wsgi python-home)",
    )
    WSGI_APP: str = knob(
        "app.wsgi:application",
        text,
        "the WSGI callable the servers import, module:name, or module:factory() for an app "
        "factory called once per process",
    )
    TLS: int = knob(
        0, switch, "1: the proxy serves HTTPS (and HTTP/2) on TLS_PORT, plain HTTP redirects"
    )
    TLS_PORT: int = knob(8443, whole(1), "the HTTPS port the proxy listens on (with TLS=1)")
    TLS_PUBLIC_PORT: int = knob(
        0,
        or_else(lambda known: known["TLS_PORT"], whole(0)),
        "the HTTPS port clients reach (plain HTTP redirects there); 0: TLS_PORT. "
        "Differs where a port is published elsewhere (docker -p)",
    )
    TLS_CERT: str = knob(
        "",
        or_else(lambda known: made_tls_file(known, "cert.pem")),
        "certificate chain (PEM); default: a self-signed one for localhost made in RUN_DIR",
    )
    TLS_KEY: str = knob(
        "", tls_key, "the certificate's private key (PEM); default: made with TLS_CERT"
    )
    TRUSTED_PROXIES: str = knob(
        "",
        addresses,
        "addresses/CIDRs of load balancers whose X-Forwarded-For, X-Forwarded-Proto and "
        "X-Request-ID are believed (space-separated; empty: none)",
    )
    REDIRECT_TO_HTTPS: int = knob(
        1,
        switch,
        "1: a request that came over plain HTTP is redirected (308) to HTTPS where HTTPS is "
        "served: by the proxy (TLS=1, to TLS_PUBLIC_PORT) or by a trusted balancer that "
        "reported X-Forwarded-Proto: http (to its port 443); 0: never (a balancer without HTTPS)",
    )
    HSTS_INCLUDE_SUBDOMAINS: int = knob(
        0,
        switch,
        "1: the HSTS header sent over HTTPS covers every subdomain too (includeSubDomains, as "
        "Mozilla's generator writes it): only once every subdomain serves HTTPS",
    )
    BALANCER_IDLE_TIMEOUT: int = knob(
        600,
        whole(1),
        "seconds the load balancer in front keeps an idle connection to the proxy open; the "
        "proxy keeps idle connections KEEPALIVE_MARGIN (20) s longer, so the balancer closes "
        "first. 600: Google Cloud's fixed backend keepalive, above the defaults of AWS's ALB "
        "(60) and Azure Load Balancer (240)",
    )
    CONTENT_SECURITY_POLICY: str = knob(
        "",
        policy,
        "the Content-Security-Policy the proxy sends; empty: one that lets a server-rendered "
        "app use inline styles and scripts and https: CDNs (docs/edge.md says what to tighten); "
        "none: no header, the app's own",
    )
    SLOW_REQUEST_MS: int = knob(
        1000,
        whole(1),
        "a request that takes this long (ms) gets a log line from the app server and the app",
    )
    GZIP_LEVEL: int = knob(
        1,
        level,
        "gzip level of the proxies' JSON, CSS and JS answers for clients that accept it: "
        "1 (fastest) to 9 (smallest); 0: no compression",
    )
    APP_REPLICAS: int = knob(
        1,
        whole(1),
        "app server replicas behind one nginx (Swarm): its limits count the slots of all",
    )
    STATIC_ROOT: str = knob(
        "",
        or_else(lambda known: str(APP_STATIC)),
        "folder the proxy serves STATIC_URL from; default: the app's app/static",
    )
    STATIC_URL: str = knob(
        "/static/",
        url_path(ends_with_slash=True),
        "URL prefix of the app's static files, which the proxy serves from STATIC_ROOT "
        "without the app",
    )
    READY_PATH: str = knob(
        "/readyz",
        url_path(ends_with_slash=False),
        "the app's own readiness path: a GET it answers 2xx once it can serve. The proxies "
        "answer their /readyz probe with it, whatever the Host; probes of a stack without a "
        "proxy ask it directly",
    )
    DNS_RESOLVER: str = knob(
        "",
        text,
        "DNS server nginx asks for the app server's name at run time; "
        "default: the first nameserver of /etc/resolv.conf (127.0.0.11 in containers)",
    )
    NGINX_WORKERS: int = knob(
        "",
        cpus,
        "nginx worker processes; unset or empty: the CPUs available (cgroup quota, affinity)",
    )
    APP_USER: str = knob(
        "wsgistack",
        text,
        "the app's own account on a server (the Debian layout: the uWSGI unit's User=, the "
        "mod_wsgi daemons' user=); its group owns the uWSGI socket, and www-data joins it",
    )
    MOD_WSGI_MODULE: str = knob(
        "",
        text,
        "the mod_wsgi module Apache loads; default: the one built into VENV (make venv)",
    )
    MOD_WSGI_FREE_THREADING: int = knob(
        0,
        switch,
        "1: mod_wsgi 6 runs its daemons' Python with the GIL off (WSGIFreeThreading On); "
        "needs a free-threaded Python (the apache-freethreaded image sets it)",
    )

    VALKEY_ADDRESS: str = knob(
        "",
        address,
        "host:port of Valkey, the job queue's broker and result store; empty: no job "
        "queue (POST /jobs answers 503)",
    )
    VALKEY_USER: str = knob(
        "wsgistack", text, "the Valkey user (ACL) the app and the job workers log in as"
    )
    VALKEY_PASSWORD: str = knob(
        "",
        secret("VALKEY_ADDRESS", 16),
        "that user's password, at least 16 characters; needed with VALKEY_ADDRESS",
    )
    VALKEY_MEMORY_MB: int = knob(
        256,
        whole(1),
        "Valkey's memory for queued jobs and results (maxmemory); when full, submissions "
        "get a 503 and nothing is evicted",
    )
    VALKEY_DATA: str = knob(
        "/var/lib/valkey",
        text,
        "folder of Valkey's append-only file, the queue on disk (a volume in containers)",
    )
    JOB_WORKERS: int = knob(
        "",
        cpus,
        "job processes per worker (Celery prefork concurrency); unset or empty: the CPUs "
        "available (cgroup quota, affinity)",
    )
    JOB_TIME_LIMIT: int = knob(
        300,
        whole(1),
        "seconds a job may run before it is stopped and failed (Celery's soft time limit); "
        f"one that does not stop is killed {JOB_KILL_MARGIN} s later",
    )
    JOB_STOP_TIMEOUT: int = knob(
        30,
        whole(0),
        "seconds a stopping worker lets its running jobs finish before it hands them back "
        "to the queue for another worker",
    )
    JOB_QUEUE_LIMIT: int = knob(
        1000, whole(1), "jobs waiting in the queue beyond which a submission gets a 503"
    )
    JOB_RESULT_EXPIRES: int = knob(
        3600, whole(1), "seconds a finished job's status and value are kept"
    )
    METRICS: int = knob(
        1,
        switch,
        "1: every server serves Prometheus metrics on internal ports (docs/metrics.md); "
        "0: none, and the app counts nothing",
    )
    METRICS_PORT: int = knob(
        9180,
        whole(1),
        "internal port of the app server's metrics (/metrics: the app's, the server's own, "
        "its listen queue); never published",
    )
    STATUS_PORT: int = knob(
        9181,
        whole(1),
        "internal port of the proxy's status page for its exporter (nginx stub_status, "
        "Apache mod_status); granian's own metrics, on loopback; never published",
    )
    SCRAPE_INTERVAL: int = knob(
        15, whole(1), "seconds between Prometheus' scrapes, and between its rule evaluations"
    )
    ALERT_FOR: int = knob(
        300,
        whole(0),
        "seconds a condition must hold before its alert fires (a killed worker fires at once)",
    )

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, server: str = "", **overrides: int | str
    ) -> Settings:
        """Defaults, then ``env`` (os.environ when None), then keyword overrides.
        ``server``: the app server (APP_SERVERS) whose own defaults apply, if any;
        a knob that has such defaults takes them when unset or empty."""
        if server and server not in APP_SERVERS:
            raise ValueError(f"unknown app server {server!r}: one of {', '.join(APP_SERVERS)}")
        env = os.environ if env is None else env
        known: dict[str, Any] = {}
        for k in KNOBS:
            given = overrides.get(k.env, env.get(k.env))
            if given is None or (k.servers and not str(given).strip()):
                given = k.default_for(server)
            raw = str(given)
            try:
                known[k.env] = k.parse(raw, known)
            except ValueError as exc:
                # a password is not repeated into logs
                shown = "'...'" if k.env.endswith("_PASSWORD") and raw else repr(raw)
                raise SettingsError(f"{k.env}={shown}: {exc} ({k.help})") from None
        return cls(**known)

    def as_env(self) -> dict[str, str]:
        """The knobs as environment variables, for child processes."""
        return {k.env: str(getattr(self, k.env)) for k in KNOBS}

    # the timeout ladder (see the module docstring), and the capacity it guards
    @property
    def PROXY_TIMEOUT(self) -> int:
        return self.REQUEST_TIMEOUT + PROXY_MARGIN

    @property
    def STOP_GRACE_PERIOD(self) -> int:
        return self.PROXY_TIMEOUT + STOP_MARGIN

    # the job queue's ladder (docs/jobs.md)
    @property
    def JOB_HARD_TIME_LIMIT(self) -> int:
        """Seconds after which a job's process is killed (Celery's hard limit)."""
        return self.JOB_TIME_LIMIT + JOB_KILL_MARGIN

    @property
    def JOB_VISIBILITY_TIMEOUT(self) -> int:
        """Seconds a delivered job stays unacknowledged with its worker before Valkey
        delivers it again: above the hard limit, so no job still running is handed
        to a second worker."""
        return self.JOB_HARD_TIME_LIMIT + JOB_REDELIVERY_MARGIN

    @property
    def WORKER_STOP_GRACE_PERIOD(self) -> int:
        """Seconds a worker's graceful stop may take before it is killed: its jobs'
        last JOB_STOP_TIMEOUT seconds, then the hand-back and exit."""
        return self.JOB_STOP_TIMEOUT + STOP_MARGIN

    @property
    def VALKEY_URL(self) -> str:
        """VALKEY_ADDRESS as a redis:// URL with the user and password (db 0), as
        Celery and redis-py take it; empty without VALKEY_ADDRESS."""
        if not self.VALKEY_ADDRESS:
            return ""
        user, password = quote(self.VALKEY_USER, safe=""), quote(self.VALKEY_PASSWORD, safe="")
        return f"redis://{user}:{password}@{self.VALKEY_ADDRESS}/0"

    @property
    def WORKER_SLOTS(self) -> int:
        """Requests the app server can run at once."""
        return self.WSGI_PROCESSES * self.WSGI_THREADS

    @property
    def METRICS_DIR(self) -> str:
        """Where the app's worker processes write their metrics (prometheus_client's
        PROMETHEUS_MULTIPROC_DIR): in the run folder, which every start empties."""
        return os.path.join(self.RUN_DIR, "metrics")

    @property
    def PROXY_MAX_CONNS(self) -> int:
        """Requests the proxy lets through at once: every slot plus a full backlog,
        of every replica. Beyond this the proxy answers 503 at once instead of
        queueing a request that would only time out."""
        return (self.WORKER_SLOTS + self.LISTEN_BACKLOG) * self.APP_REPLICAS

    @property
    def PROXY_MAX_CONNS_PER_CLIENT(self) -> int:
        """Requests one client address may have in flight: every worker slot and
        half the backlog, so one client cannot queue everyone else out."""
        return (self.WORKER_SLOTS + self.LISTEN_BACKLOG // 2) * self.APP_REPLICAS


# the knobs in their declared order: name (env), default, parser, help
KNOBS: tuple[Knob, ...] = tuple(Knob(f.name, *f.metadata["knob"]) for f in fields(Settings))
