"""deploy/swarm/stack.yaml read as Compose and swarm's loader render it (no
engine): the knobs, defaults and ladder of compose.yaml's uwsgi profile, and what
swarm mode needs (dnsrr, host-mode port, start-first updates). The stack is
deployed for real in tests/integration/test_swarm.py."""

from __future__ import annotations

import json
import os

import pytest

from tests.integration.compose import ROOT, compose_problem, run
from wsgistack import swarm


def rendered(compose_file: str, *args: str) -> dict:
    """A compose file as Compose renders it, every knob at its default."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    env["CA_BUNDLE"] = "/dev/null"  # compose.yaml's build secret, unused here
    command = ["docker", "compose", "--project-directory", str(ROOT), "--env-file", os.devnull]
    result = run(
        [*command, "--file", str(ROOT / compose_file), *args, "config", "--format", "json"], env=env
    )
    return json.loads(result.stdout)["services"]


def test_stack_file_has_the_knobs_and_ladder_of_compose():
    problem = compose_problem()
    if problem:
        pytest.skip(problem)
    # swarm's own loader accepts the file (`docker stack config` needs no engine)
    run(["docker", "stack", "config", "--compose-file", str(swarm.STACK_FILE)])
    stack = rendered("deploy/swarm/stack.yaml")
    compose = rendered("compose.yaml", "--profile", "uwsgi")
    for service in (swarm.APP_SERVICE, swarm.PROXY_SERVICE):
        ours, theirs = stack[service], compose[service]
        # the same knobs with the same defaults; SERVER_NAMES differs by the
        # compose-only `apache` service name
        for env in (ours["environment"], theirs["environment"]):
            env.pop("SERVER_NAMES")
        # nginx's own: swarm's replica count, compose's published HTTPS port
        ours["environment"].pop("APP_REPLICAS", None)
        theirs["environment"].pop("TLS_PUBLIC_PORT", None)
        assert ours["environment"] == theirs["environment"], service
        assert ours["stop_grace_period"] == theirs["stop_grace_period"]
        assert ours["image"].split(":")[0] == theirs["image"].split(":")[0]
        assert ours["read_only"] and ours["cap_drop"] == ["ALL"]
    app, proxy = stack[swarm.APP_SERVICE], stack[swarm.PROXY_SERVICE]
    assert app["healthcheck"]["test"][-1].endswith("/readyz")
    assert proxy["healthcheck"]["test"][-1].endswith("/livez")
    assert app["deploy"]["endpoint_mode"] == "dnsrr" and "ports" not in app
    assert app["deploy"]["update_config"]["order"] == "start-first"
    assert app["deploy"]["update_config"]["failure_action"] == "rollback"
    assert [p["mode"] for p in proxy["ports"]] == ["host"]
    assert set(app["networks"]) == {"backend", "metrics"}
    # the socket's network is nginx's and the app's only
    assert {name for name, svc in stack.items() if "backend" in svc["networks"]} == {
        swarm.APP_SERVICE,
        swarm.PROXY_SERVICE,
    }
