"""The deployment knobs, read from the environment, and the values derived from them.

Every server config in ``deploy/`` is rendered from these settings (see
``wsgistack.render``), natively and in containers alike, so one variable changes
every server at once. ``.env.example`` documents each knob for compose users.

The timeout ladder is derived here and nowhere else, from ``REQUEST_TIMEOUT``:

    app server's limit (uWSGI harakiri, mod_wsgi request-timeout)
      < proxy timeout (nginx uwsgi_read_timeout, mod_wsgi socket-timeout)
      < stop grace period (compose stop_grace_period, the native runner's wait)

(mod_wsgi 6 judges each daemon thread against request-timeout x (1 + ln threads),
so its request-timeout is derived to fire at REQUEST_TIMEOUT, and Apache's
socket-timeout answers the client at REQUEST_TIMEOUT + 1; gunicorn's gthread
`timeout` is a worker heartbeat and never ends a slow request.)

so a stuck request is killed by the server that can free its worker, the proxy
answers the client before giving up itself, and a graceful stop never cuts a
request that was still allowed to finish.

The worker counts (``WSGI_PROCESSES``, ``NGINX_WORKERS``) left unset or empty
follow the CPUs this process may use, its cgroup quota included
(``wsgistack.cpus``), not the host's core count.

This module uses the standard library only: container images without the app's
virtualenv (nginx) run ``python3 -m wsgistack.render`` too.
"""

from __future__ import annotations

import glob
import ipaddress
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from wsgistack.cpus import available_cpus

# seconds the proxy waits beyond the app server's own kill: long enough for the
# kill to land and be reported, short enough that clients are not left hanging
PROXY_MARGIN = 5
# seconds a graceful stop waits beyond the proxy timeout before it kills
STOP_MARGIN = 10
# seconds past REQUEST_TIMEOUT at which Apache answers a JSON 504 for a request
# the mod_wsgi daemon has not answered (socket-timeout), so the client has its
# answer within REQUEST_TIMEOUT + 2 s on a loaded machine too; mod_wsgi frees
# the thread itself (docs/apache-mod_wsgi.md)
MOD_WSGI_MARGIN = 1
# Apache threads per process: ThreadsPerChild in deploy/apache-mod_wsgi/httpd.conf
APACHE_THREADS_PER_CHILD = 64


class SettingsError(ValueError):
    """A knob has a value the servers cannot use."""


@dataclass(frozen=True)
class Knob:
    env: str
    default: int | str
    help: str
    minimum: int | None = None
    # computes the value when the variable is unset or empty (the default ""):
    # the worker counts follow the CPUs this process may use, from its cgroup's
    # CPU quota and affinity mask (wsgistack/cpus.py), not the host's cores
    derive: Callable[[], int] | None = None


# the knobs, with defaults that are safe for production on a small machine
KNOBS: tuple[Knob, ...] = (
    Knob(
        "WSGI_PROCESSES",
        "",
        "worker processes (uWSGI processes, mod_wsgi processes, gunicorn workers); "
        "unset or empty: the CPUs available (cgroup quota, affinity)",
        1,
        derive=available_cpus,
    ),
    Knob("WSGI_THREADS", 8, "threads per worker process", 1),
    Knob("REQUEST_TIMEOUT", 30, "seconds one request may run before the app server kills it", 1),
    Knob(
        "LISTEN_BACKLOG",
        128,
        "connections queued at the app server's socket (<= net.core.somaxconn)",
        1,
    ),
    Knob("MAX_BODY_BYTES", 1048576, "largest request body accepted, in bytes (413 beyond)", 0),
    Knob("MAX_REQUESTS", 5000, "requests a worker serves before it is recycled (0 = never)", 0),
    Knob(
        "RELOAD_ON_RSS_MB",
        96,
        "recycle a uWSGI worker whose resident memory exceeds this (0 = never)",
        0,
    ),
    Knob(
        "CLIENT_TIMEOUT",
        10,
        "seconds a client may take to send its headers or body (slow clients)",
        1,
    ),
    Knob(
        "SERVER_NAMES",
        "localhost 127.0.0.1",
        "Host names served; any other Host is refused (space-separated)",
    ),
    Knob("PORT", 8080, "the public HTTP port", 1),
    Knob("BIND_ADDRESS", "127.0.0.1", "address the public port listens on (0.0.0.0 in containers)"),
    Knob("RUN_DIR", "/tmp/wsgistack", "scratch folder: pid files, sockets, proxy temp files"),
    Knob(
        "UWSGI_SOCKET",
        "",
        "uwsgi-protocol socket: a path (unix) or host:port; default RUN_DIR/uwsgi.sock",
    ),
    Knob("VENV", "", "virtualenv the app is installed in (uWSGI virtualenv, mod_wsgi python-home)"),
    Knob("WSGI_APP", "app.wsgi:application", "the WSGI callable the servers import, module:name"),
    Knob("TLS", 0, "1: the proxy serves HTTPS (and HTTP/2) on TLS_PORT, plain HTTP redirects", 0),
    Knob("TLS_PORT", 8443, "the HTTPS port the proxy listens on (with TLS=1)", 1),
    Knob(
        "TLS_PUBLIC_PORT",
        0,
        "the HTTPS port clients reach (plain HTTP redirects there); 0: TLS_PORT. "
        "Differs where a port is published elsewhere (docker -p)",
        0,
    ),
    Knob(
        "TLS_CERT",
        "",
        "certificate chain (PEM); default: a self-signed one for localhost made in RUN_DIR",
    ),
    Knob("TLS_KEY", "", "the certificate's private key (PEM); default: made with TLS_CERT"),
    Knob(
        "TRUSTED_PROXIES",
        "",
        "addresses/CIDRs of load balancers whose X-Forwarded-For, X-Forwarded-Proto and "
        "X-Request-ID are believed (space-separated; empty: none)",
    ),
    Knob(
        "SLOW_REQUEST_MS",
        1000,
        "a request that takes this long (ms) gets a log line from the app server and the app",
        1,
    ),
    Knob(
        "APP_REPLICAS",
        1,
        "app server replicas behind one nginx (Swarm): its limits count the slots of all",
        1,
    ),
    Knob(
        "STATIC_ROOT",
        "",
        "folder the proxy serves /static/ from; default: the app's app/static",
    ),
    Knob(
        "DNS_RESOLVER",
        "",
        "DNS server nginx asks for the app server's name at run time; "
        "default: the first nameserver of /etc/resolv.conf (127.0.0.11 in containers)",
    ),
    Knob(
        "NGINX_WORKERS",
        "",
        "nginx worker processes; unset or empty: the CPUs available (cgroup quota, affinity)",
        1,
        derive=available_cpus,
    ),
    Knob(
        "MOD_WSGI_MODULE",
        "",
        "the mod_wsgi module Apache loads; default: the one built into VENV (make venv)",
    ),
    Knob(
        "MOD_WSGI_FREE_THREADING",
        0,
        "1: mod_wsgi 6 runs its daemons' Python with the GIL off (WSGIFreeThreading On); "
        "needs a free-threaded Python (the apache-freethreaded image sets it)",
        0,
    ),
)

# the app's static files (the front page's CSS and JS), beside this package
APP_STATIC = Path(__file__).resolve().parents[1] / "app" / "static"
# where DNS_RESOLVER comes from when it is not set
RESOLV_CONF = "/etc/resolv.conf"
# seconds after a request started within which nginx may still retry it on the
# next app server address (an idempotent request whose connection failed)
RETRY_WINDOW = 5


@dataclass(frozen=True)
class Settings:
    WSGI_PROCESSES: int
    WSGI_THREADS: int
    REQUEST_TIMEOUT: int
    LISTEN_BACKLOG: int
    MAX_BODY_BYTES: int
    MAX_REQUESTS: int
    RELOAD_ON_RSS_MB: int
    CLIENT_TIMEOUT: int
    SERVER_NAMES: str
    PORT: int
    BIND_ADDRESS: str
    RUN_DIR: str
    UWSGI_SOCKET: str
    VENV: str
    WSGI_APP: str
    TLS: int
    TLS_PORT: int
    TLS_PUBLIC_PORT: int
    TLS_CERT: str
    TLS_KEY: str
    TRUSTED_PROXIES: str
    SLOW_REQUEST_MS: int
    APP_REPLICAS: int
    STATIC_ROOT: str
    DNS_RESOLVER: str
    NGINX_WORKERS: int
    MOD_WSGI_MODULE: str
    MOD_WSGI_FREE_THREADING: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: int | str) -> Settings:
        """Defaults, then ``env`` (os.environ when None), then keyword overrides."""
        env = os.environ if env is None else env
        values: dict[str, int | str] = {}
        for knob in KNOBS:
            raw = overrides.get(knob.env, env.get(knob.env, knob.default))
            if knob.derive is not None and str(raw).strip() == "":
                values[knob.env] = knob.derive()
            else:
                values[knob.env] = _parse(knob, raw)
        if not values["UWSGI_SOCKET"]:
            values["UWSGI_SOCKET"] = os.path.join(str(values["RUN_DIR"]), "uwsgi.sock")
        if not values["STATIC_ROOT"]:
            values["STATIC_ROOT"] = str(APP_STATIC)
        if not values["DNS_RESOLVER"]:
            values["DNS_RESOLVER"] = system_resolver()
        if not values["TLS_PUBLIC_PORT"]:
            values["TLS_PUBLIC_PORT"] = values["TLS_PORT"]
        for switch in ("TLS", "MOD_WSGI_FREE_THREADING"):
            if values[switch] not in (0, 1):
                raise SettingsError(f"{switch}={values[switch]}: expected 0 (off) or 1 (on)")
        if not values["TLS_CERT"]:
            tls_dir = os.path.join(str(values["RUN_DIR"]), "tls")
            values["TLS_CERT"] = os.path.join(tls_dir, "cert.pem")
            values["TLS_KEY"] = values["TLS_KEY"] or os.path.join(tls_dir, "key.pem")
        elif not values["TLS_KEY"]:
            raise SettingsError("TLS_CERT is set without TLS_KEY")
        _check_addresses(str(values["TRUSTED_PROXIES"]))
        return cls(**values)  # type: ignore[arg-type]

    # the timeout ladder (see the module docstring)
    @property
    def APP_TIMEOUT(self) -> int:
        return self.REQUEST_TIMEOUT

    @property
    def PROXY_TIMEOUT(self) -> int:
        return self.REQUEST_TIMEOUT + PROXY_MARGIN

    @property
    def STOP_GRACE_PERIOD(self) -> int:
        return self.PROXY_TIMEOUT + STOP_MARGIN

    @property
    def WORKER_SLOTS(self) -> int:
        """Requests the app server can run at once."""
        return self.WSGI_PROCESSES * self.WSGI_THREADS

    @property
    def PROXY_MAX_CONNS(self) -> int:
        """Requests the proxy lets through at once: every slot plus a full backlog.

        Beyond this the proxy answers 503 at once instead of queueing a request
        that would only time out.
        """
        return (self.WORKER_SLOTS + self.LISTEN_BACKLOG) * self.APP_REPLICAS

    @property
    def PROXY_MAX_CONNS_PER_CLIENT(self) -> int:
        """Requests one client address may have in flight: every worker slot and
        half the backlog, so one client cannot queue everyone else out."""
        return (self.WORKER_SLOTS + self.LISTEN_BACKLOG // 2) * self.APP_REPLICAS

    @property
    def PROXY_RETRY_WINDOW(self) -> int:
        """Seconds within which nginx may retry a failed idempotent request on the
        next app server: no longer than the earliest harakiri (APP_TIMEOUT - 1 s
        in uWSGI 2.0.28, see APP_TIMEOUT_PATTERN), so that a request the app
        server killed for running too long is never run a second time (with
        REQUEST_TIMEOUT=1 it could be: 1 s is nginx's least)."""
        return max(1, min(RETRY_WINDOW, self.APP_TIMEOUT - 1))

    @property
    def APP_TIMEOUT_PATTERN(self) -> str:
        """A regex for nginx's $upstream_response_time values ("30.004") long
        enough to be uWSGI's harakiri: how nginx tells a request the app server
        killed for its timeout (504) from one it failed at once (502). harakiri
        reads a whole-second clock, so uWSGI 2.0.28 kills from APP_TIMEOUT - 1 s
        on (2.0.21 from APP_TIMEOUT; docs/nginx-uwsgi.md): that is the threshold."""
        return rf"(^|, )({at_least(max(0, self.APP_TIMEOUT - 1))})\.[0-9]+$"

    @property
    def NGINX_TLS_SITES(self) -> str:
        """What nginx.conf includes for HTTPS: the TLS sites, or (TLS=0) a pattern
        that matches no file, which nginx accepts as including nothing."""
        return "tls.d/*.conf" if self.TLS else "tls.d/*.disabled"

    @property
    def NGINX_HTTPS_REDIRECT(self) -> str:
        """What a location does with a plain HTTP request first: redirect it to
        HTTPS (TLS=1), or nothing (TLS=0)."""
        return "snippets/redirect-to-https.conf" if self.TLS else "snippets/no-redirect.conf"

    @property
    def NGINX_REAL_IP_FROM(self) -> str:
        """nginx's set_real_ip_from lines: one per trusted proxy."""
        lines = [f"set_real_ip_from {address};" for address in self.TRUSTED_PROXIES.split()]
        return "\n    ".join(lines) or "# TRUSTED_PROXIES is empty: no address is trusted"

    @property
    def NGINX_TRUSTED_GEO(self) -> str:
        """Entries of nginx's geo block that marks a trusted proxy's address."""
        return "\n        ".join(f"{address} 1;" for address in self.TRUSTED_PROXIES.split())

    @property
    def APACHE_TLS_SITES(self) -> str:
        """What httpd.conf's IncludeOptional takes for HTTPS: the TLS virtual hosts,
        or (TLS=0) a pattern that matches no file, which IncludeOptional accepts."""
        return "tls.d/*.conf" if self.TLS else "tls.d/*.disabled"

    @property
    def APACHE_HTTPS_REDIRECT(self) -> str:
        """What Apache's plain HTTP site does with a request first: redirect it to
        HTTPS (TLS=1), or nothing (TLS=0)."""
        return "snippets/redirect-to-https.conf" if self.TLS else "snippets/no-redirect.conf"

    @property
    def APACHE_REMOTE_IP(self) -> str:
        """mod_remoteip's lines: the header and every trusted proxy, or none at all
        (mod_remoteip given a header and no proxy list trusts every peer)."""
        proxies = self.TRUSTED_PROXIES.split()
        if not proxies:
            return "# TRUSTED_PROXIES is empty: no RemoteIPHeader, so no address is trusted"
        return "RemoteIPHeader X-Forwarded-For\n" + "\n".join(
            f"RemoteIPInternalProxy {address}" for address in proxies
        )

    @property
    def APACHE_FROM_TRUSTED_PROXY(self) -> str:
        """An Apache expression, true when the connection itself (not the address
        mod_remoteip derived) comes from a trusted proxy: nginx's $from_trusted_proxy."""
        tests = [
            f"%{{CONN_REMOTE_ADDR}} -ipmatch '{address}'"
            for address in self.TRUSTED_PROXIES.split()
        ]
        return " || ".join(tests) or "false"

    @property
    def APACHE_MAX_REQUEST_WORKERS(self) -> int:
        """Apache threads: a relay for every request the daemons take, and as
        many again to refuse the surplus with a 503 (deploy/apache-mod_wsgi)."""
        per_process = APACHE_THREADS_PER_CHILD
        wanted = max(512, 2 * self.PROXY_MAX_CONNS)
        return -(-wanted // per_process) * per_process

    @property
    def APACHE_SERVER_LIMIT(self) -> int:
        """Apache process slots: the serving ones, and as many finishing a reload."""
        return 2 * self.APACHE_MAX_REQUEST_WORKERS // APACHE_THREADS_PER_CHILD

    @property
    def MOD_WSGI_REQUEST_TIMEOUT(self) -> int:
        """mod_wsgi 6's request-timeout, so that a thread is cut at REQUEST_TIMEOUT.

        mod_wsgi 6 cuts a thread whose request has run request-timeout x
        (1 + ln threads) seconds (wsgi_daemon.c); request-timeout is whole
        seconds, so it is rounded up: never before REQUEST_TIMEOUT, at most
        one step of (1 + ln threads) s after it.
        """
        scale = 1 + math.log(self.WSGI_THREADS)
        return max(1, math.ceil(self.REQUEST_TIMEOUT / scale - 1e-9))

    @property
    def MOD_WSGI_SOCKET_TIMEOUT(self) -> int:
        """How long Apache waits for the daemon's answer before its own JSON 504."""
        return self.REQUEST_TIMEOUT + MOD_WSGI_MARGIN

    @property
    def MOD_WSGI_MODULE_PATH(self) -> str:
        """The mod_wsgi module to load: MOD_WSGI_MODULE, else the one built into VENV
        (natively, as the runner does, the venv wsgistack runs from);
        `mod_wsgi-express module-config` names the same file."""
        if self.MOD_WSGI_MODULE:
            return self.MOD_WSGI_MODULE
        venv = self.VENV or sys.prefix
        pattern = "lib/python3*/site-packages/mod_wsgi/server/mod_wsgi-py3*.so"
        found = sorted(glob.glob(os.path.join(venv, pattern)))
        return found[-1] if found else os.path.join(venv, "mod_wsgi-not-built.so")

    @property
    def MOD_WSGI_FREE_THREADING_LINE(self) -> str:
        """wsgi-daemons.conf's WSGIFreeThreading line (MOD_WSGI_FREE_THREADING=1),
        or a comment: only mod_wsgi 6 knows the directive, and MOD_WSGI_MODULE may
        name Debian's 4.9 or 5.0, which would refuse the config."""
        if self.MOD_WSGI_FREE_THREADING:
            return "WSGIFreeThreading On"
        return "# MOD_WSGI_FREE_THREADING=0: no WSGIFreeThreading (mod_wsgi's default, Off)"

    @property
    def UWSGI_UPSTREAM(self) -> str:
        """The uwsgi socket as nginx names it (``unix:`` prefix for a path)."""
        sock = self.UWSGI_SOCKET
        return f"unix:{sock}" if sock.startswith("/") else sock

    def as_template_values(self) -> dict[str, str]:
        """Every knob and derived value, as strings for ``{{ NAME }}`` placeholders."""
        values = {k: str(v) for k, v in asdict(self).items()}
        for name in dir(type(self)):
            if name.isupper() and isinstance(getattr(type(self), name), property):
                values[name] = str(getattr(self, name))
        return values

    def as_env(self) -> dict[str, str]:
        """The knobs as environment variables, for child processes."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


def _check_addresses(text: str) -> None:
    for address in text.split():
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise SettingsError(
                f"TRUSTED_PROXIES: {address!r} is not an IP address or CIDR range"
            ) from None


def system_resolver(path: str = RESOLV_CONF) -> str:
    """The first nameserver of resolv.conf, as nginx's `resolver` takes it."""
    try:
        with open(path, encoding="utf-8") as conf:
            for line in conf:
                fields_ = line.split()
                if len(fields_) >= 2 and fields_[0] == "nameserver":
                    address = fields_[1].split("%")[0]  # drop an IPv6 zone id
                    return f"[{address}]" if ":" in address else address
    except OSError:
        pass
    return "127.0.0.1"


def at_least(n: int) -> str:
    """A regex alternation matching the decimal whole numbers >= n (no leading 0)."""
    digits = str(n)
    options = [rf"[1-9][0-9]{{{len(digits)},}}"]  # more digits than n
    for i, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - i - 1
            low = int(digit) + 1
            options.append(digits[:i] + f"[{low}-9]" + (f"[0-9]{{{rest}}}" if rest else ""))
    options.append(digits)
    return "|".join(options)


def _parse(knob: Knob, raw: int | str) -> int | str:
    if isinstance(knob.default, str) and knob.derive is None:
        return str(raw)
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit():
        raise SettingsError(f"{knob.env}={raw!r}: expected a whole number ({knob.help})")
    value = int(text)
    if knob.minimum is not None and value < knob.minimum:
        raise SettingsError(f"{knob.env}={value}: must be at least {knob.minimum} ({knob.help})")
    return value
