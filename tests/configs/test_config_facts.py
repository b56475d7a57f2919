"""The facts the proxies' configs rest on, read back from the rendered files
and checked by the servers' own config tests: keep-alive beyond the balancer's,
Mozilla's 6.0 intermediate TLS per OpenSSL version, HSTS, the
Content-Security-Policy knob, Debian's media types. Their behaviour against
running servers: tests/integration/test_config_facts.py and test_edge.py."""

from __future__ import annotations

import re

import pytest

from tests.configs.test_server_configs import apache_check, mod_wsgi_module, nginx_check, rendered
from wsgistack.configs import proxy
from wsgistack.settings import DEFAULT_CSP, KEEPALIVE_MARGIN, Settings, SettingsError
from wsgistack.tls import ensure_certificate

# the balancers' documented idle timeouts to their backends, in seconds
# (docs/edge.md cites each): AWS's ALB default, Azure Load Balancer's default,
# Google Cloud's fixed backend keepalive
BALANCERS = {"aws-alb": 60, "azure-load-balancer": 240, "google-cloud": 600}
MOZILLA_6_TLS12_CIPHERS = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
}


def keepalives(tmp_path, **knobs) -> tuple[int, int]:
    """The idle keep-alive seconds of the rendered nginx and Apache."""
    nginx, _ = rendered(tmp_path / "n", "nginx", **knobs)
    apache, _ = rendered(tmp_path / "a", "apache-mod_wsgi", **knobs)
    found = re.search(r"^\s*keepalive_timeout (\d+)s;", (nginx / "nginx.conf").read_text(), re.M)
    ours = re.search(r"^KeepAliveTimeout (\d+)$", (apache / "httpd.conf").read_text(), re.M)
    return int(found[1]), int(ours[1])


def test_keepalive_outlasts_every_balancer_by_default(tmp_path):
    assert max(BALANCERS.values()) <= Settings.from_env({}).BALANCER_IDLE_TIMEOUT
    for seconds in keepalives(tmp_path):
        assert seconds > max(BALANCERS.values()), seconds


@pytest.mark.parametrize("balancer", [1, 60, 240, 600, 4000])
def test_keepalive_is_above_the_balancers_figure(tmp_path, balancer):
    nginx, apache = keepalives(tmp_path, BALANCER_IDLE_TIMEOUT=balancer)
    assert nginx == apache == balancer + KEEPALIVE_MARGIN
    assert KEEPALIVE_MARGIN >= 5


@pytest.mark.parametrize(
    ("openssl", "first"), [((3, 0, 19), "X25519"), ((3, 5, 1), "X25519MLKEM768")]
)
def test_tls_groups_put_the_hybrid_first_where_openssl_has_it(openssl, first):
    groups = proxy.tls_groups(openssl).split(":")
    assert groups[0] == first
    assert groups[-3:] == ["X25519", "prime256v1", "secp384r1"]


def test_tls_follows_mozillas_intermediate_6_0(tmp_path):
    nginx, _ = rendered(tmp_path / "n", "nginx", TLS=1)
    apache, _ = rendered(tmp_path / "a", "apache-mod_wsgi", TLS=1)
    nginx_tls = (nginx / "snippets" / "tls.conf").read_text()
    apache_tls = (apache / "snippets" / "tls.conf").read_text()
    (nginx_ciphers,) = re.findall(r"^ssl_ciphers (\S+);", nginx_tls, re.M)
    (apache_ciphers,) = re.findall(r"^SSLCipherSuite (\S+)$", apache_tls, re.M)
    for ciphers in (nginx_ciphers, apache_ciphers):
        assert set(ciphers.split(":")) == MOZILLA_6_TLS12_CIPHERS
    # no DHE left, so no DH parameters either
    for text in (nginx_tls, apache_tls):
        assert "DHE-" not in text.replace("ECDHE-", "") and "dhparam" not in text.lower()
    groups = proxy.tls_groups()
    assert f"ssl_ecdh_curve {groups};" in nginx_tls
    assert f"SSLOpenSSLConfCmd Curves {groups}\n" in apache_tls


@pytest.mark.parametrize(
    ("subdomains", "value"), [(0, "max-age=63072000"), (1, "max-age=63072000; includeSubDomains")]
)
def test_hsts_carries_include_subdomains_as_the_knob_says(tmp_path, subdomains, value):
    nginx, _ = rendered(tmp_path / "n", "nginx", HSTS_INCLUDE_SUBDOMAINS=subdomains)
    apache, _ = rendered(tmp_path / "a", "apache-mod_wsgi", HSTS_INCLUDE_SUBDOMAINS=subdomains)
    assert f'https   "{value}";' in (nginx / "nginx.conf").read_text()
    headers = (apache / "snippets" / "security-headers.conf").read_text()
    assert f'Strict-Transport-Security "{value}"' in headers


def csp_lines(tmp_path, **knobs) -> tuple[str, str]:
    """The line of each proxy that sends the header ("" for none)."""
    nginx, _ = rendered(tmp_path / "n", "nginx", **knobs)
    apache, _ = rendered(tmp_path / "a", "apache-mod_wsgi", **knobs)
    pattern = re.compile(r"^[^#\n]*Content-Security-Policy.*$", re.M)
    lines = [
        "".join(pattern.findall((folder / "snippets" / "security-headers.conf").read_text()))
        for folder in (nginx, apache)
    ]
    return lines[0], lines[1]


def test_the_content_security_policy_is_a_knob(tmp_path):
    nginx, apache = csp_lines(tmp_path)
    assert f'"{DEFAULT_CSP}"' in nginx and f'"{DEFAULT_CSP}"' in apache
    # what a server-rendered app needs: inline styles and scripts, https: CDNs
    directives = dict(d.strip().split(" ", 1) for d in DEFAULT_CSP.split(";"))
    for kind in ("script-src", "style-src"):
        assert {"'self'", "https:", "'unsafe-inline'"} <= set(directives[kind].split())
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    mine = "default-src 'self'; script-src 'self'"
    nginx, apache = csp_lines(tmp_path / "mine", CONTENT_SECURITY_POLICY=mine)
    assert f'"{mine}"' in nginx and f'"{mine}"' in apache
    # none: nginx sends no header for an empty value, Apache has no line
    nginx, apache = csp_lines(tmp_path / "none", CONTENT_SECURITY_POLICY="none")
    assert 'Content-Security-Policy "" always;' in nginx and apache == ""


@pytest.mark.parametrize("bad", ['default-src "self"', "script-src $x", "img-src %{x}", "a\\b"])
def test_a_policy_the_proxies_would_mangle_is_refused(bad):
    with pytest.raises(SettingsError, match="^CONTENT_SECURITY_POLICY="):
        Settings.from_env({"CONTENT_SECURITY_POLICY": bad})


def test_static_files_get_debians_media_types_and_text_a_charset(tmp_path):
    types = proxy.mime_types()
    expected = {"mjs": "text/javascript", "js": "text/javascript", "wasm": "application/wasm"}
    expected |= {"woff2": "font/woff2", "css": "text/css", "svg": "image/svg+xml"}
    assert {ext: types[ext] for ext in expected} == expected
    assert len(types) > 1000
    nginx, _ = rendered(tmp_path / "n", "nginx")
    block = (nginx / "mime.types").read_text()
    assert re.search(r"^    text/javascript [a-z ]*\bmjs\b[a-z ]*;$", block, re.M)
    static = (nginx / "snippets" / "static.conf").read_text()
    (charset_types,) = re.findall(r"^\s*charset_types (.*);$", static, re.M)
    assert {"text/css", "text/javascript", "text/plain"} <= set(charset_types.split())
    assert "font/woff2" not in charset_types and "application/wasm" not in charset_types
    apache, _ = rendered(tmp_path / "a", "apache-mod_wsgi")
    (extensions,) = re.findall(
        r"^\s*AddCharset utf-8 (.*)$", (apache / "snippets" / "static.conf").read_text(), re.M
    )
    assert {".css", ".js", ".mjs", ".txt"} <= set(extensions.split())
    assert ".woff2" not in extensions.split()
    assert "TypesConfig /etc/mime.types" in (apache / "httpd.conf").read_text()


@pytest.mark.parametrize(
    "knobs",
    [
        {"TLS": 1, "TRUSTED_PROXIES": "10.0.0.0/8", "HSTS_INCLUDE_SUBDOMAINS": 1},
        {"TRUSTED_PROXIES": "10.0.0.0/8", "CONTENT_SECURITY_POLICY": "none"},
        {"TLS": 1, "REDIRECT_TO_HTTPS": 0, "BALANCER_IDLE_TIMEOUT": 4000},
    ],
)
def test_the_servers_accept_the_configs_with_these_knobs(tmp_path, knobs):
    nginx, settings = rendered(tmp_path, "nginx", **knobs)
    ensure_certificate(settings)
    assert "[warn]" not in nginx_check(nginx)
    apache, _ = rendered(tmp_path, "apache-mod_wsgi", MOD_WSGI_MODULE=mod_wsgi_module(), **knobs)
    apache_check(apache)
