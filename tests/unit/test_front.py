"""The front page and its fingerprinted static files (app/front.py)."""

import hashlib
import re

from app.front import STATIC_DIR


def test_the_front_page_links_fingerprinted_files(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    html = response.get_data(as_text=True)
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert len(links) == 3, links
    for link in links:
        name = link.removeprefix("/static/")
        stem, digest, ext = name.rsplit(".", 2)
        content = (STATIC_DIR / f"{stem}.{ext}").read_bytes()
        assert digest == hashlib.sha256(content).hexdigest()[:8]
        served = client.get(link)
        assert served.status_code == 200 and served.data == content
        assert served.headers["Cache-Control"] == "public, max-age=31536000"


def test_plain_names_are_served_briefly_and_unknown_ones_are_json_404(client):
    plain = client.get("/static/fib.js")
    assert plain.status_code == 200 and plain.headers["Cache-Control"] == "public, max-age=300"
    for path in ("/static/nope.js", "/static/fib.00000000.js", "/static/../__init__.py"):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.is_json, path


def test_the_page_has_no_inline_script_or_style(client):
    # the front page runs under the strict policy docs/edge.md leads to (scripts
    # and styles from files only), not only under the proxies' looser default
    html = client.get("/").get_data(as_text=True)
    assert "<script>" not in html and "style=" not in html and "<style" not in html
