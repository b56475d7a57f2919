"""create_app: defaults, environment, mapping overrides, validation, logging."""

import logging
import sys

import pytest
from flask import Flask
from flask.logging import default_handler

from app import DEFAULTS, ConfigError, create_app


@pytest.fixture
def int_max_str_digits():
    """Restore sys.int_max_str_digits after a test changes it."""
    before = sys.get_int_max_str_digits()
    yield sys.set_int_max_str_digits
    sys.set_int_max_str_digits(before)


def test_defaults():
    app = create_app()
    for key, value in DEFAULTS.items():
        assert app.config[key] == value
    assert app.config["FIB_MAX_N"] == 20000
    assert app.config["FIB_NAIVE_MAX_N"] == 30
    assert app.config["WSGI_PROCESSES"] is None
    assert app.config["WSGI_THREADS"] is None
    assert not app.testing


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("FLASK_FIB_MAX_N", "5000")
    monkeypatch.setenv("FLASK_IO_MAX_MS", "250")
    app = create_app({"TESTING": True})
    assert app.config["FIB_MAX_N"] == 5000
    assert app.config["IO_MAX_MS"] == 250
    client = app.test_client()
    assert client.get("/fib/5000").status_code == 200
    assert client.get("/fib/5001").status_code == 422


def test_mapping_overrides_environment(monkeypatch):
    monkeypatch.setenv("FLASK_FIB_MAX_N", "5000")
    app = create_app({"FIB_MAX_N": 100})
    assert app.config["FIB_MAX_N"] == 100


def test_digit_strings_are_accepted(monkeypatch):
    # '0500' is not valid json, so from_prefixed_env leaves it a string
    monkeypatch.setenv("FLASK_SEQUENCE_MAX_N", "0500")
    app = create_app({"IO_MAX_MS": "300"})
    assert app.config["SEQUENCE_MAX_N"] == 500
    assert app.config["IO_MAX_MS"] == 300


@pytest.mark.parametrize(
    "key",
    [
        "FIB_MAX_N",
        "FIB_NAIVE_MAX_N",
        "SEQUENCE_MAX_N",
        "IO_MAX_MS",
        "FANOUT_MAX_CALLS",
        "FANOUT_POOL_SIZE",
        "MAX_QUERY_STRING",
    ],
)
@pytest.mark.parametrize("value", [0, -1, 1.5, "abc", "", True, None, [5]])
def test_invalid_values_are_rejected(key, value):
    with pytest.raises(ConfigError, match=f"{key} must be a positive integer"):
        create_app({key: value})


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "0", "true"])
def test_invalid_environment_is_rejected(monkeypatch, value):
    monkeypatch.setenv("FLASK_FANOUT_POOL_SIZE", value)
    with pytest.raises(ConfigError, match="FANOUT_POOL_SIZE"):
        create_app()


def test_limits_must_fit_int_max_str_digits():
    # F(30000) has 6270 digits: str() of it would raise at request time
    with pytest.raises(ConfigError, match="FIB_MAX_N=30000 is too large.*6270 digits"):
        create_app({"FIB_MAX_N": 30000})
    with pytest.raises(ConfigError, match="SEQUENCE_MAX_N"):
        create_app({"SEQUENCE_MAX_N": 30000})
    # the largest n whose value still fits the default 4300 digits
    assert create_app({"FIB_MAX_N": 20577}).config["FIB_MAX_N"] == 20577
    with pytest.raises(ConfigError):
        create_app({"FIB_MAX_N": 20578})


def test_limits_follow_the_interpreter_setting(int_max_str_digits):
    int_max_str_digits(1000)
    with pytest.raises(ConfigError, match="int_max_str_digits=1000"):
        create_app()
    int_max_str_digits(0)  # unlimited
    app = create_app({"FIB_MAX_N": 100000, "TESTING": True})
    assert app.test_client().get("/fib/100000").get_json()["digits"] == 20899


def test_invalid_log_level():
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        create_app({"LOG_LEVEL": "CHATTY"})
    assert create_app({"LOG_LEVEL": "debug"}).logger.level == logging.DEBUG


def test_wsgi_environment(monkeypatch):
    monkeypatch.setenv("WSGI_PROCESSES", "4")
    monkeypatch.setenv("WSGI_THREADS", "8")
    app = create_app()
    assert app.config["WSGI_PROCESSES"] == 4
    assert app.config["WSGI_THREADS"] == 8


def test_bad_wsgi_environment_is_reported_as_null(monkeypatch, capsys):
    monkeypatch.setenv("WSGI_PROCESSES", "many")
    monkeypatch.setenv("WSGI_THREADS", "")
    app = create_app()
    assert app.config["WSGI_PROCESSES"] is None
    assert app.config["WSGI_THREADS"] is None
    assert "ignoring WSGI_PROCESSES='many'" in capsys.readouterr().err


def test_logging_handlers_are_not_duplicated(capsys):
    apps = [create_app() for _ in range(3)]
    logger = apps[-1].logger
    assert logger is logging.getLogger("app")
    # pytest adds its own capture handlers to non-propagating loggers
    ours = [h for h in logger.handlers if h.__module__ == "app"]
    assert len(ours) == 1
    assert default_handler not in logger.handlers
    assert logger.propagate is False
    logger.warning("first line\nsecond line")
    err = capsys.readouterr().err
    # one event, one line, once
    assert err.count("first line") == 1
    assert err.count("\n") == 1
    assert "first line\\nsecond line" in err


def test_wsgi_module():
    from app import wsgi

    assert isinstance(wsgi.application, Flask)
    assert wsgi.application.import_name == "app"
