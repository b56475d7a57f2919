"""The Debian layout (`wsgistack render --layout debian`, wsgistack/debian.py)
read back, and checked by Debian's own servers in their checking modes against
this machine's Debian nginx.conf and apache2.conf (`nginx -t`, `apache2 -t`):
what the systemd server (tests/integration/test_debian_server.py) runs live.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wsgistack import debian, render
from wsgistack.debian import nginx_block_body
from wsgistack.settings import Settings

ETC_NGINX = Path("/etc/nginx")
ETC_APACHE = Path("/etc/apache2")


def render_layout(out: Path, **knobs: str) -> Settings:
    settings = debian.settings_for_debian({"VENV": sys.prefix, **knobs})
    debian.render_debian(render.DEPLOY_DIR, out, settings, render.render_file)
    return settings


def render_into(etc: Path, name: str, monkeypatch, **knobs: str) -> None:
    """The layout's files for the server's /etc/NAME in ``etc``, a copy of
    it elsewhere: the paths the files name moved there too."""
    constant = {"nginx": "NGINX_DIR", "apache2": "APACHE_DIR"}[name]
    monkeypatch.setattr(debian, constant, str(etc / "wsgistack"))
    out = etc.parents[1] / "rendered"
    render_layout(out, **knobs)
    shutil.copytree(out / "etc" / name, etc, dirs_exist_ok=True)
    shutil.copytree(out / str(etc / "wsgistack").lstrip("/"), etc / "wsgistack")


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("request_timeout", ["3", "30"])
def test_the_units_stop_on_the_ladder_with_the_signal_that_drains(tmp_path, request_timeout):
    s = render_layout(tmp_path, REQUEST_TIMEOUT=request_timeout, APP_USER="myapp")
    systemd = tmp_path / "etc/systemd/system"
    uwsgi = unit(systemd / "wsgistack-uwsgi.service")["Service"]
    nginx = unit(systemd / "nginx.service.d/wsgistack.conf")["Service"]
    apache = unit(systemd / "apache2.service.d/wsgistack.conf")["Service"]
    grace = str(s.STOP_GRACE_PERIOD)
    assert grace == str(int(request_timeout) + 15)
    assert uwsgi["TimeoutStopSec"] == nginx["TimeoutStopSec"] == apache["TimeoutStopSec"] == grace
    # SIGTERM to uWSGI's master alone (its graceful hook); SIGQUIT to nginx's,
    # without Debian's 5 s ExecStop; SIGWINCH to Apache's (graceful-stop),
    # without Debian's ExecStop, after which systemd's SIGTERM cut requests
    assert (uwsgi["KillSignal"], uwsgi["KillMode"]) == ("SIGTERM", "mixed")
    assert (nginx["KillSignal"], nginx["ExecStop"]) == ("SIGQUIT", "")
    assert (apache["KillSignal"], apache["ExecStop"]) == ("SIGWINCH", "")
    assert apache["PIDFile"] == "/run/apache2/apache2.pid"
    for service in (uwsgi, nginx, apache):
        assert service["Restart"] == "on-failure"
    assert (uwsgi["User"], uwsgi["Group"]) == ("myapp", "myapp")
    assert uwsgi["RuntimeDirectory"] == "wsgistack" and apache["RuntimeDirectory"] == "apache2"
    # the files the unit names are the layout's
    for ini in re.findall(r"--ini (\S+)", uwsgi["ExecStart"]):
        assert (tmp_path / ini.lstrip("/")).is_file(), ini
    assert "/run/wsgistack/uwsgi.fifo" in uwsgi["ExecReload"]
    rendered = (tmp_path / "etc/wsgistack/uwsgi.ini").read_text()
    assert "socket = /run/wsgistack/uwsgi.sock" in rendered
    assert "chown-socket = myapp:myapp" in (tmp_path / "etc/wsgistack/systemd.ini").read_text()
    daemons = (tmp_path / "etc/apache2/wsgistack/wsgi-daemons.conf").read_text()
    assert "user=myapp" in daemons and "group=myapp" in daemons


def test_nothing_of_the_layout_is_in_tmp_or_on_stdout(tmp_path):
    """Sockets and pids on /run (RuntimeDirectory=), never a predictable /tmp
    folder; no log opened as /dev/stdout or /dev/stderr (the journal's socket).
    The server's own venv: the test's may be anywhere (a checkout under /tmp)."""
    render_layout(tmp_path, VENV=debian.DEBIAN_DEFAULTS["VENV"])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "/tmp/" not in text, path
            assert "/dev/stdout" not in text and "/dev/stderr" not in text, path


def test_the_uwsgi_stack_keeps_its_shape_of_one_thread(tmp_path, monkeypatch):
    for knob in ("WSGI_THREADS", "WSGI_PROCESSES"):
        monkeypatch.delenv(knob, raising=False)
    render_layout(tmp_path)
    ini = (tmp_path / "etc/wsgistack/uwsgi.ini").read_text()
    assert re.search(r"^threads = 1$", ini, re.M), "uWSGI's harakiri is exact with 1 thread"


def directives(block: str) -> set[str]:
    return {s.name for s in debian._nginx_statements(block)[0]}


@pytest.mark.skipif(not (ETC_NGINX / "nginx.conf").is_file(), reason="Debian's nginx: make deps")
def test_debians_nginx_conf_takes_the_site_as_it_is(tmp_path, monkeypatch):
    """This machine's Debian nginx.conf, unchanged but for its folder, with
    the site enabled: `nginx -t` accepts it (a directive Debian sets too would
    be refused as a duplicate)."""
    etc = tmp_path / "etc/nginx"
    render_into(etc, "nginx", monkeypatch)
    debians = (ETC_NGINX / "nginx.conf").read_text()
    site = (etc / "sites-available/wsgistack").read_text()
    clash = directives(nginx_block_body(debians, "http")) & directives(site)
    assert clash <= {"access_log", "include"}, clash
    assert (etc / "wsgistack/conf.d/app.conf").is_file()
    (etc / "sites-enabled").mkdir()
    (etc / "sites-enabled/wsgistack").symlink_to("../sites-available/wsgistack")
    shutil.copy(ETC_NGINX / "mime.types", etc / "mime.types")
    (etc / "modules-enabled").mkdir()
    (etc / "conf.d").mkdir(exist_ok=True)
    conf = debians.replace("/etc/nginx/", f"{etc}/")
    conf = re.sub(r"^(\s*error_log)\s+\S+;", r"\1 stderr;", conf, flags=re.M)
    conf = re.sub(r"^(\s*pid)\s+\S+;", rf"\1 {tmp_path}/nginx.pid;", conf, flags=re.M)
    (etc / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    result = subprocess.run(
        [nginx, "-t", "-q", "-e", "stderr", "-c", str(etc / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(
    not (ETC_APACHE / "apache2.conf").is_file() or os.geteuid() != 0,
    reason="Debian's Apache (make deps), checked as root as Debian's apache2ctl does",
)
def test_debians_apache2_conf_takes_the_conf_and_site(tmp_path, monkeypatch):
    """This machine's Debian /etc/apache2, copied, with the layout's files in
    and its modules, conf and site enabled the a2enmod way: `apache2 -t`."""
    etc = tmp_path / "etc/apache2"
    shutil.copytree(ETC_APACHE, etc, symlinks=True)
    # an account this machine has (apache2 -t looks the daemons' user up)
    render_into(etc, "apache2", monkeypatch, APP_USER="www-data")
    if not any(Path(sys.prefix, "lib").glob("python3*/site-packages/mod_wsgi/server/*.so")):
        pytest.skip("no mod_wsgi in the venv (make venv builds it)")
    for name in (etc / "wsgistack/modules").read_text().split():
        for suffix in (".load", ".conf"):
            available = etc / "mods-available" / f"{name}{suffix}"
            enabled = etc / "mods-enabled" / f"{name}{suffix}"
            if available.exists() and not enabled.exists():
                enabled.symlink_to(f"../mods-available/{name}{suffix}")
    for kind in ("conf", "sites"):
        enabled = etc / f"{kind}-enabled/wsgistack.conf"
        if not enabled.exists():
            enabled.symlink_to(f"../{kind}-available/wsgistack.conf")
    (etc / "sites-enabled/000-default.conf").unlink(missing_ok=True)
    env = {
        **os.environ,
        "APACHE_RUN_USER": "www-data",
        "APACHE_RUN_GROUP": "www-data",
        "APACHE_PID_FILE": str(tmp_path / "apache2.pid"),
        "APACHE_RUN_DIR": str(tmp_path),
        "APACHE_LOCK_DIR": str(tmp_path),
        "APACHE_LOG_DIR": str(tmp_path),
    }
    apache2 = shutil.which("apache2", path="/usr/sbin:/usr/bin")
    result = subprocess.run(
        [apache2, "-t", "-d", str(etc), "-f", str(etc / "apache2.conf")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_wsgistack_render_writes_the_layout(tmp_path, capsys):
    from wsgistack import cli

    assert cli.main(["render", "--layout", "debian", "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert str(tmp_path / "etc/nginx/sites-available/wsgistack") in written
    assert all(Path(path).is_file() for path in written)
    assert not (tmp_path / ".rendered").exists()
    with pytest.raises(SystemExit):
        cli.main(["render", "--out", str(tmp_path)])  # neither templates nor a layout
