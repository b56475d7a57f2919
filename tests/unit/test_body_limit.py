"""MAX_CONTENT_LENGTH: the app refuses bodies over its limit with a JSON 413,
whether their length is declared or they come chunked (the gunicorn stack has
no proxy in front to refuse them)."""

import io

import pytest

from app import ConfigError, create_app


@pytest.fixture
def small_client():
    return create_app({"TESTING": True, "MAX_CONTENT_LENGTH": 100}).test_client()


def test_the_default_limit_is_one_mebibyte(monkeypatch):
    monkeypatch.delenv("FLASK_MAX_CONTENT_LENGTH", raising=False)
    assert create_app().config["MAX_CONTENT_LENGTH"] == 1048576


def test_the_environment_sets_the_limit(monkeypatch):
    monkeypatch.setenv("FLASK_MAX_CONTENT_LENGTH", "2048")
    assert create_app().config["MAX_CONTENT_LENGTH"] == 2048


@pytest.mark.parametrize("value", [0, -1, "abc", 1.5])
def test_a_bad_limit_is_refused_at_startup(value):
    with pytest.raises(ConfigError, match="MAX_CONTENT_LENGTH"):
        create_app({"MAX_CONTENT_LENGTH": value})


def test_a_body_within_the_limit_is_served(small_client):
    assert small_client.get("/fib/10", data=b"x" * 100).status_code == 200


def test_a_declared_body_over_the_limit_gets_a_json_413(small_client):
    response = small_client.get("/fib/10", data=b"x" * 101)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 413


def test_a_chunked_body_over_the_limit_gets_a_json_413(small_client):
    # no Content-Length: the server marks the input as terminated (chunked)
    response = small_client.get(
        "/fib/10",
        input_stream=io.BytesIO(b"x" * 5000),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert response.get_json()["status"] == 413


def test_no_limit_when_null():
    client = create_app({"TESTING": True, "MAX_CONTENT_LENGTH": None}).test_client()
    assert client.get("/fib/10", data=b"x" * 2_000_000).status_code == 200
