"""The configs in deploy/, rendered and checked by the servers themselves in
their checking modes (``nginx -t``, ``apache2 -t``, uWSGI's strict mode through
``--get``) and by gixy, and the timeout ladder read back from the rendered
files. Fast tier: no server starts, nothing goes over the network; without a
server's binary its checks skip, saying what installs it (a failure in CI)."""

from __future__ import annotations

import math
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wsgistack.configs.apache_mod_wsgi import module_path
from wsgistack.configs.nginx import retry_window
from wsgistack.render import render_file
from wsgistack.settings import Settings
from wsgistack.stacks import DEPLOY_DIR
from wsgistack.tls import ensure_certificate


def need(binary: str) -> str:
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{binary} is not installed (make deps installs it)")
    return path


def rendered(tmp_path, name: str, **overrides) -> tuple:
    settings = Settings.from_env({}, RUN_DIR=str(tmp_path), VENV="/usr", **overrides)
    return render_file(DEPLOY_DIR / name, tmp_path, settings), settings


def uwsgi_get(ini, option: str) -> str:
    """Ask uWSGI itself for an option's value; strict mode rejects unknown options."""
    result = subprocess.run(
        [need("uwsgi"), "--ini", str(ini), "--get", option],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def nginx_check(conf_dir: Path) -> str:
    """`nginx -t` of a rendered folder: it must pass; what nginx said."""
    result = subprocess.run(
        [need("nginx"), "-t", "-e", "stderr", "-p", str(conf_dir), "-c", "nginx.conf"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    return result.stderr


def apache_check(conf_dir: Path) -> str:
    """`apache2 -t` of a rendered folder: it must pass; what Apache said."""
    result = subprocess.run(
        [need("apache2"), "-t", "-d", str(conf_dir), "-f", str(conf_dir / "httpd.conf")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "Syntax OK" in result.stderr
    return result.stderr


@pytest.mark.parametrize(("tls", "gzip_level"), [("0", "1"), ("1", "9"), ("0", "0")])
def test_nginx_accepts_its_rendered_config(tmp_path, tls, gzip_level):
    conf_dir, settings = rendered(
        tmp_path, "nginx", TLS=tls, TRUSTED_PROXIES="10.0.0.0/8", GZIP_LEVEL=gzip_level
    )
    ensure_certificate(settings)
    # and warns of nothing (a duplicate media type, a hash too small)
    assert "[warn]" not in nginx_check(conf_dir)


def mod_wsgi_module() -> str:
    """The mod_wsgi 6 module built into this venv (make venv)."""
    path = module_path(Settings.from_env({}, VENV=sys.prefix))
    if not Path(path).is_file():
        pytest.skip(f"mod_wsgi is not built into the venv ({path}): make deps venv")
    return path


# MOD_WSGI_FREE_THREADING=1: WSGIFreeThreading On where mod_wsgi 6 takes it (the
# server config); on this GIL Python it only logs a warning
# GZIP_LEVEL=0: the gzip filter declared but not chained
@pytest.mark.parametrize(
    ("tls", "free_threading", "gzip_level"), [("0", "0", "1"), ("1", "0", "9"), ("0", "1", "0")]
)
def test_apache_accepts_its_rendered_config(tmp_path, tls, free_threading, gzip_level):
    conf_dir, settings = rendered(
        tmp_path,
        "apache-mod_wsgi",
        MOD_WSGI_MODULE=mod_wsgi_module(),
        TLS=tls,
        TRUSTED_PROXIES="10.0.0.0/8 192.0.2.7",
        MOD_WSGI_FREE_THREADING=free_threading,
        GZIP_LEVEL=gzip_level,
    )
    ensure_certificate(settings)
    apache_check(conf_dir)


@pytest.mark.parametrize("level", [0, 1, 9])
def test_both_proxies_compress_at_the_gzip_level(tmp_path, level):
    nginx_dir, _ = rendered(tmp_path / "n", "nginx", GZIP_LEVEL=str(level))
    nginx = (nginx_dir / "nginx.conf").read_text()
    assert re.search(rf"^\s*gzip {'on' if level else 'off'};$", nginx, re.M)
    assert re.search(rf"^\s*gzip_comp_level {level or 1};$", nginx, re.M)
    apache_dir, _ = rendered(tmp_path / "a", "apache-mod_wsgi", GZIP_LEVEL=str(level))
    apache = (apache_dir / "snippets" / "compression.conf").read_text()
    assert bool(re.search(r"^FilterChain gzip$", apache, re.M)) == bool(level)
    assert re.search(rf"^DeflateCompressionLevel {level or 1}$", apache, re.M)


def test_nginx_buffers_its_access_log_in_writes_a_pipe_keeps_whole(tmp_path):
    nginx_dir, _ = rendered(tmp_path, "nginx")
    logs = re.findall(
        r"^\s*access_log (\S+) (\S+)(.*);$", (nginx_dir / "nginx.conf").read_text(), re.M
    )
    assert ("/dev/stdout", "json_lines") in [(path, name) for path, name, _ in logs], logs
    for path, _, options in logs:
        if path == "off":
            continue
        # a buffer of at most PIPE_BUF: each write lands whole in Docker's or
        # the runner's pipe, never mid-line among another worker's
        size = re.search(r"buffer=(\d+)k", options)
        assert size and int(size[1]) * 1024 <= select.PIPE_BUF, options
        # and a line waits at most a second
        assert "flush=1s" in options, options


@pytest.mark.parametrize("megabytes", [0, 96])
def test_uwsgi_reads_its_memory_only_to_recycle_on_it(tmp_path, megabytes):
    ini, _ = rendered(tmp_path, "uwsgi/uwsgi.ini", RELOAD_ON_RSS_MB=str(megabytes))
    text = ini.read_text()
    # the option's presence, even "= 0", makes uWSGI read /proc/self/stat per request
    assert bool(re.search(r"^reload-on-rss = ", text, re.M)) == bool(megabytes)
    assert ("%(rssM)" in text) == bool(megabytes)
    assert uwsgi_get(ini, "reload-on-rss") == (str(megabytes) if megabytes else "")


def test_uwsgi_strict_mode_accepts_the_config_and_rejects_a_typo(tmp_path):
    ini, settings = rendered(tmp_path, "uwsgi/uwsgi.ini")
    assert uwsgi_get(ini, "strict") == "true"
    assert uwsgi_get(ini, "processes") == str(settings.WSGI_PROCESSES)
    typo = tmp_path / "typo.ini"
    typo.write_text(ini.read_text() + "\nharakri = 5\n")
    result = subprocess.run(
        [need("uwsgi"), "--ini", str(typo), "--get", "harakiri"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "unknown config directive: harakri" in result.stderr


@pytest.mark.parametrize("request_timeout", [3, 30, 300])
def test_timeout_ladder_app_server_then_proxy_then_stop_grace(tmp_path, request_timeout):
    ini, settings = rendered(tmp_path, "uwsgi/uwsgi.ini", REQUEST_TIMEOUT=request_timeout)
    conf_dir, _ = rendered(tmp_path, "nginx", REQUEST_TIMEOUT=request_timeout)
    harakiri = int(uwsgi_get(ini, "harakiri"))
    site = (conf_dir / "snippets" / "proxy-to-app.conf").read_text()
    read_timeout = int(re.search(r"^\s*uwsgi_read_timeout (\d+)s;", site, re.M).group(1))
    assert harakiri == request_timeout
    assert harakiri < read_timeout < settings.STOP_GRACE_PERIOD


@pytest.mark.parametrize("request_timeout", [3, 30, 300])
@pytest.mark.parametrize("threads", [1, 4, 8, 32])
def test_timeout_ladder_on_apache(tmp_path, request_timeout, threads):
    # mod_wsgi 6 cuts a thread at request-timeout x (1 + ln threads): at
    # REQUEST_TIMEOUT or up to one step later, never before; Apache's
    # socket-timeout answers the client 1 s after REQUEST_TIMEOUT; the grace
    # period comes after both
    apache_dir, settings = rendered(
        tmp_path, "apache-mod_wsgi", REQUEST_TIMEOUT=request_timeout, WSGI_THREADS=threads
    )
    daemon = (apache_dir / "wsgi-daemons.conf").read_text()
    options = dict(re.findall(r"(?<![\w-])(request-timeout|socket-timeout)=(\d+)", daemon))
    scale = 1 + math.log(threads)
    cut = int(options["request-timeout"]) * scale
    assert request_timeout <= cut < request_timeout + scale
    assert int(options["socket-timeout"]) == request_timeout + 1
    assert cut < settings.STOP_GRACE_PERIOD


@pytest.mark.parametrize(
    "knobs",
    [
        {},
        {"UWSGI_SOCKET": "uwsgi-app:3031", "REQUEST_TIMEOUT": "3"},
        {"TLS": "1", "TRUSTED_PROXIES": "10.0.0.0/8 192.0.2.7"},
    ],
    ids=["native", "containers", "tls-behind-balancer"],
)
def test_gixy_finds_nothing_in_the_rendered_nginx_config(tmp_path, knobs):
    """gixy (PyPI gixy-ng), a static analyser of nginx configs no one here
    wrote: no finding of any severity, natively and as the containers render it."""
    conf_dir, _ = rendered(tmp_path, "nginx", **knobs)
    gixy = Path(sys.executable).with_name("gixy")
    result = subprocess.run(
        [str(gixy), str(conf_dir / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=conf_dir,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"Low: 0\s+Medium: 0\s+High: 0", result.stdout), result.stdout[-3000:]


@pytest.mark.parametrize("request_timeout", [3, 30])
def test_nginx_can_retry_a_dead_replica_inside_the_retry_window(tmp_path, request_timeout):
    """A connection to a replica that is gone times out; the retry on the next
    one must still fit in the window in which nginx may retry at all."""
    conf_dir, settings = rendered(tmp_path, "nginx", REQUEST_TIMEOUT=request_timeout)
    site = (conf_dir / "snippets" / "proxy-to-app.conf").read_text()
    connect = int(re.search(r"^uwsgi_connect_timeout (\d+)s;", site, re.M).group(1))
    window = int(re.search(r"^uwsgi_next_upstream_timeout (\d+)s;", site, re.M).group(1))
    assert window == retry_window(settings)
    assert connect < window
