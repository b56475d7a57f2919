"""Request IDs, the slow/failed request log line, and forwarded headers
believed from trusted proxies only (app/request_log.py, app/forwarded.py)."""

import re

import pytest

from app import create_app

TRUSTED = "10.0.0.0/8 192.0.2.7"


@pytest.fixture
def proxied_client():
    """A client of an app that trusts TRUSTED as its load balancers."""
    return create_app({"TESTING": True, "TRUSTED_PROXIES": TRUSTED}).test_client()


def info(client, remote: str, headers: dict[str, str] | None = None) -> dict:
    return client.get("/info", headers=headers or {}, environ_base={"REMOTE_ADDR": remote}).json


def test_every_response_names_a_fresh_request_id(client):
    first, second = client.get("/up"), client.get("/nowhere")
    ids = [r.headers["X-Request-ID"] for r in (first, second)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]


def test_the_proxys_request_id_is_kept(client):
    # nginx and Apache pass it as a CGI variable, which no client can set
    response = client.get("/info", environ_base={"REQUEST_ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123" == response.json["request_id"]
    assert len(response.headers.getlist("X-Request-ID")) == 1


def test_a_clients_request_id_is_believed_only_from_a_trusted_proxy(proxied_client):
    forged = {"X-Request-ID": "mine"}
    assert info(proxied_client, "203.0.113.5", forged)["request_id"] != "mine"
    assert info(proxied_client, "10.1.2.3", forged)["request_id"] == "mine"
    bad = {"X-Request-ID": 'a"b' + "x" * 200}
    assert info(proxied_client, "10.1.2.3", bad)["request_id"] != bad["X-Request-ID"]


def test_forwarded_address_and_scheme_only_from_a_trusted_proxy(proxied_client):
    headers = {"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"}
    direct = info(proxied_client, "203.0.113.5", headers)["client"]
    assert direct == {"address": "203.0.113.5", "scheme": "http"}
    via_balancer = info(proxied_client, "192.0.2.7", headers)["client"]
    assert via_balancer == {"address": "198.51.100.9", "scheme": "https"}


def test_the_right_most_untrusted_hop_is_the_client(proxied_client):
    # the client forged a first entry; the balancers appended what they saw
    headers = {"X-Forwarded-For": "1.2.3.4, 198.51.100.9, 10.0.0.5"}
    assert info(proxied_client, "10.0.0.6", headers)["client"]["address"] == "198.51.100.9"
    assert info(proxied_client, "10.0.0.6", {"X-Forwarded-For": "junk"})["client"] == {
        "address": "10.0.0.6",
        "scheme": "http",
    }


def test_nothing_is_trusted_by_default(client):
    headers = {"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"}
    assert info(client, "10.0.0.1", headers)["client"] == {"address": "10.0.0.1", "scheme": "http"}


def test_a_bad_trusted_proxies_value_is_refused():
    from app import ConfigError

    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app({"TRUSTED_PROXIES": "10.0.0.0/8 not-an-address"})


def test_slow_requests_are_logged_with_their_id_and_fast_ones_are_not(capsys):
    client = create_app({"TESTING": True, "SLOW_REQUEST_MS": 50}).test_client()
    client.get("/io?ms=1")
    fast_err = capsys.readouterr().err
    response = client.get("/io?ms=80")
    slow_err = capsys.readouterr().err
    assert fast_err == ""
    request_id = response.headers["X-Request-ID"]
    assert f"[{request_id}]" in slow_err and "GET /io 200 in" in slow_err
    assert "(slow)" in slow_err and slow_err.count("\n") == 1
