"""The proxies' facts against running servers, as the README's recommended
production setup runs them: TLS=0 behind a trusted load balancer that
terminates TLS (127.0.0.2, TRUSTED_PROXIES), nginx + uWSGI and Apache +
mod_wsgi natively, each started once for the module, with a static folder
(STATIC_ROOT) holding what a real app ships:

- HSTS on every answer to a client that used HTTPS at the balancer, and a
  redirect to the balancer's HTTPS for one that used plain HTTP;
- Debian's media types with nosniff: .mjs, .wasm, .woff2 (and text with a
  charset);
- the default Content-Security-Policy lets a server-rendered page use an
  inline style, a <style> block, inline scripts and an https: CDN (headless
  Chromium, as tests/integration/test_front_page.py runs it).

The rendered values behind them are checked without servers in
tests/configs/test_config_facts.py.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.http import request
from tests.integration.targets import make_target
from tests.integration.test_front_page import browser  # noqa: F401 - the fixture
from wsgistack.configs.proxy import HSTS_MAX_AGE
from wsgistack.settings import APP_STATIC, DEFAULT_CSP

BALANCER = "127.0.0.2"
AT_BALANCER_HTTPS = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
AT_BALANCER_HTTP = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"}
# a CDN the page loads from; the browser's request is answered by the test
CDN = "https://cdn.example.org"
# files of a real app's static folder: name -> (bytes, the type it must be served as)
STATIC_FILES = {
    "module.mjs": (b"export const answer = 42;\n", "text/javascript; charset=utf-8"),
    # the smallest valid WebAssembly module: magic number and version
    "engine.wasm": (b"\0asm\1\0\0\0", "application/wasm"),
    "font.woff2": (b"wOF2" + bytes(60), "font/woff2"),
    "site.css": (b"body { margin: 0; }\n", "text/css; charset=utf-8"),
}
# a page as a server-rendered app writes it: inline styles, a <style> block,
# an inline script, an inline event handler, a CDN's stylesheet and script
PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>plain app</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{CDN}/lib.css">
<style>#block {{ color: rgb(0, 128, 0); }}</style>
<script src="{CDN}/lib.js"></script>
</head><body>
<p id="attribute" style="color: rgb(255, 0, 0)">inline style attribute</p>
<p id="block">style block</p>
<p id="cdn" class="from-cdn">CDN stylesheet</p>
<button id="button" onclick="document.body.dataset.clicked = 'yes'">click</button>
<script>document.body.dataset.inline = "ran";</script>
</body></html>
"""
CDN_FILES = {
    "/lib.css": (".from-cdn { color: rgb(0, 0, 255); }", "text/css"),
    "/lib.js": ("document.documentElement.dataset.cdn = 'ran';", "text/javascript"),
}


@pytest.fixture(scope="module")
def static_root() -> Iterator[Path]:
    """The app's own static files, plus a real app's kinds of file, in a
    folder the servers' unprivileged user may read (pytest's own are root's)."""
    folder = Path(tempfile.mkdtemp(prefix="wsgistack-static-"))
    root = folder / "static"
    shutil.copytree(APP_STATIC, root)
    for name, (body, _) in STATIC_FILES.items():
        (root / name).write_bytes(body)
    (root / "page.html").write_text(PAGE)
    for path in [folder, root, *root.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield root
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module", params=["uwsgi", "apache"])
def behind_balancer(request, static_root, tmp_path_factory):
    """A stack with TLS=0 behind a trusted balancer, started once for the module."""
    settings = {"TRUSTED_PROXIES": BALANCER, "STATIC_ROOT": str(static_root)}
    logs = tmp_path_factory.mktemp("logs")
    target = make_target(request.param, logs / f"{request.param}.log", settings)
    try:
        yield target.start()
    finally:
        target.stop()


def test_hsts_and_the_redirect_follow_the_scheme_the_trusted_balancer_reported(behind_balancer):
    stack, hsts = behind_balancer, f"max-age={HSTS_MAX_AGE}"
    # the client used HTTPS at the balancer: served, with HSTS
    answer = request(stack.base_url, "/fib/10", headers=AT_BALANCER_HTTPS, source=BALANCER)
    assert answer.status == 200, answer.body[:300]
    assert answer.headers["Strict-Transport-Security"] == hsts
    # ... an error the proxy answers itself too
    missing = request(
        stack.base_url, "/static/none.css", headers=AT_BALANCER_HTTPS, source=BALANCER
    )
    assert missing.status == 404 and missing.headers["Strict-Transport-Security"] == hsts
    # the client used plain HTTP at the balancer: to the balancer's HTTPS
    plain = request(stack.base_url, "/fib/10?x=1", headers=AT_BALANCER_HTTP, source=BALANCER)
    assert plain.status == 308, plain.body[:300]
    assert plain.headers["Location"] == "https://127.0.0.1/fib/10?x=1"
    assert "Strict-Transport-Security" not in plain.headers
    # the balancer's probes are answered, never redirected
    for probe in ("/livez", "/readyz"):
        answer = request(stack.base_url, probe, headers=AT_BALANCER_HTTP, source=BALANCER)
        assert answer.status == 200, probe
    # a client that reaches the proxy itself is believed nothing: plain HTTP
    # is served (no HTTPS here to send it to), without HSTS
    direct = request(stack.base_url, "/fib/10", headers=AT_BALANCER_HTTPS)
    assert direct.status == 200 and "Strict-Transport-Security" not in direct.headers


@pytest.mark.parametrize("name", sorted(STATIC_FILES))
def test_static_files_are_served_with_their_type_under_nosniff(behind_balancer, name):
    answer = request(behind_balancer.base_url, f"/static/{name}")
    body, content_type = STATIC_FILES[name]
    assert answer.status == 200 and answer.body == body
    assert answer.headers["Content-Type"].lower() == content_type
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_server_rendered_page_works_under_the_default_csp(behind_balancer, browser):  # noqa: F811
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    # the CDN answers from here: the browser asks for it only if the policy allows it
    cdn_asked: list[str] = []

    def cdn(route):
        path = route.request.url.removeprefix(CDN)
        cdn_asked.append(path)
        body, content_type = CDN_FILES[path]
        route.fulfill(body=body, content_type=content_type)

    page.route(f"{CDN}/**", cdn)
    try:
        response = page.goto(behind_balancer.base_url + "/static/page.html")
        assert response.status == 200
        assert response.headers["content-security-policy"] == DEFAULT_CSP
        color = "element => getComputedStyle(element).color"
        assert page.eval_on_selector("#attribute", color) == "rgb(255, 0, 0)"
        assert page.eval_on_selector("#block", color) == "rgb(0, 128, 0)"
        assert page.eval_on_selector("#cdn", color) == "rgb(0, 0, 255)"
        assert page.evaluate("document.body.dataset.inline") == "ran"
        assert page.evaluate("document.documentElement.dataset.cdn") == "ran"
        page.click("#button")
        assert page.evaluate("document.body.dataset.clicked") == "yes"
        assert sorted(cdn_asked) == sorted(CDN_FILES)
        assert problems == [], problems
    finally:
        page.close()
