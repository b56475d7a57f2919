"""Rendering deploy/: where each placeholder's value comes from, and the values
each config folder's module (wsgistack/configs/) derives from the knobs."""

import math
import re
from pathlib import Path

import pytest

from wsgistack.configs import apache_mod_wsgi, nginx, proxy, uwsgi
from wsgistack.render import (
    FOLDERS,
    PLACEHOLDER,
    RenderError,
    folder_of,
    render_file,
    render_text,
    template_values,
)
from wsgistack.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def placeholders(folder: Path) -> set[str]:
    return {
        match.group(1)
        for path in folder.rglob("*")
        if path.is_file()
        for match in PLACEHOLDER.finditer(path.read_text(errors="replace"))
    }


def test_every_folder_with_placeholders_is_one_render_knows():
    templated = {folder.name for folder in DEPLOY.iterdir() if placeholders(folder)}
    assert templated == set(FOLDERS)


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_placeholder_has_one_source_and_every_derived_value_a_use(folder):
    s = Settings.from_env({})
    sources = {"the knobs": set(s.as_env())}
    sources |= {derive.__module__: set(derive(s)) for derive in FOLDERS[folder]}
    for name in placeholders(DEPLOY / folder):
        given_by = [source for source, names in sources.items() if name in names]
        assert len(given_by) == 1, (name, given_by)
    for derive in FOLDERS[folder]:
        assert set(derive(s)) <= placeholders(DEPLOY / folder), derive.__module__


def test_a_template_gets_the_values_of_the_folder_it_is_in():
    assert folder_of(Path("/srv/deploy/nginx")) == "nginx"
    assert folder_of(DEPLOY / "nginx" / "snippets" / "static.conf") == "nginx"
    assert folder_of(DEPLOY / "uwsgi" / "uwsgi.ini") == "uwsgi"
    assert folder_of(Path("/tmp/elsewhere.conf")) == ""
    s = Settings.from_env({})
    assert "NGINX_TRUSTED_GEO" in template_values(s, "nginx")
    assert "NGINX_TRUSTED_GEO" not in template_values(s, "apache-mod_wsgi")
    assert template_values(s, "") == s.as_env()
    assert template_values(s, "uwsgi") == {**s.as_env(), **uwsgi.values(s)}
    assert "UWSGI_RELOAD_ON_RSS" in uwsgi.values(s)


def test_render_fills_placeholders_and_leaves_server_variables_alone():
    values = template_values(Settings.from_env({}), "nginx")
    text = "listen {{ PORT }}; set $x $host; Define ${APACHE_LOG_DIR}; t {{PROXY_TIMEOUT}}"
    assert render_text(text, values) == "listen 8080; set $x $host; Define ${APACHE_LOG_DIR}; t 35"


def test_render_refuses_an_unknown_placeholder_with_its_line():
    with pytest.raises(RenderError, match=r"conf:2: unknown placeholder \{\{ NOPE \}\}"):
        render_text("a\nb {{ NOPE }}", {}, "conf")


def test_a_folder_renders_file_by_file_with_its_own_values(tmp_path):
    s = Settings.from_env({}, RUN_DIR=str(tmp_path), TRUSTED_PROXIES="192.0.2.7")
    out = render_file(DEPLOY / "nginx", tmp_path, s)
    assert out == tmp_path / "nginx"
    assert "192.0.2.7 1;" in (out / "nginx.conf").read_text()
    assert not placeholders(out)


@pytest.mark.parametrize("folder", ["nginx", "apache-mod_wsgi"])
def test_both_proxies_include_the_tls_sites_and_the_redirect_with_tls_only(folder):
    off, on = proxy.values(Settings.from_env({})), proxy.values(Settings.from_env({"TLS": "1"}))
    assert (off["TLS_SITES"], on["TLS_SITES"]) == ("tls.d/*.disabled", "tls.d/*.conf")
    assert not list((DEPLOY / folder).glob(off["TLS_SITES"]))
    assert list((DEPLOY / folder).glob(on["TLS_SITES"]))
    for values in (off, on):
        assert (DEPLOY / folder / values["HTTPS_REDIRECT"]).is_file()
    assert off["HTTPS_REDIRECT"] != on["HTTPS_REDIRECT"]


def test_nginx_names_the_uwsgi_socket_as_its_upstream():
    unix = nginx.values(Settings.from_env({"RUN_DIR": "/run/x"}))
    assert unix["UWSGI_UPSTREAM"] == "unix:/run/x/uwsgi.sock"
    tcp = nginx.values(Settings.from_env({"UWSGI_SOCKET": "uwsgi-app:3031"}))
    assert tcp["UWSGI_UPSTREAM"] == "uwsgi-app:3031"


def test_the_resolver_is_the_systems_first_nameserver(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example\nnameserver 127.0.0.11\nnameserver 10.0.0.1\n")
    assert nginx.system_resolver(str(conf)) == "127.0.0.11"
    conf.write_text("nameserver fe80::1%eth0\n")
    assert nginx.system_resolver(str(conf)) == "[fe80::1]"
    assert nginx.system_resolver(str(tmp_path / "missing")) == "127.0.0.1"
    default = nginx.values(Settings.from_env({}))
    assert default["NGINX_RESOLVER"] == nginx.system_resolver()
    given = nginx.values(Settings.from_env({"DNS_RESOLVER": "10.1.2.3"}))
    assert given["NGINX_RESOLVER"] == "10.1.2.3"


@pytest.mark.parametrize("n", [1, 3, 9, 10, 29, 30, 99, 100, 305, 600])
def test_the_harakiri_pattern_matches_response_times_of_at_least_the_timeout(n):
    pattern = re.compile(nginx.harakiri_time_pattern(n))
    # uWSGI 2.0.28's harakiri may fire up to a second early (a whole-second clock)
    for seconds in range(0, 1500):
        assert bool(pattern.search(f"{seconds}.004")) == (seconds >= n - 1), seconds
    # with a retry, nginx lists every try's time: the last one counts
    assert pattern.search(f"0.001, {n}.010")
    if n > 1:
        assert not pattern.search(f"{n}.010, 0.001")


@pytest.mark.parametrize("timeout", [1, 2, 3, 30])
def test_nginx_never_retries_a_request_the_app_server_killed_for_its_timeout(timeout):
    window = nginx.retry_window(Settings.from_env({"REQUEST_TIMEOUT": str(timeout)}))
    # nginx retries only while less than the window has passed; the kill comes
    # after REQUEST_TIMEOUT - 1 s at the earliest (uWSGI 2.0.28)
    assert window >= 1
    assert window <= timeout - 1 or timeout == 1


def test_nginx_trusts_forwarded_headers_from_the_trusted_proxies_only():
    none = nginx.values(Settings.from_env({}))
    assert none["NGINX_REAL_IP_FROM"].startswith("# ")
    assert none["NGINX_TRUSTED_GEO"] == ""
    two = nginx.values(Settings.from_env({"TRUSTED_PROXIES": "10.0.0.0/8 2001:db8::1"}))
    assert two["NGINX_REAL_IP_FROM"].split("\n    ") == [
        "set_real_ip_from 10.0.0.0/8;",
        "set_real_ip_from 2001:db8::1;",
    ]
    assert two["NGINX_TRUSTED_GEO"].split("\n        ") == ["10.0.0.0/8 1;", "2001:db8::1 1;"]


@pytest.mark.parametrize(
    ("processes", "threads", "backlog", "workers", "limit"),
    [(2, 8, 128, 512, 16), (8, 32, 1000, 2560, 80), (1, 1, 300, 640, 20)],
)
def test_apache_is_sized_for_twice_what_the_daemons_take(
    processes, threads, backlog, workers, limit
):
    s = Settings.from_env(
        {
            "WSGI_PROCESSES": str(processes),
            "WSGI_THREADS": str(threads),
            "LISTEN_BACKLOG": str(backlog),
        }
    )
    values = apache_mod_wsgi.values(s)
    assert int(values["APACHE_MAX_REQUEST_WORKERS"]) == workers
    assert workers % 64 == 0 and workers >= 2 * s.PROXY_MAX_CONNS
    assert int(values["APACHE_SERVER_LIMIT"]) == limit


@pytest.mark.parametrize("threads", [1, 2, 8, 16, 64])
@pytest.mark.parametrize("timeout", [1, 7, 30, 600])
def test_mod_wsgi_cuts_a_request_at_the_request_timeout(threads, timeout):
    # mod_wsgi 6 cuts a thread at request-timeout x (1 + ln threads) seconds
    s = Settings.from_env({"WSGI_THREADS": str(threads), "REQUEST_TIMEOUT": str(timeout)})
    scale = 1 + math.log(threads)
    cut = apache_mod_wsgi.request_timeout(s) * scale
    assert timeout - 1e-6 <= cut < timeout + scale
    assert apache_mod_wsgi.values(s)["MOD_WSGI_SOCKET_TIMEOUT"] == str(timeout + 1)


def test_apache_trusts_no_forwarded_header_unless_told():
    # mod_remoteip given a RemoteIPHeader and no proxy list believes every
    # peer: with TRUSTED_PROXIES empty there must be no RemoteIPHeader at all
    none = apache_mod_wsgi.values(Settings.from_env({}))
    assert all(line.startswith("#") for line in none["APACHE_REMOTE_IP"].splitlines())
    assert none["APACHE_FROM_TRUSTED_PROXY"] == "false"
    two = apache_mod_wsgi.values(Settings.from_env({"TRUSTED_PROXIES": "10.0.0.0/8 2001:db8::1"}))
    assert two["APACHE_REMOTE_IP"].splitlines() == [
        "RemoteIPHeader X-Forwarded-For",
        "RemoteIPInternalProxy 10.0.0.0/8",
        "RemoteIPInternalProxy 2001:db8::1",
    ]
    assert two["APACHE_FROM_TRUSTED_PROXY"] == (
        "%{CONN_REMOTE_ADDR} -ipmatch '10.0.0.0/8' || %{CONN_REMOTE_ADDR} -ipmatch '2001:db8::1'"
    )


def test_mod_wsgi_free_threading_is_rendered_only_when_on():
    off = apache_mod_wsgi.values(Settings.from_env({}))
    on = apache_mod_wsgi.values(Settings.from_env({"MOD_WSGI_FREE_THREADING": "1"}))
    assert off["MOD_WSGI_FREE_THREADING_LINE"].startswith("# ")
    assert on["MOD_WSGI_FREE_THREADING_LINE"] == "WSGIFreeThreading On"


def test_the_mod_wsgi_module_is_the_one_named_else_the_one_built_into_the_venv(tmp_path):
    named = Settings.from_env({"MOD_WSGI_MODULE": "/x/mod_wsgi.so", "VENV": str(tmp_path)})
    assert apache_mod_wsgi.module_path(named) == "/x/mod_wsgi.so"
    venv = Settings.from_env({"VENV": str(tmp_path)})
    assert apache_mod_wsgi.module_path(venv) == str(tmp_path / "mod_wsgi-not-built.so")
    built = tmp_path / "lib/python3.13/site-packages/mod_wsgi/server/mod_wsgi-py313.so"
    built.parent.mkdir(parents=True)
    built.touch()
    assert apache_mod_wsgi.module_path(venv) == str(built)


def test_metrics_off_renders_no_status_site_no_exporter_and_no_folder(tmp_path):
    """METRICS=0: nothing listens on the metrics ports and the app counts nothing."""
    off = Settings.from_env({}, METRICS=0)
    on = Settings.from_env({}, METRICS=1)
    assert template_values(off, "nginx")["STATUS_SITES"] == "status.d/*.disabled"
    assert template_values(on, "nginx")["STATUS_SITES"] == "status.d/*.conf"
    assert template_values(off, "apache-mod_wsgi")["METRICS_DIR"] == ""
    assert template_values(on, "apache-mod_wsgi")["METRICS_DIR"] == on.METRICS_DIR
    assert uwsgi.metrics_lines(off).startswith("#")
    lines = uwsgi.metrics_lines(on).splitlines()
    assert lines[0] == f"env = PROMETHEUS_MULTIPROC_DIR={on.METRICS_DIR}"
    assert "wsgistack.exporter uwsgi" in lines[2]
