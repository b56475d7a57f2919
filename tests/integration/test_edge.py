"""The edge: HTTPS and HTTP/2 as Mozilla's intermediate profile wants them,
forwarded headers and request IDs believed from a trusted load balancer only,
compressed JSON. Run against the stacks conftest.py declares with these
behaviours: natively with TLS=1 and 127.0.0.2 as the trusted balancer; in
compose with TLS=1 and no balancer (every host client reaches the proxy from
Docker's gateway address there, which must not be trusted).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import ssl
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.integration.http import request
from wsgistack.wait import wait_until

BALANCER = "127.0.0.2"  # TRUSTED_PROXIES of the native edge stack (conftest.py)
FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def balancer_trusted(stack) -> bool:
    return BALANCER in stack.settings.TRUSTED_PROXIES.split()


def https(stack, path: str, headers=None, source: str | None = None):
    """A request over HTTPS (HTTP/1.1), trusting the stack's CA."""
    context = ssl.create_default_context(cafile=str(stack.ca_file))
    context.set_alpn_protocols(["http/1.1"])
    return request(stack.https_url, path, headers=headers, source=source, context=context)


# Mozilla's server-side TLS guidelines 6.0, the intermediate configuration, in
# the form sslyze checks a server against (--custom_tls_config): sslyze 6.3
# ships 5.7's, which still allowed DHE. The values are the guidelines'
# (https://ssl-config.mozilla.org/guidelines/6.0.json); sslyze wants the
# "caddy" and "go" cipher lists too, empty here.
MOZILLA_6_0_INTERMEDIATE = {
    "certificate_curves": ["prime256v1", "secp384r1"],
    "certificate_signatures": [
        "sha256WithRSAEncryption",
        "ecdsa-with-SHA256",
        "ecdsa-with-SHA384",
        "ecdsa-with-SHA512",
    ],
    "certificate_types": ["ecdsa", "rsa"],
    "ciphers": {
        "caddy": [],
        "go": [],
        "iana": [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ],
        "openssl": [
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-CHACHA20-POLY1305",
        ],
    },
    "ciphersuites": [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
    ],
    "dh_param_size": 2048,
    "ecdh_param_size": 256,
    "hsts_min_age": 63072000,
    "maximum_certificate_lifespan": 366,
    "ocsp_staple": True,
    "recommended_certificate_lifespan": 90,
    "rsa_key_size": 2048,
    "server_preferred_order": False,
    "tls_curves": ["X25519MLKEM768", "X25519", "prime256v1", "secp384r1"],
    "tls_versions": ["TLSv1.2", "TLSv1.3"],
}


@pytest.mark.behaviour("tls")
def test_the_tls_listener_complies_with_mozillas_intermediate_profile(stack, tmp_path):
    """sslyze, a scanner no one here wrote, checks protocols, ciphers, curves,
    the certificate and its chain (trusting the stack's CA) against the
    guidelines' 6.0 intermediate profile: natively on OpenSSL 3.0, in the images
    on 3.5. sslyze's own OpenSSL knows no X25519MLKEM768: the next test checks that."""
    target = urlsplit(stack.https_url).netloc
    profile = tmp_path / "mozilla-6.0-intermediate.json"
    profile.write_text(json.dumps(MOZILLA_6_0_INTERMEDIATE))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sslyze",
            "--custom_tls_config",
            str(profile),
            "--certinfo_ca_file",
            str(stack.ca_file),
            target,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    verdict = "\n".join(result.stdout.strip().splitlines()[-4:])
    assert f"{target}: OK - Compliant." in result.stdout, verdict
    assert result.returncode == 0, verdict


@pytest.mark.behaviour("tls")
def test_key_exchange_takes_the_hybrid_post_quantum_group_where_openssl_has_it(stack):
    """A client of the proxy's own OpenSSL (s_client, beside the proxy) gets
    X25519MLKEM768 where that OpenSSL has it (3.5: the images), else X25519,
    the first of the other groups (3.0: Debian 12, natively)."""
    version = stack.beside_proxy("openssl version").stdout
    found = re.search(r"OpenSSL (\d+)\.(\d+)", version)
    assert found, version
    has_hybrid = (int(found[1]), int(found[2])) >= (3, 5)
    # the port the proxy listens on where it runs (in a container, not the published one)
    port = stack.settings.TLS_PORT
    client = stack.beside_proxy(
        f"openssl s_client -connect 127.0.0.1:{port} -servername localhost -brief </dev/null"
    )
    said = client.stdout + client.stderr
    # OpenSSL 3.5 says "Negotiated TLS1.3 group: X", 3.0 "Server Temp Key: X, 253 bits"
    group = re.search(r"(?:Negotiated TLS1\.3 group|(?:Server|Peer) Temp Key): (\w+)", said)
    assert group, said
    assert group[1] == ("X25519MLKEM768" if has_hybrid else "X25519"), said


@pytest.mark.behaviour("tls")
def test_http2_is_negotiated_and_serves_the_app(stack):
    curl = shutil.which("curl")
    assert curl, "curl is needed for an HTTP/2 request (make test-deps installs it)"
    result = subprocess.run(
        [
            curl,
            "--silent",
            "--show-error",
            "--http2",
            "--cacert",
            str(stack.ca_file),
            "--write-out",
            "\\n%{http_version} %{http_code}",
            stack.https_url + "/fib/10",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    body, _, status_line = result.stdout.rpartition("\n")
    assert status_line == "2 200", (result.stdout, result.stderr)
    assert json.loads(body)["value"] == "55"


@pytest.mark.behaviour("tls")
def test_plain_http_redirects_but_probes_answer_and_https_sets_hsts(stack):
    answer = request(stack.base_url, "/fib/10?x=1")
    assert answer.status == 308
    assert answer.headers["Location"] == f"{stack.https_url}/fib/10?x=1"
    assert "Strict-Transport-Security" not in answer.headers
    # a balancer's or orchestrator's probe speaks plain HTTP to the backend
    for probe in ("/livez", "/readyz"):
        assert request(stack.base_url, probe).status == 200, probe
    secure = https(stack, "/fib/10")
    assert secure.status == 200 and secure.json["value"] == "55"
    assert secure.headers["Strict-Transport-Security"] == "max-age=63072000"


@pytest.mark.behaviour("forwarded_headers")
def test_forwarded_headers_are_believed_from_the_trusted_balancer_only(stack):
    if balancer_trusted(stack):
        # the balancer took the request over HTTPS and forwards it over plain
        # HTTP: served (a redirect would loop), with the client's address and scheme
        via_balancer = request(stack.base_url, "/info", headers=FORWARDED, source=BALANCER)
        assert via_balancer.status == 200, via_balancer.body
        assert via_balancer.json["client"] == {"address": "203.0.113.9", "scheme": "https"}
    # a client sending the same headers itself is not believed
    if stack.settings.TLS:
        assert request(stack.base_url, "/info", headers=FORWARDED).status == 308
        own = https(stack, "/info").json["client"]
        assert https(stack, "/info", headers=FORWARDED).json["client"] == own
        assert own["scheme"] == "https" and own["address"] != "203.0.113.9"
    else:
        own = request(stack.base_url, "/info").json["client"]
        direct = request(stack.base_url, "/info", headers=FORWARDED)
        assert direct.status == 200 and direct.json["client"] == own
        assert own["scheme"] == "http" and own["address"] != "203.0.113.9"


@pytest.mark.behaviour("request_ids")
def test_one_request_id_is_in_the_proxys_the_app_servers_and_the_apps_log(stack):
    """A request slow enough to be logged by all three: the proxy's access log
    line (nginx's, Apache's), the app server's line (uWSGI's, the mod_wsgi
    daemon's) and the app's line carry the same ID, the one the client got
    (the balancer's own when it is trusted)."""
    slow_ms = stack.settings.SLOW_REQUEST_MS + 200
    path = f"/io?ms={slow_ms}"
    headers = {"X-Request-ID": "lb-7f3a"}
    if balancer_trusted(stack):
        answer = request(stack.base_url, path, headers={**headers, **FORWARDED}, source=BALANCER)
        assert answer.headers.get_all("X-Request-ID") == ["lb-7f3a"]
    else:
        answer = https(stack, path, headers=headers)
    assert answer.status == 200
    [request_id] = answer.headers.get_all("X-Request-ID")

    # a server writes its access log line once the answer is sent: allow it a moment
    def in_three_logs() -> bool:
        lines = [line for line in stack.log_tail(400).splitlines() if request_id in line]
        proxy = [line for line in lines if f'"request":"GET {path}' in line]
        app_server = [line for line in lines if '"msecs":' in line]
        app = [line for line in lines if "GET /io 200 in" in line]
        return bool(proxy and app_server and app)

    wait_until(
        in_three_logs,
        timeout=5,
        interval=0.5,
        what=f"request ID {request_id} in the proxy's, the app server's and the app's log",
        detail=lambda: stack.log_tail(400)[-3000:],
    )


@pytest.mark.behaviour("request_ids")
def test_a_clients_own_request_id_is_replaced(stack):
    answer = https(stack, "/info", headers={"X-Request-ID": "forged"})
    assert answer.json["request_id"] == answer.headers["X-Request-ID"] != "forged"
    assert re.fullmatch(r"[0-9a-f]{32}", answer.json["request_id"])


@pytest.mark.behaviour("compression")
def test_json_is_gzipped_for_clients_that_accept_it(stack):
    path = "/fib/sequence?n=2000"
    plain = https(stack, path)
    packed = https(stack, path, headers={"Accept-Encoding": "gzip"})
    assert plain.status == packed.status == 200
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers.get("Vary", "")
    assert gzip.decompress(packed.body) == plain.body
    assert len(plain.body) / len(packed.body) > 1.8
    # small answers are sent as they are
    small = https(stack, "/fib/10", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers
