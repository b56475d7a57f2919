"""The knobs as declared in wsgistack/settings.py, and the timeout ladder."""

from dataclasses import fields

import pytest

from wsgistack.cpus import available_cpus
from wsgistack.knobs import switch
from wsgistack.settings import APP_STATIC, KNOBS, Settings, SettingsError

NUMBERS = [f.name for f in fields(Settings) if f.type == "int"]


def test_every_field_is_a_knob_declared_once_with_its_help():
    assert [k.env for k in KNOBS] == [f.name for f in fields(Settings)]
    assert len({k.env for k in KNOBS}) == len(KNOBS)
    assert all(k.help and k.env.isupper() for k in KNOBS)


def test_defaults_then_environment_then_overrides():
    assert Settings.from_env({}).WSGI_THREADS == 8
    assert Settings.from_env({"WSGI_THREADS": "4"}).WSGI_THREADS == 4
    assert Settings.from_env({"WSGI_THREADS": "4"}, WSGI_THREADS=3).WSGI_THREADS == 3
    assert Settings.from_env({"WSGI_THREADS": "4"}, WSGI_THREADS="2").WSGI_THREADS == 2


def test_as_env_gives_back_the_same_settings():
    s = Settings.from_env({"TLS": "1", "TLS_CERT": "/c.pem", "TLS_KEY": "/k.pem", "PORT": "81"})
    assert set(s.as_env()) == {k.env for k in KNOBS}
    assert Settings.from_env(s.as_env()) == s


@pytest.mark.parametrize("knob", ["WSGI_PROCESSES", "NGINX_WORKERS"])
def test_worker_counts_unset_or_empty_follow_the_cpus_this_process_may_use(knob):
    cpus = available_cpus()
    assert getattr(Settings.from_env({}), knob) == cpus
    assert getattr(Settings.from_env({knob: ""}), knob) == cpus
    assert getattr(Settings.from_env({knob: " "}), knob) == cpus
    assert getattr(Settings.from_env({knob: "3"}), knob) == 3
    with pytest.raises(SettingsError, match=f"^{knob}='0': must be at least 1 "):
        Settings.from_env({knob: "0"})


@pytest.mark.parametrize("value", ["two", "1.5", "", "-1", "١", "0x10", "1e3"])
def test_a_number_that_is_not_a_whole_number_is_refused_with_the_knob_and_its_help(value):
    message = rf"^LISTEN_BACKLOG='{value}': expected a whole number \(connections queued at "
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"LISTEN_BACKLOG": value})


def test_the_worker_shape_unset_or_empty_is_the_app_servers_own():
    cpus = available_cpus()
    for env in ({}, {"WSGI_PROCESSES": "", "WSGI_THREADS": " "}):
        # uWSGI: processes of one thread each, whatever the CPUs
        uwsgi = Settings.from_env(env, server="uwsgi")
        assert (uwsgi.WSGI_PROCESSES, uwsgi.WSGI_THREADS) == (8, 1)
        for server in ("", "mod_wsgi", "gunicorn", "granian"):
            other = Settings.from_env(env, server=server)
            assert (cpus, 8) == (other.WSGI_PROCESSES, other.WSGI_THREADS), server
    # a value set wins for every server
    given = Settings.from_env({"WSGI_THREADS": "4"}, server="uwsgi", WSGI_PROCESSES=2)
    assert (given.WSGI_PROCESSES, given.WSGI_THREADS) == (2, 4)
    with pytest.raises(ValueError, match="unknown app server 'uswgi'"):
        Settings.from_env({}, server="uswgi")


def test_numbers_may_carry_spaces():
    assert Settings.from_env({"WSGI_THREADS": " 4\n"}).WSGI_THREADS == 4


@pytest.mark.parametrize("knob", NUMBERS)
def test_each_number_has_its_least_value(knob):
    # 0 means "never", "none" or "the default" for these; everything else needs 1
    may_be_zero = {
        "MAX_BODY_BYTES",
        "MAX_REQUESTS",
        "RELOAD_ON_RSS_MB",
        "TLS_PUBLIC_PORT",
        "ALERT_FOR",
        "JOB_STOP_TIMEOUT",
        "GZIP_LEVEL",
    }
    switches = {k.env for k in KNOBS if k.parse is switch}
    if knob in may_be_zero | switches:
        Settings.from_env({knob: "0"})
    else:
        with pytest.raises(SettingsError, match=f"^{knob}='0': must be at least 1 "):
            Settings.from_env({knob: "0"})
    assert getattr(Settings.from_env({knob: "1"}), knob) == 1


@pytest.mark.parametrize("knob", ["TLS", "MOD_WSGI_FREE_THREADING"])
def test_switches_are_0_or_1(knob):
    assert getattr(Settings.from_env({knob: " 1 "}), knob) == 1
    assert getattr(Settings.from_env({knob: "0"}), knob) == 0
    for value in ("2", "on", "yes", ""):
        with pytest.raises(SettingsError, match=rf"^{knob}='{value}': expected 0 \(off\) or 1"):
            Settings.from_env({knob: value})


def test_the_gzip_level_is_0_to_9():
    assert Settings.from_env({}).GZIP_LEVEL == 1
    assert Settings.from_env({"GZIP_LEVEL": "9"}).GZIP_LEVEL == 9
    with pytest.raises(SettingsError, match=r"^GZIP_LEVEL='10': must be 0 \(off\) or 1 to 9"):
        Settings.from_env({"GZIP_LEVEL": "10"})


def test_trusted_proxies_are_addresses_or_ranges():
    good = "10.0.0.0/8 192.0.2.7 2001:db8::1 fd00::/8"
    assert good == Settings.from_env({"TRUSTED_PROXIES": good}).TRUSTED_PROXIES
    with pytest.raises(SettingsError, match=r"'lb\.example' is not an IP address or CIDR range"):
        Settings.from_env({"TRUSTED_PROXIES": "10.0.0.1 lb.example"})


def test_text_knobs_are_kept_as_given():
    s = Settings.from_env({"SERVER_NAMES": " a.example  b.example", "WSGI_APP": "pkg:app"})
    assert (s.SERVER_NAMES, s.WSGI_APP) == (" a.example  b.example", "pkg:app")


def test_files_default_into_the_run_folder():
    s = Settings.from_env({"RUN_DIR": "/run/x"})
    assert s.UWSGI_SOCKET == "/run/x/uwsgi.sock"
    assert (s.TLS_CERT, s.TLS_KEY) == ("/run/x/tls/cert.pem", "/run/x/tls/key.pem")
    tcp = Settings.from_env({"UWSGI_SOCKET": "uwsgi-app:3031"})
    assert tcp.UWSGI_SOCKET == "uwsgi-app:3031"


def test_a_certificate_needs_its_key():
    s = Settings.from_env({"TLS_CERT": "/etc/ssl/site.pem", "TLS_KEY": "/etc/ssl/site.key"})
    assert (s.TLS_CERT, s.TLS_KEY) == ("/etc/ssl/site.pem", "/etc/ssl/site.key")
    with pytest.raises(SettingsError, match=r"^TLS_KEY='': needed with TLS_CERT='/c\.pem' "):
        Settings.from_env({"TLS_CERT": "/c.pem"})


def test_the_public_tls_port_is_the_tls_port_unless_set():
    assert Settings.from_env({"TLS_PORT": "9443"}).TLS_PUBLIC_PORT == 9443
    assert Settings.from_env({"TLS_PORT": "9443", "TLS_PUBLIC_PORT": "0"}).TLS_PUBLIC_PORT == 9443
    assert Settings.from_env({"TLS_PUBLIC_PORT": "443"}).TLS_PUBLIC_PORT == 443


def test_static_files_default_to_the_apps():
    assert str(APP_STATIC) == Settings.from_env({}).STATIC_ROOT
    assert APP_STATIC.is_dir()
    assert Settings.from_env({"STATIC_ROOT": "/srv/static"}).STATIC_ROOT == "/srv/static"


@pytest.mark.parametrize("timeout", [1, 3, 30, 600])
def test_the_timeout_ladder_is_ordered(timeout):
    # the app server's own limit is REQUEST_TIMEOUT itself; the proxy waits
    # longer, and a graceful stop longer still
    s = Settings.from_env({"REQUEST_TIMEOUT": str(timeout)})
    assert s.REQUEST_TIMEOUT == timeout < s.PROXY_TIMEOUT < s.STOP_GRACE_PERIOD


def test_proxy_admits_every_slot_plus_the_backlog():
    s = Settings.from_env({"WSGI_PROCESSES": "3", "WSGI_THREADS": "5", "LISTEN_BACKLOG": "7"})
    assert s.WORKER_SLOTS == 15
    assert s.PROXY_MAX_CONNS == 22


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
