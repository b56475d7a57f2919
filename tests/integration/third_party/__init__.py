"""Two open-source Flask apps that no one here wrote, served by the project's
stacks as a user's own app would be (docs/your-app.md), and driven through
their real pages:

- flaskr, Flask's own tutorial app (examples/tutorial of the Flask 3.1.3
  sdist, BSD-3-Clause): an app factory, templates, sessions, SQLite, its own
  static folder and a blueprint under /auth. WSGI_APP flaskr:create_app().
- sqlite-web 0.8.2 (MIT): a database browser with a password login, its
  static folder under the URL prefix /db/static/; sqlite_web_app/ makes its
  WSGI callable.

Fetched from PyPI at pinned versions and hashes, once per session, never
committed (sqlite_web_app/ is ours). Nothing of the apps is changed.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
# the sdists, pinned by version and content
FLASK_SDIST = ("flask", "3.1.3", "0ef0e52b8a9cd932855379197dd8f94047b359ca0a78695144304cb45f87c9eb")
SQLITE_WEB_SDIST = (
    "sqlite-web",
    "0.8.2",
    "ef4348978c16f81e809f2bfc1905cbfad2b381ad4f532e30c27afd702ffc6283",
)
# sqlite-web's dependencies beyond Flask, pinned
SQLITE_WEB_REQUIREMENTS = ["sqlite-web==0.8.2", "peewee==4.5.3", "pygments==2.21.0"]
SQLITE_WEB_PASSWORD = "correct horse battery staple"


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, timeout=300)


def _sdist(folder: Path, name: str, version: str, sha256: str) -> Path:
    _pip("download", "--no-deps", "--no-binary", ":all:", "-d", str(folder), f"{name}=={version}")
    (path,) = folder.glob(f"{name.replace('-', '_')}-{version}.tar.gz")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == sha256, f"{path.name}: sha256 {digest}, pinned {sha256}"
    return path


@dataclass
class App:
    """One third-party app: what the knobs say of it, and where its files are."""

    name: str
    knobs: dict[str, str]
    # the folder of its code (APP_SOURCE), and what else goes on the path
    source: Path
    path: list[Path]
    env: dict[str, str] = field(default_factory=dict)
    # extra pinned requirements beyond requirements.txt
    requirements: list[str] = field(default_factory=list)


@functools.cache
def fetch() -> dict[str, App]:
    """Both apps, fetched and unpacked into a folder every user may read (the
    servers run as `nobody` under root); their data folders writable."""
    root = Path(tempfile.mkdtemp(prefix="wsgistack-third-party-"))
    downloads = root / "downloads"
    with tarfile.open(_sdist(downloads, *FLASK_SDIST)) as sdist:
        sdist.extractall(downloads)  # pinned by its hash above
    tutorial = downloads / f"flask-{FLASK_SDIST[1]}" / "examples" / "tutorial"
    flaskr_home = root / "flaskr-home"
    shutil.copytree(tutorial / "flaskr", flaskr_home / "flaskr")
    shutil.copy(tutorial / "LICENSE.txt", flaskr_home / "flaskr" / "LICENSE.txt")
    _sdist(downloads, *SQLITE_WEB_SDIST)
    site = root / "site-packages"
    _pip("install", "--no-deps", "--target", str(site), *SQLITE_WEB_REQUIREMENTS)
    # sqlite-web's database (sqlite_web_app makes its table), in a folder
    # the servers' user may write
    data = root / "data"
    data.mkdir()
    database = data / "notes.db"
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755)
    data.chmod(0o777)
    # flaskr keeps its database in its instance folder, beside the package
    (flaskr_home / "instance").mkdir(mode=0o777)
    (flaskr_home / "instance").chmod(0o777)
    return {
        "flaskr": App(
            "flaskr",
            {
                "WSGI_APP": "flaskr:create_app()",
                # a page that needs no database: ready before `init-db`
                "READY_PATH": "/auth/login",
                "STATIC_ROOT": str(flaskr_home / "flaskr" / "static"),
                "STATIC_URL": "/static/",
            },
            flaskr_home / "flaskr",
            [flaskr_home],
        ),
        "sqlite-web": App(
            "sqlite-web",
            {
                "WSGI_APP": "sqlite_web_app:application",
                "READY_PATH": "/db/login/",
                "STATIC_ROOT": str(site / "sqlite_web" / "static"),
                "STATIC_URL": "/db/static/",
            },
            HERE / "sqlite_web_app",
            [HERE, site],
            env={
                "SQLITE_WEB_DATABASE": str(database),
                "SQLITE_WEB_PASSWORD": SQLITE_WEB_PASSWORD,
                "SQLITE_WEB_SECRET_KEY": uuid.uuid4().hex,
            },
            requirements=SQLITE_WEB_REQUIREMENTS,
        ),
    }


def init_flaskr(python: str, pythonpath: list[Path]) -> None:
    """flaskr's own first step: `flask --app flaskr init-db` (its schema)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    subprocess.run(
        [python, "-m", "flask", "--app", "flaskr", "init-db"], env=env, check=True, timeout=60
    )


def _session() -> requests.Session:
    """A browser of sorts: cookies kept, straight to the server (no proxy
    named in the environment)."""
    web = requests.Session()
    web.trust_env = False
    return web


def _ok(answer: requests.Response, status: int = 200) -> requests.Response:
    assert answer.status_code == status, (answer.status_code, answer.url, answer.text[:300])
    return answer


def walk_flaskr(base_url: str) -> None:
    """Register, log in, post, read the post back on the index; its stylesheet
    from the proxy or the app."""
    user, title = f"user-{uuid.uuid4().hex[:8]}", f"post {uuid.uuid4().hex[:8]}"
    web = _session()
    _ok(web.get(f"{base_url}/auth/register"))
    answer = web.post(f"{base_url}/auth/register", data={"username": user, "password": "pw"})
    assert answer.url.endswith("/auth/login"), (answer.url, answer.text[:300])
    answer = web.post(f"{base_url}/auth/login", data={"username": user, "password": "pw"})
    assert answer.url == f"{base_url}/" and f"<span>{user}</span>" in answer.text, answer.text[:500]
    _ok(web.get(f"{base_url}/create"))
    answer = _ok(web.post(f"{base_url}/create", data={"title": title, "body": "read me back"}))
    assert answer.url == f"{base_url}/"
    index = _ok(_session().get(f"{base_url}/"))
    assert title in index.text and f"by {user}" in index.text, index.text[:500]
    css = _ok(_session().get(f"{base_url}/static/style.css"))
    assert css.headers["Content-Type"].startswith("text/css") and "body" in css.text


def walk_sqlite_web(base_url: str) -> None:
    """Log in with the password, insert a row through the form, read it back
    in the table's content; its stylesheet under the app's URL prefix."""
    text = f"note {uuid.uuid4().hex[:8]}"
    web = _session()
    assert "/db/login/" in web.get(f"{base_url}/db/").url
    answer = _ok(web.post(f"{base_url}/db/login/", data={"password": SQLITE_WEB_PASSWORD}))
    assert "notes" in answer.text, answer.text[:500]
    _ok(web.get(f"{base_url}/db/notes/insert/"))
    _ok(web.post(f"{base_url}/db/notes/insert/", data={"text": text}))
    content = _ok(web.get(f"{base_url}/db/notes/content/"))
    assert text in content.text, content.text[:500]
    # logged out: the content is not shown
    assert "/db/login/" in _session().get(f"{base_url}/db/notes/content/").url
    css = _ok(_session().get(f"{base_url}/db/static/css/sqlbrowse.css"))
    assert css.headers["Content-Type"].startswith("text/css")


WALKS = {"flaskr": walk_flaskr, "sqlite-web": walk_sqlite_web}
