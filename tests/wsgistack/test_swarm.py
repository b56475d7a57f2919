"""wsgistack.swarm without an engine: the environment `docker stack deploy`
gets, and the command line. The stack itself is tested for real in
tests/integration/test_swarm.py."""

from __future__ import annotations

import pytest

from wsgistack import cli, swarm


@pytest.fixture(autouse=True)
def no_knobs(monkeypatch):
    for name in ("STOP_GRACE_PERIOD", "REQUEST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def test_stack_env_follows_the_timeout_ladder():
    env = swarm.stack_env(3, 9000, "v1", {"REQUEST_TIMEOUT": "60"})
    assert env["STOP_GRACE_PERIOD"] == "75s"  # 60 + 5 (proxy) + 10 (stop margin)
    assert (env["APP_REPLICAS"], env["SWARM_HTTP_PORT"], env["IMAGE_TAG"]) == ("3", "9000", "v1")


def test_stack_env_keeps_an_explicit_grace_period():
    env = swarm.stack_env(1, 9000, "v1", {"STOP_GRACE_PERIOD": "2m"})
    assert env["STOP_GRACE_PERIOD"] == "2m"


def test_default_grace_period_matches_the_stack_files_default():
    assert swarm.stack_env(1, 9000, "v1")["STOP_GRACE_PERIOD"] == "45s"
    assert "${STOP_GRACE_PERIOD:-45s}" in swarm.STACK_FILE.read_text()


def test_command_line():
    parser = cli.build_parser()
    args = parser.parse_args(["swarm", "scale", "--replicas", "4", "--port", "9000"])
    assert (args.action, args.replicas, args.port, args.name) == ("scale", 4, 9000, "wsgistack")
    with pytest.raises(SystemExit):
        parser.parse_args(["swarm", "scale"])  # --replicas is required


def test_fewer_than_one_replica_is_refused():
    with pytest.raises(swarm.SwarmError, match="1 or more"):
        swarm.deploy(0)
