"""Every default a user copies gives the uwsgi stack its own worker shape,
processes of one thread each, without which a stuck request under traffic is
not cut at REQUEST_TIMEOUT (uWSGI 2.0's harakiri is one deadline per worker,
docs/nginx-uwsgi.md). One test per way in, each reading the shape back from
what that way produces: the rendered files (`wsgistack render`, `wsgistack
up`), .env.example as Compose reads it, the Swarm stack file; the Kubernetes
ConfigMap in tests/kubernetes/test_manifests.py. The images with no knobs, and
the stuck request under traffic with a copied .env.example, run for real in
tests/integration/test_copied_defaults.py."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.configs.test_server_configs import uwsgi_get
from tests.integration.compose import ROOT, compose_problem, run
from wsgistack import cli, render
from wsgistack.settings import KNOBS, UWSGI_SHAPE, Settings
from wsgistack.stacks import DEPLOY_DIR

# the uwsgi stack's shape when no knob says otherwise (wsgistack/settings.py)
PROCESSES = UWSGI_SHAPE["WSGI_PROCESSES"]["uwsgi"]
THREADS = UWSGI_SHAPE["WSGI_THREADS"]["uwsgi"]


@pytest.fixture
def no_knobs(monkeypatch):
    """The environment of a user who set no knob."""
    for knob in KNOBS:
        monkeypatch.delenv(knob.env, raising=False)


def test_the_shape_is_one_thread_per_process():
    assert THREADS == 1 and PROCESSES > 1


def test_wsgistack_render_with_no_knobs_renders_the_uwsgi_shape(tmp_path, no_knobs, monkeypatch):
    # what docs/native.md tells a user to run to get the files for a server
    monkeypatch.setenv("RUN_DIR", str(tmp_path))
    out = tmp_path / "out"
    templates = [str(DEPLOY_DIR / "uwsgi"), str(DEPLOY_DIR / "nginx")]
    assert render.main([*templates, "--out", str(out)]) == 0
    # uWSGI reads its own file back (strict mode: every option is its own)
    ini = out / "uwsgi" / "uwsgi.ini"
    assert uwsgi_get(ini, "processes") == str(PROCESSES)
    assert uwsgi_get(ini, "threads") == str(THREADS)
    # nginx admits the slots of that uWSGI and its backlog, no more
    site = (out / "nginx" / "snippets" / "proxy-to-app.conf").read_text()
    admitted = int(re.search(r"^limit_conn in_flight (\d+);", site, re.M)[1])
    assert admitted == PROCESSES * THREADS + Settings.from_env({}).LISTEN_BACKLOG


def test_render_shape_is_what_the_images_entrypoint_exports(no_knobs, capsys):
    assert render.main(["--shape", "/srv/deploy/uwsgi/uwsgi.ini"]) == 0
    assert render.main(["--shape", "/srv/deploy/nginx"]) == 0
    assert render.main(["--shape"]) == 0
    uwsgi, nginx, other = capsys.readouterr().out.splitlines()
    assert uwsgi == nginx
    assert f"WSGI_PROCESSES={PROCESSES} WSGI_THREADS={THREADS} " in uwsgi
    # the app servers without a shape of their own: 8 threads
    assert " WSGI_THREADS=8 " in other
    # one rendering is for one stack
    assert render.main(["--shape", "deploy/uwsgi", "deploy/apache-mod_wsgi"]) == 2


@pytest.mark.parametrize("stack", ["uwsgi", "uwsgi-direct"])
def test_wsgistack_up_with_no_knobs_runs_the_uwsgi_shape(stack, no_knobs):
    settings = cli.up_settings(cli.build_parser().parse_args(["up", stack]))
    assert (settings.WSGI_PROCESSES, settings.WSGI_THREADS) == (PROCESSES, THREADS)


def compose_services(*args: str) -> dict:
    """`docker compose config` (the compose CLI, no engine) of ``args``,
    with nothing from the shell but PATH and HOME."""
    problem = compose_problem()
    if problem:
        pytest.skip(problem)
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    # compose.yaml's build secret, unused here; the shell wins over --env-file
    env["CA_BUNDLE"] = "/dev/null"
    command = ["docker", "compose", "--project-directory", str(ROOT), *args]
    result = run([*command, "config", "--format", "json"], env=env)
    return json.loads(result.stdout)["services"]


@pytest.mark.parametrize(
    "paths",
    [
        # `cp .env.example .env`, as the README says
        ("--env-file", str(ROOT / ".env.example"), "--file", str(ROOT / "compose.yaml")),
        # no .env at all
        ("--env-file", os.devnull, "--file", str(ROOT / "compose.yaml")),
        # `docker stack deploy` reads no .env: the shell's knobs or the defaults
        ("--env-file", os.devnull, "--file", str(ROOT / "deploy" / "swarm" / "stack.yaml")),
    ],
    ids=["compose-env-example", "compose", "swarm"],
)
def test_compose_and_swarm_files_give_the_uwsgi_shape(paths):
    services = compose_services(*paths, "--profile", "uwsgi")
    for name in ("uwsgi-app", "uwsgi-nginx"):
        # what the images' entrypoint resolves from the environment it gets
        env = services[name]["environment"]
        shape = Settings.from_env(env, server="uwsgi")
        assert (shape.WSGI_PROCESSES, shape.WSGI_THREADS) == (PROCESSES, THREADS), (name, env)
