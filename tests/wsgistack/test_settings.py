"""The knobs and the values derived from them."""

import re

import pytest

from wsgistack.cpus import available_cpus
from wsgistack.render import RenderError, render_text
from wsgistack.settings import Settings, SettingsError, system_resolver


def test_defaults_then_environment_then_overrides():
    # unset or empty: the CPUs this process may use (wsgistack/cpus.py)
    cpus = available_cpus()
    assert cpus == Settings.from_env({}).WSGI_PROCESSES
    assert cpus == Settings.from_env({"WSGI_PROCESSES": ""}).WSGI_PROCESSES
    assert cpus == Settings.from_env({"NGINX_WORKERS": " "}).NGINX_WORKERS
    assert Settings.from_env({"NGINX_WORKERS": "3"}).NGINX_WORKERS == 3
    assert Settings.from_env({"WSGI_PROCESSES": "4"}).WSGI_PROCESSES == 4
    assert Settings.from_env({"WSGI_PROCESSES": "4"}, WSGI_PROCESSES=3).WSGI_PROCESSES == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "", "١"])
def test_bad_values_are_refused_with_the_knob_named(value):
    with pytest.raises(SettingsError, match="WSGI_THREADS"):
        Settings.from_env({"WSGI_THREADS": value})


@pytest.mark.parametrize("timeout", [1, 3, 30, 600])
def test_the_timeout_ladder_is_ordered(timeout):
    s = Settings.from_env({"REQUEST_TIMEOUT": str(timeout)})
    assert s.APP_TIMEOUT == timeout < s.PROXY_TIMEOUT < s.STOP_GRACE_PERIOD


def test_proxy_admits_every_slot_plus_the_backlog():
    s = Settings.from_env({"WSGI_PROCESSES": "3", "WSGI_THREADS": "5", "LISTEN_BACKLOG": "7"})
    assert s.WORKER_SLOTS == 15
    assert s.PROXY_MAX_CONNS == 22


def test_uwsgi_socket_defaults_into_the_run_folder_and_nginx_names_it():
    s = Settings.from_env({"RUN_DIR": "/run/x"})
    assert s.UWSGI_SOCKET == "/run/x/uwsgi.sock"
    assert s.UWSGI_UPSTREAM == "unix:/run/x/uwsgi.sock"
    tcp = Settings.from_env({"UWSGI_SOCKET": "uwsgi-app:3031"})
    assert tcp.UWSGI_UPSTREAM == "uwsgi-app:3031"


def test_render_fills_placeholders_and_leaves_server_variables_alone():
    values = Settings.from_env({}).as_template_values()
    text = "listen {{ PORT }}; set $x $host; Define ${APACHE_LOG_DIR}; t {{PROXY_TIMEOUT}}"
    assert render_text(text, values) == "listen 8080; set $x $host; Define ${APACHE_LOG_DIR}; t 35"


def test_render_refuses_an_unknown_placeholder_with_its_line():
    with pytest.raises(RenderError, match=r"conf:2: unknown placeholder \{\{ NOPE \}\}"):
        render_text("a\nb {{ NOPE }}", {}, "conf")


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
    assert workers == s.APACHE_MAX_REQUEST_WORKERS
    assert workers % 64 == 0 and workers >= 2 * s.PROXY_MAX_CONNS
    assert limit == s.APACHE_SERVER_LIMIT


def test_the_resolver_is_the_systems_first_nameserver(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch example\nnameserver 127.0.0.11\nnameserver 10.0.0.1\n")
    assert system_resolver(str(conf)) == "127.0.0.11"
    conf.write_text("nameserver fe80::1%eth0\n")
    assert system_resolver(str(conf)) == "[fe80::1]"
    assert system_resolver(str(tmp_path / "missing")) == "127.0.0.1"
    assert Settings.from_env({"DNS_RESOLVER": "10.1.2.3"}).DNS_RESOLVER == "10.1.2.3"


@pytest.mark.parametrize("n", [1, 3, 9, 10, 29, 30, 99, 100, 305, 600])
def test_app_timeout_pattern_matches_response_times_of_at_least_the_timeout(n):
    pattern = re.compile(Settings.from_env({"REQUEST_TIMEOUT": str(n)}).APP_TIMEOUT_PATTERN)
    # uWSGI 2.0.28's harakiri may fire up to a second early (a whole-second clock)
    for seconds in range(0, 1500):
        assert bool(pattern.search(f"{seconds}.004")) == (seconds >= n - 1), seconds
    # with a retry, nginx lists every try's time: the last one counts
    assert pattern.search(f"0.001, {n}.010")
    if n > 1:
        assert not pattern.search(f"{n}.010, 0.001")


@pytest.mark.parametrize("timeout", [1, 2, 3, 30])
def test_nginx_never_retries_a_request_the_app_server_killed_for_its_timeout(timeout):
    s = Settings.from_env({"REQUEST_TIMEOUT": str(timeout)})
    # nginx retries only while less than the window has passed; the kill comes
    # after APP_TIMEOUT - 1 s at the earliest (uWSGI 2.0.28)
    assert s.PROXY_RETRY_WINDOW >= 1
    assert s.PROXY_RETRY_WINDOW <= s.APP_TIMEOUT - 1 or s.APP_TIMEOUT == 1


def test_one_client_gets_every_slot_and_half_the_backlog_not_all_of_it():
    s = Settings.from_env({"WSGI_PROCESSES": "8", "WSGI_THREADS": "1", "LISTEN_BACKLOG": "128"})
    assert s.PROXY_MAX_CONNS_PER_CLIENT == 8 + 64 < s.PROXY_MAX_CONNS


def test_the_proxys_limits_count_every_replica():
    one = Settings.from_env({"WSGI_PROCESSES": "8", "WSGI_THREADS": "1", "LISTEN_BACKLOG": "128"})
    three = Settings.from_env(
        {"WSGI_PROCESSES": "8", "WSGI_THREADS": "1", "LISTEN_BACKLOG": "128", "APP_REPLICAS": "3"}
    )
    assert three.PROXY_MAX_CONNS == 3 * one.PROXY_MAX_CONNS == 3 * 136
    assert three.PROXY_MAX_CONNS_PER_CLIENT == 3 * one.PROXY_MAX_CONNS_PER_CLIENT


def test_apache_trusts_no_forwarded_header_unless_told():
    # mod_remoteip given a RemoteIPHeader and no proxy list believes every
    # peer: with TRUSTED_PROXIES empty there must be no RemoteIPHeader at all
    none = Settings.from_env({})
    assert all(line.startswith("#") for line in none.APACHE_REMOTE_IP.splitlines())
    assert none.APACHE_FROM_TRUSTED_PROXY == "false"
    two = Settings.from_env({"TRUSTED_PROXIES": "10.0.0.0/8 2001:db8::1"})
    assert two.APACHE_REMOTE_IP.splitlines() == [
        "RemoteIPHeader X-Forwarded-For",
        "RemoteIPInternalProxy 10.0.0.0/8",
        "RemoteIPInternalProxy 2001:db8::1",
    ]
    assert two.APACHE_FROM_TRUSTED_PROXY == (
        "%{CONN_REMOTE_ADDR} -ipmatch '10.0.0.0/8' || %{CONN_REMOTE_ADDR} -ipmatch '2001:db8::1'"
    )


def test_apache_includes_the_tls_sites_and_the_redirect_with_tls_only():
    off, on = Settings.from_env({}), Settings.from_env({"TLS": "1"})
    assert (off.APACHE_TLS_SITES, on.APACHE_TLS_SITES) == ("tls.d/*.disabled", "tls.d/*.conf")
    assert off.APACHE_HTTPS_REDIRECT == "snippets/no-redirect.conf"
    assert on.APACHE_HTTPS_REDIRECT == "snippets/redirect-to-https.conf"


def test_mod_wsgi_free_threading_is_rendered_only_when_on():
    off, on = Settings.from_env({}), Settings.from_env({"MOD_WSGI_FREE_THREADING": "1"})
    assert off.MOD_WSGI_FREE_THREADING_LINE.startswith("# ")
    assert on.MOD_WSGI_FREE_THREADING_LINE == "WSGIFreeThreading On"
    with pytest.raises(SettingsError, match="MOD_WSGI_FREE_THREADING=2"):
        Settings.from_env({"MOD_WSGI_FREE_THREADING": "2"})
