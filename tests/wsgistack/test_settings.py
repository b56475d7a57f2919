"""The knobs and the values derived from them."""

import pytest

from wsgistack.render import RenderError, render_text
from wsgistack.settings import Settings, SettingsError


def test_defaults_then_environment_then_overrides():
    assert Settings.from_env({}).WSGI_PROCESSES == 2
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
        {"WSGI_PROCESSES": str(processes), "WSGI_THREADS": str(threads),
         "LISTEN_BACKLOG": str(backlog)}
    )  # fmt: skip
    assert workers == s.APACHE_MAX_REQUEST_WORKERS
    assert workers % 64 == 0 and workers >= 2 * s.PROXY_MAX_CONNS
    assert limit == s.APACHE_SERVER_LIMIT
