"""compose.yaml and .env.example, read as Compose renders them (``docker compose
config``: the compose CLI only, no engine): the timeout ladder, the lock-down, the
networks, the healthchecks, the memory rule, the ports the suite moves and the
documented defaults. The containers themselves run in
tests/integration/test_containers.py."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.integration.compose import ROOT, SERVICES, memory_rule, rendered_config
from wsgistack.settings import Settings


@pytest.fixture(scope="module")
def compose_config() -> dict:
    return rendered_config()


def _seconds(duration: str | int | float) -> float:
    """Compose's durations ("45s", "1m30s") in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    total, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for char in duration:
        if char.isdigit() or char == ".":
            number += char
        else:
            total += float(number) * units[char]
            number = ""
    return total + (float(number) if number else 0.0)


def test_compose_keeps_the_timeout_ladder(compose_config) -> None:
    # the defaults of compose.yaml against the ladder wsgistack/settings.py derives
    settings = Settings.from_env({})
    assert settings.REQUEST_TIMEOUT < settings.PROXY_TIMEOUT < settings.STOP_GRACE_PERIOD
    knobs = compose_config["services"]["uwsgi-app"]["environment"]
    assert int(knobs["REQUEST_TIMEOUT"]) == settings.REQUEST_TIMEOUT
    for stack_name, services in SERVICES.items():
        for service in services:
            grace = _seconds(compose_config["services"][service]["stop_grace_period"])
            assert grace >= settings.STOP_GRACE_PERIOD, (stack_name, service, grace)


def test_compose_services_are_locked_down(compose_config) -> None:
    for name, service in compose_config["services"].items():
        assert service.get("read_only") is True, name
        assert any(mount.split(":")[0] == "/tmp" for mount in service["tmpfs"]), name
        assert service.get("cap_drop") == ["ALL"], name
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)
    # the uwsgi-protocol socket is for nginx only
    assert not compose_config["services"]["uwsgi-app"].get("ports")


def test_only_nginx_shares_a_network_with_the_uwsgi_socket(compose_config) -> None:
    # the socket's network, and the metrics network where Prometheus and the
    # exporters read the metrics ports: both internal, neither with a client
    services = compose_config["services"]
    assert set(services["uwsgi-app"]["networks"]) == {"uwsgi-socket", "metrics"}

    def members(network: str) -> set[str]:
        assert compose_config["networks"][network].get("internal") is True, network
        return {name for name, service in services.items() if network in service["networks"]}

    assert members("uwsgi-socket") == {"uwsgi-app", "uwsgi-nginx"}
    clients = {"locust-master", "locust-worker"}
    assert "prometheus" in members("metrics") and not members("metrics") & clients


# the services whose healthcheck asks the app itself, at its READY_PATH
# (`$$` is compose's escape: the healthcheck expands the container's variable)
APP_PROBED = {"uwsgi-app", "gunicorn", "granian"}


def test_every_server_healthcheck_probes_readiness(compose_config) -> None:
    """A proxy is asked its own /readyz (which it passes to the app); an app
    server without one is asked the app's READY_PATH (/readyz by default)."""
    assert compose_config["services"]["gunicorn"]["environment"]["READY_PATH"] == "/readyz"
    for stack_name, services in SERVICES.items():
        for service in services:
            test = compose_config["services"][service]["healthcheck"]["test"]
            path = "$$READY_PATH" if service in APP_PROBED else "/readyz"
            assert test[-1].endswith(path), (stack_name, service, test)


NGINX_MB = 32  # nginx's own processes, beside its tmpfs


def _tmpfs_mb(service: dict) -> int:
    (mount,) = [m for m in service["tmpfs"] if m.split(":")[0] == "/tmp"]
    options = dict(o.split("=", 1) for o in mount.split(":", 1)[1].split(",") if "=" in o)
    assert "size" in options, f"an unbounded tmpfs: {mount}"
    size = options["size"].lower()
    assert size.endswith("m"), size
    return int(size[:-1])


def test_memory_limits_let_uwsgi_recycle_before_the_kernel_kills(compose_config) -> None:
    app = compose_config["services"]["uwsgi-app"]
    knobs = app["environment"]
    reload_on_rss = int(knobs["RELOAD_ON_RSS_MB"])
    assert reload_on_rss > 0, "RELOAD_ON_RSS_MB=0: workers are never recycled"
    # the worker shape the entrypoint resolves from them (empty: uWSGI's own)
    processes = Settings.from_env(knobs, server="uwsgi").WSGI_PROCESSES
    needed = memory_rule.needed_mb(processes, reload_on_rss, _tmpfs_mb(app))
    limit = int(app["mem_limit"]) // 2**20
    assert needed <= limit, f"APP_MEMORY {limit} MB < {needed} MB the rule needs"
    nginx = compose_config["services"]["uwsgi-nginx"]
    assert _tmpfs_mb(nginx) + NGINX_MB <= int(nginx["mem_limit"]) // 2**20


def test_suite_targets_move_every_port_their_profile_publishes() -> None:
    """A suite target (targets.py) runs a profile in a project of its own on free
    ports: a port variable it leaves at its default is held against the container
    tests' project of the same profile (granian-gil's once was: "port is already
    allocated")."""

    from tests.integration.targets import (
        COMPOSE_HTTPS_PORT_VARIABLES,
        COMPOSE_OTHER_PORT_VARIABLES,
        COMPOSE_PORT_VARIABLES,
    )

    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    for profile, variable in COMPOSE_PORT_VARIABLES.items():
        published = {
            name
            for service in services.values()
            if profile in service.get("profiles", ())
            for port in service.get("ports", ())
            for name in re.findall(r"\$\{([A-Z0-9_]+):-", str(port))
        }
        moved = {variable, *COMPOSE_OTHER_PORT_VARIABLES.get(profile, ())}
        moved |= (
            {COMPOSE_HTTPS_PORT_VARIABLES[profile]}
            if profile in COMPOSE_HTTPS_PORT_VARIABLES
            else set()
        )
        assert published and published <= moved, (profile, sorted(published - moved))


def test_env_example_documents_every_compose_variable() -> None:
    # every ${VAR:-default} of compose.yaml, with the same default, in .env.example
    lines = (ROOT / "compose.yaml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    defaults: dict[str, set[str]] = {}
    for name, value in re.findall(r"\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}", text):
        defaults.setdefault(name, set()).add(value)
    # one default each: a knob's defaults per app server are wsgistack/settings.py's
    assert {k: v for k, v in defaults.items() if len(v) > 1} == {}
    documented = {
        name: value.strip().strip('"')
        for name, value in re.findall(
            r"^#?([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), re.M
        )
    }
    missing = sorted(set(defaults) - set(documented))
    assert not missing, f".env.example lacks {missing}"
    differing = {k: (v, documented[k]) for k, v in defaults.items() if documented[k] not in v}
    assert not differing, f"compose.yaml default vs .env.example: {differing}"
