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

This module uses the standard library only: container images without the app's
virtualenv (nginx) run ``python3 -m wsgistack.render`` too.
"""

from __future__ import annotations

import glob
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

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


# the knobs, with defaults that are safe for production on a small machine
KNOBS: tuple[Knob, ...] = (
    Knob(
        "WSGI_PROCESSES",
        2,
        "worker processes (uWSGI processes, mod_wsgi processes, gunicorn workers)",
        1,
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
        256,
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
    Knob(
        "MOD_WSGI_MODULE",
        "",
        "the mod_wsgi module Apache loads; default: the one built into VENV (make venv)",
    ),
)


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
    MOD_WSGI_MODULE: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: int | str) -> Settings:
        """Defaults, then ``env`` (os.environ when None), then keyword overrides."""
        env = os.environ if env is None else env
        values: dict[str, int | str] = {}
        for knob in KNOBS:
            raw = overrides.get(knob.env, env.get(knob.env, knob.default))
            values[knob.env] = _parse(knob, raw)
        if not values["UWSGI_SOCKET"]:
            values["UWSGI_SOCKET"] = os.path.join(str(values["RUN_DIR"]), "uwsgi.sock")
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
        return self.WORKER_SLOTS + self.LISTEN_BACKLOG

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


def _parse(knob: Knob, raw: int | str) -> int | str:
    if isinstance(knob.default, str):
        return str(raw)
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit():
        raise SettingsError(f"{knob.env}={raw!r}: expected a whole number ({knob.help})")
    value = int(text)
    if knob.minimum is not None and value < knob.minimum:
        raise SettingsError(f"{knob.env}={value}: must be at least {knob.minimum} ({knob.help})")
    return value
