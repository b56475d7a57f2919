"""The front page (``/``) and its files under ``/static/``.

The page's CSS and JS are linked under fingerprinted names,
``/static/fib.<8 hex digits of their SHA-256>.js``, computed when the app starts:
a new version is a new URL, so those files may be cached for a year, while the
page itself (``/``) is revalidated on every visit. Behind nginx, nginx serves
``/static/`` from disk with the same rule (deploy/nginx/snippets/static.conf);
on gunicorn and the development server, the routes below do.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, abort, current_app, render_template, request, send_file

STATIC_DIR = Path(__file__).resolve().parent / "static"
# a year: the most browsers and caches honour
FINGERPRINTED_MAX_AGE = 365 * 24 * 3600
# unfingerprinted names may change under the same URL: a short time
PLAIN_MAX_AGE = 300

bp = Blueprint("front", __name__)


def fingerprints() -> dict[str, str]:
    """``{"fib.js": "fib.3fa2c1d0.js", ...}`` for every file in the static folder."""
    names = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
            names[path.name] = f"{path.stem}.{digest}{path.suffix}"
    return names


@bp.get("/")
def index():
    response = current_app.make_response(
        render_template(
            "index.html",
            server=request.environ.get("SERVER_SOFTWARE", "a WSGI server").split("/")[0],
        )
    )
    # revalidate every time: the page names the current fingerprinted files
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/static/<name>")
def static_file(name: str):
    plain = {hashed: original for original, hashed in current_app.extensions["static"].items()}
    if name in plain:
        return send_file(STATIC_DIR / plain[name], max_age=FINGERPRINTED_MAX_AGE)
    if name in current_app.extensions["static"]:
        return send_file(STATIC_DIR / name, max_age=PLAIN_MAX_AGE)
    abort(404)


def init_app(app) -> None:
    names = fingerprints()
    app.extensions["static"] = names
    app.jinja_env.globals["static_url"] = lambda name: f"/static/{names[name]}"
    app.register_blueprint(bp)
