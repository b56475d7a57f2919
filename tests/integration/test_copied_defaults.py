"""The uwsgi stack as a user starts it from the copied defaults: `cp
.env.example .env` and `docker compose --profile uwsgi up`, the shape it runs
read back from the app, and a stuck request under traffic cut at
REQUEST_TIMEOUT (a JSON 504 within REQUEST_TIMEOUT + 2 s, no other request
lost, its slot freed). With threads, uWSGI 2.0's harakiri, one deadline per
worker, misses it under traffic and nginx answers at REQUEST_TIMEOUT + 5:
what a .env.example with WSGI_THREADS=8 ran (docs/nginx-uwsgi.md).

Compose reads .env from the project folder; the test hands it a copy of
.env.example with --env-file instead, and shortens the ladder from the shell,
which wins over the file as it does for a user (REQUEST_TIMEOUT 3 s). The
shapes of the other copied paths are read back without an engine in
tests/configs/test_copied_defaults.py; the images with no knobs at all in
tests/integration/test_containers.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.integration.compose import ROOT, SERVICES, UP_TIMEOUT, build_images, compose
from tests.integration.compose import engine_problem as compose_engine_problem
from tests.integration.http import Answer, request
from tests.integration.test_timeouts import ANSWER_MARGIN, TRAFFIC_CLIENTS, stuck_under_traffic
from wsgistack.runner import find_free_port
from wsgistack.settings import UWSGI_SHAPE
from wsgistack.wait import wait_until

PROJECT = "wsgistack-test-env-example"
REQUEST_TIMEOUT = 3
# harakiri at REQUEST_TIMEOUT (1 s either side), the worker respawned and its
# app imported again: every slot serves by then
FREE_BY = REQUEST_TIMEOUT + 6


@pytest.fixture(scope="module")
def env_example_stack(tmp_path_factory) -> Iterator[str]:
    """The uwsgi profile up from a copy of .env.example; its base URL."""
    problem = compose_engine_problem()
    if problem:
        pytest.skip(problem)
    build_images(cpython=False)
    env_file = tmp_path_factory.mktemp("env-example") / ".env"
    shutil.copy(ROOT / ".env.example", env_file)
    port = find_free_port()
    shell = {
        "REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
        "STOP_GRACE_PERIOD": f"{REQUEST_TIMEOUT + 15}s",
        # the stuck request may sleep past the timeout
        "FLASK_IO_MAX_MS": "60000",
        "RESTART_POLICY": "no",
        "UWSGI_HTTP_PORT": str(port),
        "UWSGI_HTTPS_PORT": str(find_free_port()),
    }

    def run(*args: str, **options):
        # a second --env-file after compose_command's empty one: the copy
        copy = ("--env-file", str(env_file))
        return compose(*copy, "--profile", "uwsgi", *args, project=PROJECT, env=shell, **options)

    run("down", "--timeout", "5", check=False)
    up = run("up", "--detach", "--wait", timeout=UP_TIMEOUT, check=False)
    base_url = f"http://127.0.0.1:{port}"
    try:
        assert up.returncode == 0, up.stderr[-3000:] + run("logs", "--tail", "40").stdout
        wait_until(
            lambda: request(base_url, "/readyz", timeout=2).status == 200,
            timeout=30,
            interval=0.2,
            what="the uwsgi profile answering /readyz",
            ignore=(OSError,),
        )
        yield base_url
    finally:
        run("down", "--timeout", "5", check=False)


def test_a_copied_env_example_runs_uwsgi_with_one_thread_per_process(env_example_stack):
    configured = request(env_example_stack, "/info").json["configured"]
    expected = {knob: shape["uwsgi"] for knob, shape in UWSGI_SHAPE.items()}
    assert configured == {
        "processes": expected["WSGI_PROCESSES"],
        "threads": expected["WSGI_THREADS"],
    }, f"{SERVICES['uwsgi']} run {configured} from .env.example"


def test_a_copied_env_example_cuts_a_stuck_request_under_traffic(env_example_stack):
    slots = UWSGI_SHAPE["WSGI_PROCESSES"]["uwsgi"] * UWSGI_SHAPE["WSGI_THREADS"]["uwsgi"]
    run = stuck_under_traffic(env_example_stack, slots, FREE_BY)
    stuck = run.stuck
    assert isinstance(stuck, Answer), f"the stuck request got no answer: {stuck!r}"
    assert stuck.status == 504 and stuck.is_problem(504), (stuck.status, stuck.body[:300])
    # harakiri's kill (1 s either side of REQUEST_TIMEOUT), not nginx's read
    # timeout 5 s later
    assert REQUEST_TIMEOUT - 1 <= stuck.elapsed <= REQUEST_TIMEOUT + ANSWER_MARGIN, (
        f"the stuck request's 504 came after {stuck.elapsed:.1f} s"
    )
    # the traffic went on all along (3 clients of 0.3 s requests) and lost nothing
    assert len(run.traffic) >= FREE_BY * TRAFFIC_CLIENTS, len(run.traffic)
    assert not run.failures, run.failures[:5]
    assert run.freed_after is not None, f"a slot was still held {FREE_BY} s after the start"
