"""Every limit and every kind of bad request yields a problem+json 4xx."""

from urllib.parse import quote

import pytest
from werkzeug.exceptions import TooManyRequests

from app import create_app

MALFORMED_NUMBERS = [
    "abc",
    "-1",
    "+1",
    "1.5",
    "10.0",
    "1e3",
    "0x10",
    "0b1",
    "1_000",
    " 1",
    "1 ",
    "1\t",
    "\n1",
    "١٢",  # arabic-indic digits: int() accepts them
    "１２",  # fullwidth digits
    "²",  # superscript two: str.isdigit() is true
    "𝟙",  # mathematical bold one
    "NaN",
    "inf",
    "-0",
    "1,000",
    "%",
    "null",
]

ROUTES = ["/up", "/fib/10", "/fib/sequence", "/io", "/fanout", "/info"]


def url_quote(text):
    return quote(text, safe="")


@pytest.mark.parametrize("raw", MALFORMED_NUMBERS)
def test_fib_malformed_path(client, assert_problem, raw):
    response = client.get("/fib/" + url_quote(raw))
    body = assert_problem(response, 400, "n")
    assert "digits 0-9" in body["invalid_params"][0]["reason"]


@pytest.mark.parametrize(
    "name, url",
    [
        ("n", "/fib/sequence?n={}"),
        ("ms", "/io?ms={}"),
        ("calls", "/fanout?calls={}"),
        ("ms", "/fanout?ms={}"),
    ],
)
@pytest.mark.parametrize("raw", [*MALFORMED_NUMBERS, ""])
def test_malformed_query(client, assert_problem, name, url, raw):
    assert_problem(client.get(url.format(url_quote(raw))), 400, name)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("/fib/20001", "between 0 and 20000"),
        ("/fib/20001?method=iterative", "between 0 and 20000"),
        ("/fib/31?method=naive", "between 0 and 30"),
        ("/fib/" + "9" * 5000, "between 0 and 20000"),  # int() would refuse this
        ("/fib/1" + "0" * 4300, "between 0 and 20000"),
        ("/fib/sequence?n=0", "between 1 and 2000"),
        ("/fib/sequence?n=2001", "between 1 and 2000"),
        ("/fib/sequence?n=" + "9" * 1000, "between 1 and 2000"),
        ("/io?ms=20001", "between 0 and 20000"),
        ("/fanout?calls=0", "between 1 and 32"),
        ("/fanout?calls=33", "between 1 and 32"),
        ("/fanout?ms=20001", "between 0 and 20000"),
    ],
)
def test_out_of_range(client, assert_problem, url, reason):
    body = assert_problem(client.get(url), 422)
    assert len(body["invalid_params"]) == 1
    assert reason in body["invalid_params"][0]["reason"]


def test_limits_follow_config(assert_problem):
    client = create_app({"FIB_MAX_N": 50, "SEQUENCE_MAX_N": 5}).test_client()
    assert client.get("/fib/50").status_code == 200
    assert_problem(client.get("/fib/51"), 422, "n")
    assert client.get("/fib/sequence?n=5").status_code == 200
    assert_problem(client.get("/fib/sequence?n=6"), 422, "n")


def test_sequence_requires_n(client, assert_problem):
    body = assert_problem(client.get("/fib/sequence"), 400, "n")
    assert body["invalid_params"][0]["reason"] == "is required"


@pytest.mark.parametrize(
    "url, name",
    [
        ("/fib/sequence?n=1&n=2", "n"),
        ("/fib/sequence?n=1&n=1", "n"),
        ("/fib/10?method=naive&method=naive", "method"),
        ("/io?ms=1&ms=2", "ms"),
        ("/fanout?calls=1&calls=2", "calls"),
        ("/fanout?ms=1&ms=", "ms"),
    ],
)
def test_repeated_parameters(client, assert_problem, url, name):
    body = assert_problem(client.get(url), 400, name)
    assert body["invalid_params"][0]["reason"] == "must not be repeated"


@pytest.mark.parametrize("method", ["", "Doubling", "fast", "naive ", "matrix", "doubling\x00"])
def test_unknown_method(client, assert_problem, method):
    body = assert_problem(client.get("/fib/10?method=" + url_quote(method)), 400, "method")
    assert body["invalid_params"][0]["reason"] == "must be one of: doubling, iterative, naive"


def test_all_errors_are_reported_together(client, assert_problem):
    # malformed wins over out of range for the status
    assert_problem(client.get("/fanout?calls=99&ms=x"), 400, "calls", "ms")
    assert_problem(client.get("/fanout?calls=99&ms=99999"), 422, "calls", "ms")
    assert_problem(client.get("/fib/x?method=y"), 400, "method", "n")


def test_unknown_parameters_are_ignored(client):
    assert client.get("/up?foo=1&foo=2&bar").status_code == 200
    assert client.get("/io?ms=0&MS=abc&msec=1").status_code == 200


@pytest.mark.parametrize(
    "url", ["/nope", "/fib", "/fib/", "/fib/1/2", "/up/", "/FIB/1", "/static/x"]
)
def test_unknown_routes(client, assert_problem, url):
    assert_problem(client.get(url), 404)


def test_a_doubled_slash_gets_json_not_an_html_redirect(client):
    # the test client reads "//up" as host "up", path "/": set the path itself
    response = client.get("/", environ_overrides={"PATH_INFO": "//up"})
    assert response.is_json and response.status_code in (200, 404)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "BREW"])
def test_wrong_method(client, assert_problem, route, method):
    response = client.open(route, method=method)
    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_query_string_limit(client, assert_problem):
    # the limit counts raw bytes, percent-escapes included
    assert client.get("/up?" + "a" * 1024).status_code == 200
    assert_problem(client.get("/up?" + "a" * 1025), 414)
    assert_problem(client.get("/fib/10?x=" + "%C3%A9" * 200), 414)
    # checked before routing and before parameters
    assert_problem(client.get("/nowhere?" + "a" * 1025), 414)
    assert_problem(client.get("/fib/x?n=1&n=2&" + "a" * 1025), 414)


def test_query_string_limit_follows_config(assert_problem):
    client = create_app({"MAX_QUERY_STRING": 10}).test_client()
    assert client.get("/io?ms=0000000").status_code == 200
    assert_problem(client.get("/io?ms=00000000"), 414)


def test_head_errors_have_no_body(client, assert_problem):
    assert_problem(client.head("/fib/x"), 400)
    assert_problem(client.head("/nowhere"), 404)


@pytest.fixture
def failing_app():
    """An app with routes that fail in different ways."""
    app = create_app({"TESTING": True})

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret connection string")

    @app.get("/slow-down")
    def slow_down():
        raise TooManyRequests(retry_after=7)

    return app


def test_unexpected_exception(failing_app, assert_problem, capsys):
    response = failing_app.test_client().get("/boom")
    body = assert_problem(response, 500)
    assert body["title"] == "Internal Server Error"
    assert b"secret" not in response.data
    assert b"Traceback" not in response.data
    err = capsys.readouterr().err
    assert "unhandled exception on GET /boom" in err
    assert "RuntimeError: secret connection string" in err
    assert "Traceback" in err
    # the traceback is kept on one line, followed by the failed request's line,
    # both with the request's ID
    lines = err.splitlines()
    assert len(lines) == 2, lines
    request_id = response.headers["X-Request-ID"]
    assert "Traceback" in lines[0] and f"[{request_id}]" in lines[0]
    assert "GET /boom 500 in" in lines[1] and f"[{request_id}]" in lines[1]


def test_http_exception_headers_are_kept(failing_app, assert_problem):
    response = failing_app.test_client().get("/slow-down")
    assert_problem(response, 429)
    assert response.headers["Retry-After"] == "7"
