"""The stacks ``wsgistack up`` can start natively, and how each one is built.

Each stack renders its configs from ``deploy/`` into the run folder and names
its server processes; ``wsgistack.runner`` does the starting, waiting and
stopping for all of them alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from wsgistack.configs.apache_mod_wsgi import module_path
from wsgistack.render import render_file
from wsgistack.runner import Server, StackError, StackSpec, binary
from wsgistack.settings import Settings
from wsgistack.tls import ensure_certificate

ROOT = Path(__file__).resolve().parents[1]
DEPLOY_DIR = Path(os.environ.get("WSGISTACK_DEPLOY_DIR", ROOT / "deploy"))

APT_UWSGI = "apt-get install uwsgi-core uwsgi-plugin-python3"
APT_NGINX = "apt-get install nginx"
APT_APACHE = "apt-get install apache2"
# mod_wsgi is built into the venv from requirements-mod_wsgi.txt (make venv),
# against Debian's Apache and Python headers
APT_MOD_WSGI_BUILD = "apt-get install apache2-dev python3-dev"


def _venv_bin(settings: Settings, name: str) -> str:
    return str(Path(settings.VENV) / "bin" / name)


def _signal(signum: int):
    def send(proc: subprocess.Popen) -> None:
        proc.send_signal(signum)

    return send


def _uwsgi_chain_reload(run_dir: Path):
    def reload(proc: subprocess.Popen) -> None:
        # "c": chain reload, one worker at a time, so some always serve
        # https://uwsgi-docs.readthedocs.io/en/latest/MasterFIFO.html
        with open(run_dir / "uwsgi.fifo", "w") as fifo:
            fifo.write("c")

    return reload


def devserver(settings: Settings, run_dir: Path) -> list[Server]:
    if settings.WSGI_PROCESSES != 1:
        raise StackError("the development server runs one process only (--processes 1)")
    threads = "--with-threads" if settings.WSGI_THREADS > 1 else "--without-threads"
    argv = [
        _venv_bin(settings, "python"),
        "-m",
        "flask",
        "--app",
        settings.WSGI_APP,
        "run",
        "--host",
        settings.BIND_ADDRESS,
        "--port",
        str(settings.PORT),
        "--no-reload",
        "--no-debugger",
        threads,
    ]
    return [Server("devserver", argv, stop_signal=signal.SIGTERM)]


def gunicorn(settings: Settings, run_dir: Path) -> list[Server]:
    argv = [
        _venv_bin(settings, "gunicorn"),
        "--config",
        str(DEPLOY_DIR / "gunicorn" / "gunicorn.conf.py"),
        settings.WSGI_APP,
    ]
    return [
        Server("gunicorn", argv, stop_signal=signal.SIGTERM, reload=_signal(signal.SIGHUP)),
    ]


def uwsgi(settings: Settings, run_dir: Path) -> list[Server]:
    ini = render_file(DEPLOY_DIR / "uwsgi" / "uwsgi.ini", run_dir, settings)
    nginx_dir = render_file(DEPLOY_DIR / "nginx", run_dir, settings)
    ensure_certificate(settings)
    return [
        Server(
            "uwsgi",
            [binary("uwsgi"), "--ini", str(ini)],
            # drains on SIGTERM: see hook-master-start in uwsgi.ini
            stop_signal=signal.SIGTERM,
            reload=_uwsgi_chain_reload(run_dir),
        ),
        Server(
            "nginx",
            [binary("nginx"), "-e", "stderr", "-p", str(nginx_dir), "-c", "nginx.conf"],
            # SIGQUIT: graceful shutdown (SIGTERM would cut in-flight requests)
            stop_signal=signal.SIGQUIT,
            # SIGHUP: new workers with the new config, old ones finish first
            reload=_signal(signal.SIGHUP),
        ),
    ]


def uwsgi_direct(settings: Settings, run_dir: Path) -> list[Server]:
    """uWSGI alone on its own HTTP socket: the benchmark's yardstick for nginx's cost."""
    ini = render_file(DEPLOY_DIR / "uwsgi" / "uwsgi.ini", run_dir, settings)
    http = f"{settings.BIND_ADDRESS}:{settings.PORT}"
    return [
        Server(
            "uwsgi",
            [binary("uwsgi"), "--ini", str(ini), "--http-socket", http],
            stop_signal=signal.SIGTERM,
            reload=_uwsgi_chain_reload(run_dir),
        ),
    ]


def apache(settings: Settings, run_dir: Path) -> list[Server]:
    module = Path(module_path(settings))
    if not module.is_file():
        raise StackError(
            f"no mod_wsgi module at {module}: the Apache stack loads mod_wsgi 6 built into "
            f"the venv (`make venv`, which needs `{APT_MOD_WSGI_BUILD}`), "
            "or the file named by MOD_WSGI_MODULE"
        )
    conf_dir = render_file(DEPLOY_DIR / "apache-mod_wsgi", run_dir, settings)
    ensure_certificate(settings)

    def reload_daemons(proc: subprocess.Popen) -> None:
        # SIGUSR1 to the mod_wsgi daemons ("(wsgi:app)" in ps), not to Apache:
        # each finishes its requests (graceful-timeout) and re-imports the app.
        # Apache's own graceful restart kills busy daemons after 3 s and refuses
        # a few requests while it re-creates their socket
        # (deploy/apache-mod_wsgi/wsgi-daemons.conf, docs/apache-mod_wsgi.md).
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                daemon = (entry / "cmdline").read_bytes().startswith(b"(wsgi:")
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if ppid == proc.pid and daemon:
                os.kill(int(entry.name), signal.SIGUSR1)

    return [
        Server(
            "apache",
            [
                binary("apache2"),
                "-d",
                str(conf_dir),
                "-f",
                str(conf_dir / "httpd.conf"),
                "-DFOREGROUND",
            ],
            # SIGWINCH: graceful stop, in-flight requests finish (SIGTERM cuts them)
            stop_signal=signal.SIGWINCH,
            reload=reload_daemons,
        ),
    ]


def granian(settings: Settings, run_dir: Path) -> list[Server]:
    """granian alone, no proxy: its options are in deploy/granian/serve.py."""
    argv = [_venv_bin(settings, "python"), str(DEPLOY_DIR / "granian" / "serve.py")]
    return [
        Server(
            "granian",
            argv,
            # SIGTERM: workers stop accepting and finish their requests
            # (workers_kill_timeout); SIGHUP: workers replaced one by one
            stop_signal=signal.SIGTERM,
            reload=_signal(signal.SIGHUP),
        ),
    ]


def granian_bare(settings: Settings, run_dir: Path) -> list[Server]:
    """granian as its own command line starts it, with only the address, the
    processes x threads and the app given: the benchmark's yardstick for what
    deploy/granian/serve.py's options cost."""
    argv = [
        _venv_bin(settings, "granian"),
        "--interface",
        "wsgi",
        "--host",
        settings.BIND_ADDRESS,
        "--port",
        str(settings.PORT),
        "--workers",
        str(settings.WSGI_PROCESSES),
        "--blocking-threads",
        str(settings.WSGI_THREADS),
        settings.WSGI_APP,
    ]
    return [Server("granian", argv, stop_signal=signal.SIGTERM)]


STACKS: dict[str, StackSpec] = {
    spec.name: spec
    for spec in (
        StackSpec(
            "uwsgi",
            "nginx + uWSGI (uwsgi protocol over a unix socket)",
            8080,
            {"nginx": APT_NGINX, "uwsgi": APT_UWSGI},
            uwsgi,
            needs_system_python=True,
            # processes of one thread each by default (wsgistack/settings.py)
            server="uwsgi",
            proxied=True,
        ),
        StackSpec(
            "apache",
            "Apache + mod_wsgi (daemon mode)",
            8081,
            {"apache2": APT_APACHE},
            apache,
            needs_system_python=True,
            server="mod_wsgi",
            proxied=True,
        ),
        StackSpec(
            "gunicorn",
            "gunicorn (gthread workers), no proxy",
            8082,
            {},
            gunicorn,
            server="gunicorn",
        ),
        StackSpec(
            "devserver",
            "the Flask development server: for comparison only",
            8083,
            {},
            devserver,
            server="devserver",
        ),
        StackSpec(
            "uwsgi-direct",
            "uWSGI alone on its HTTP socket (benchmark yardstick)",
            8084,
            {"uwsgi": APT_UWSGI},
            uwsgi_direct,
            needs_system_python=True,
            server="uwsgi",
        ),
        StackSpec(
            "granian",
            "granian (Rust HTTP server, WSGI threads), no proxy",
            8085,
            {},
            granian,
            server="granian",
        ),
        StackSpec(
            "granian-bare",
            "granian with its own defaults (benchmark yardstick)",
            8086,
            {},
            granian_bare,
        ),
    )
}


def get_stack(name: str) -> StackSpec:
    try:
        return STACKS[name]
    except KeyError:
        raise StackError(f"unknown stack {name!r}; choose one of: {', '.join(STACKS)}") from None
