"""Two Flask apps no one here wrote (tests/integration/third_party), served
by every production stack natively (`wsgistack up STACK`, as a person runs
it) and in the app's own images (built with APP_REQUIREMENTS and APP_SOURCE),
with the knobs a user sets for an app of their own (docs/your-app.md), and
driven through their real pages. On the Debian server: test_debian_server.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import compose, third_party
from tests.integration.targets import (
    COMPOSE_HTTPS_PORT_VARIABLES,
    COMPOSE_PORT_VARIABLES,
    make_target,
    wait_for_up,
)
from wsgistack.runner import find_free_port

STACKS = ["uwsgi", "apache", "gunicorn", "granian"]


@pytest.fixture(scope="module")
def apps():
    apps = third_party.fetch()
    flaskr = apps["flaskr"]
    third_party.init_flaskr(sys.executable, flaskr.path)
    # its database, writable by the servers' user (`nobody` under root)
    for database in (flaskr.path[0] / "instance").iterdir():
        database.chmod(0o666)
    return apps


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("name", ["flaskr", "sqlite-web"])
def test_a_third_party_app_through_its_real_pages(apps, name, stack, tmp_path, monkeypatch):
    app = apps[name]
    pythonpath = [str(p) for p in app.path]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(pythonpath))
    for key, value in app.env.items():
        monkeypatch.setenv(key, value)
    target = make_target(stack, tmp_path / f"{stack}.log", app.knobs)
    try:
        target.start()
        third_party.WALKS[name](target.base_url)
    except BaseException:
        print(target.log_tail(60))
        raise
    finally:
        target.stop()


# the compose profiles an app's images are built and started for, and the
# service of each that runs the app
PROFILES = {
    "docker-uwsgi": ("uwsgi", "uwsgi-app"),
    "docker-apache": ("apache", "apache"),
    "docker-gunicorn": ("gunicorn", "gunicorn"),
    "docker-granian": ("granian", "granian"),
}


@dataclass
class AppImages:
    """An app's images, built from a folder laid out as a user's repository
    with this project's files copied in (docs/your-app.md)."""

    app: third_party.App
    context: Path
    env: dict[str, str]

    def compose(self, *args: str, timeout: float = 300, check: bool = True):
        command = ["docker", "compose", "--project-name", f"wsgistack-test-{self.app.name}"]
        command += ["--project-directory", str(self.context), "--env-file", os.devnull]
        command += ["--file", str(self.context / "compose.yaml")]
        command += ["--file", str(self.context / "app-data.yaml"), *args]
        return compose.run(command, timeout=timeout, check=check, env=compose.compose_env(self.env))


@pytest.fixture(scope="module", params=["flaskr", "sqlite-web"])
def app_images(request, apps):
    """The images of one app (every profile's), built once for the module."""
    problem = compose.engine_problem()
    if problem:
        pytest.skip(problem)
    app = apps[request.param]
    # the session's images on Debian's python3 first: their layers (the venvs,
    # mod_wsgi) are the app images' too, and two builds at once share 2 cores
    compose.build_images(cpython=False)
    context = Path(tempfile.mkdtemp(prefix=f"wsgistack-{app.name}-images-"))
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=compose.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in tracked:
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(compose.ROOT / name, target)
    shutil.copytree(app.source, context / app.source.name)
    requirements = (compose.ROOT / "requirements.txt").read_text()
    (context / "app-requirements.txt").write_text(requirements + "\n".join(app.requirements) + "\n")
    # the build context is an allowlist (.dockerignore): the app's folder and
    # requirements join it, as docs/your-app.md tells a user to
    with (context / ".dockerignore").open("a") as ignore:
        ignore.write(f"!{app.source.name}/\n!app-requirements.txt\n")
    knobs = dict(app.knobs)
    if app.name == "flaskr":
        knobs["STATIC_ROOT"] = "/srv/flaskr/static"
    else:
        knobs["STATIC_ROOT"] = "/opt/venv/lib/python3.13/site-packages/sqlite_web/static"
    # the app's data: flaskr's instance folder beside its package, sqlite-web's
    # database on the /tmp tmpfs (a real deployment mounts a volume)
    services = {service for _, service in PROFILES.values()}
    data = {"services": {s: {"tmpfs": ["/srv/instance:mode=1777"]} for s in services}}
    (context / "app-data.yaml").write_text(json.dumps(data))
    env = {
        **knobs,
        **app.env,
        "SQLITE_WEB_DATABASE": "/tmp/notes.db",
        "APP_REQUIREMENTS": "app-requirements.txt",
        "APP_SOURCE": app.source.name,
        "IMAGE_TAG": f"{compose.IMAGE_TAG}-{app.name}",
    }
    images = AppImages(app, context, env)
    profiles = [f"--profile={profile}" for profile, _ in PROFILES.values()]
    built = images.compose(*profiles, "build", timeout=compose.BUILD_TIMEOUT, check=False)
    # compose's exit status alone is no proof here (a failed COPY was seen to
    # end 0): every image of the profiles must exist under the app's tag
    names = images.compose(*profiles, "config", "--images").stdout.split()
    missing = [n for n in names if compose.docker("image", "inspect", n, check=False).returncode]
    assert built.returncode == 0 and not missing, f"not built: {missing}\n{built.stderr[-3000:]}"
    yield images
    images.compose("--profile=*", "down", "--volumes", "--timeout=5", check=False)
    shutil.rmtree(context, ignore_errors=True)


@pytest.mark.parametrize("profile", list(PROFILES))
def test_a_third_party_app_in_the_images(app_images, profile):
    """The app's own images (built with APP_REQUIREMENTS and APP_SOURCE), each
    profile up and healthy at the app's READY_PATH, the app through its pages."""
    name, service = PROFILES[profile]
    # free ports, as the behaviour suite's compose targets take them
    port = find_free_port()
    ports = {COMPOSE_PORT_VARIABLES[name]: str(port)}
    if name in COMPOSE_HTTPS_PORT_VARIABLES:
        ports[COMPOSE_HTTPS_PORT_VARIABLES[name]] = str(find_free_port())
    app_images.env.update(ports)
    # --no-build: the images the fixture built, never a build of its own
    up = app_images.compose(
        f"--profile={name}", "up", "--detach", "--wait", "--no-build", check=False
    )
    base_url = f"http://127.0.0.1:{port}"

    def logs() -> str:
        return app_images.compose(f"--profile={name}", "logs", "--tail=40", check=False).stdout

    try:
        assert up.returncode == 0, f"{up.stderr[-2000:]}\n{logs()}"
        # `up --wait` may return before the proxy is up (Engine 20.10): the
        # probe a balancer would send, the proxy's /readyz or the app's own path
        proxied = name in ("uwsgi", "apache")
        path = "/readyz" if proxied else app_images.env["READY_PATH"]
        wait_for_up(base_url, name, 120, lambda: None, logs, path)
        if app_images.app.name == "flaskr":
            # flaskr's own first step: its schema
            app_images.compose(
                "exec", "-T", service, "/opt/venv/bin/flask", "--app", "flaskr", "init-db"
            )
        third_party.WALKS[app_images.app.name](base_url)
    finally:
        app_images.compose(f"--profile={name}", "down", "--timeout=5", check=False)
