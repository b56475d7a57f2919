"""The edge: HTTPS and HTTP/2 as Mozilla's intermediate profile wants them,
forwarded headers and request IDs believed from a trusted load balancer only,
compressed JSON. Run against the stacks conftest.py declares with these
behaviours, set up with TLS=1 and 127.0.0.2 as the trusted balancer.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import ssl
import subprocess
import sys

import pytest

from tests.integration.http import request

BALANCER = "127.0.0.2"  # TRUSTED_PROXIES of the edge stacks (conftest.py)


def https_context(stack) -> ssl.SSLContext:
    """Trusting the stack's CA; HTTP/1.1 only (http.client speaks no HTTP/2)."""
    context = ssl.create_default_context(cafile=str(stack.ca_file))
    context.set_alpn_protocols(["http/1.1"])
    return context


@pytest.mark.behaviour("tls")
def test_the_tls_listener_complies_with_mozillas_intermediate_profile(stack):
    """sslyze, a scanner no one here wrote, checks protocols, ciphers, curves,
    the certificate and its chain (trusting the stack's CA) against the profile."""
    port = stack.settings.TLS_PORT
    result = subprocess.run(
        [sys.executable, "-m", "sslyze", "--mozilla_config=intermediate",
         "--certinfo_ca_file", str(stack.ca_file), f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    verdict = result.stdout.strip().splitlines()[-3:]
    assert f"127.0.0.1:{port}: OK - Compliant." in result.stdout, "\n".join(verdict)
    assert result.returncode == 0


@pytest.mark.behaviour("tls")
def test_http2_is_negotiated_and_serves_the_app(stack):
    curl = shutil.which("curl")
    assert curl, "curl is needed for an HTTP/2 request (apt-get install curl)"
    result = subprocess.run(
        [curl, "--silent", "--show-error", "--http2", "--cacert", str(stack.ca_file),
         "--write-out", "\\n%{http_version} %{http_code}", stack.https_url + "/fib/10"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    body, _, status_line = result.stdout.rpartition("\n")
    assert status_line == "2 200", (result.stdout, result.stderr)
    assert json.loads(body)["value"] == "55"


@pytest.mark.behaviour("tls")
def test_plain_http_redirects_and_https_sets_hsts(stack):
    answer = request(stack.base_url, "/fib/10?x=1")
    assert answer.status == 308
    assert answer.headers["Location"] == f"{stack.https_url}/fib/10?x=1"
    assert "Strict-Transport-Security" not in answer.headers

    import http.client

    conn = http.client.HTTPSConnection(
        "127.0.0.1", stack.settings.TLS_PORT, context=https_context(stack), timeout=10
    )
    conn.request("GET", "/fib/10")
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["value"] == "55"
    assert response.getheader("Strict-Transport-Security") == "max-age=63072000"
    conn.close()


@pytest.mark.behaviour("forwarded_headers")
def test_forwarded_headers_are_believed_from_the_trusted_balancer_only(stack):
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    if BALANCER in stack.settings.TRUSTED_PROXIES.split():
        # the balancer took the request over HTTPS and forwards it over HTTP:
        # served (a redirect would loop), with the client's address and scheme
        via_balancer = request(stack.base_url, "/info", headers=forwarded, source=BALANCER)
        assert via_balancer.status == 200, via_balancer.body
        assert via_balancer.json["client"] == {"address": "203.0.113.9", "scheme": "https"}
    # a client sending the same headers itself is not believed
    direct = request(stack.base_url, "/info", headers=forwarded)
    if stack.settings.TLS:
        assert direct.status == 308  # still plain HTTP to us
        answer = _https_get(stack, "/info", forwarded)
        assert answer["client"] == {"address": "127.0.0.1", "scheme": "https"}
    else:
        assert direct.status == 200
        assert direct.json["client"] == {"address": "127.0.0.1", "scheme": "http"}


def _https_get(stack, path: str, headers: dict[str, str]) -> dict:
    import http.client

    conn = http.client.HTTPSConnection(
        "127.0.0.1", stack.settings.TLS_PORT, context=https_context(stack), timeout=10
    )
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        return {**json.loads(response.read()), "_request_id": response.getheader("X-Request-ID")}
    finally:
        conn.close()


@pytest.mark.behaviour("request_ids")
def test_one_request_id_is_in_the_proxys_the_app_servers_and_the_apps_log(stack):
    slow_ms = stack.settings.SLOW_REQUEST_MS + 200
    headers = {"X-Request-ID": "lb-7f3a", "X-Forwarded-Proto": "https"}
    answer = request(stack.base_url, f"/io?ms={slow_ms}", headers=headers, source=BALANCER)
    assert answer.status == 200 and answer.headers.get_all("X-Request-ID") == ["lb-7f3a"]
    logs = stack.log_tail(400)
    lines = [line for line in logs.splitlines() if "lb-7f3a" in line]
    proxy = [line for line in lines if f'"request":"GET /io?ms={slow_ms}' in line]
    app_server = [line for line in lines if '"msecs":' in line]
    app = [line for line in lines if "GET /io 200 in" in line]
    assert proxy and app_server and app, "\n".join(lines) or logs[-3000:]


@pytest.mark.behaviour("request_ids")
def test_a_clients_own_request_id_is_replaced(stack):
    answer = _https_get(stack, "/info", {"X-Request-ID": "forged"})
    assert answer["request_id"] == answer["_request_id"] != "forged"
    assert re.fullmatch(r"[0-9a-f]{32}", answer["request_id"])


@pytest.mark.behaviour("compression")
def test_json_is_gzipped_for_clients_that_accept_it(stack):
    path = "/fib/sequence?n=2000"
    headers = {"X-Forwarded-Proto": "https"}
    plain = request(stack.base_url, path, headers=headers, source=BALANCER)
    packed = request(
        stack.base_url, path, headers={**headers, "Accept-Encoding": "gzip"}, source=BALANCER
    )
    assert plain.status == packed.status == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers.get("Vary", "")
    assert gzip.decompress(packed.body) == plain.body
    assert len(plain.body) / len(packed.body) > 1.8
    # small answers are sent as they are
    small = request(stack.base_url, "/fib/10", headers={**headers, "Accept-Encoding": "gzip"},
                    source=BALANCER)  # fmt: skip
    assert "Content-Encoding" not in small.headers
