"""The Kubernetes manifests as the cluster would get them: `kubectl kustomize`
of the base and of each overlay, parsed into objects, and the pieces the tests
read (the pod, its containers, the knobs of its ConfigMap)."""

from __future__ import annotations

import math
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from wsgistack.settings import KNOBS

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
# the base and every overlay, by the name the tests are parametrized with
TARGETS = {
    "base": KUBERNETES / "base",
    **{f"overlays/{p.name}": p for p in sorted((KUBERNETES / "overlays").iterdir())},
}
KUBECTL = shutil.which("kubectl")
# the app server the pod's images configure (both render uWSGI's stack)
SERVER = "uwsgi"


def kubectl_problem() -> str | None:
    if KUBECTL is None:
        return "no kubectl on PATH: it renders the Kustomize manifests (kubectl kustomize)"
    return None


@cache
def render(target: str) -> tuple[dict, ...]:
    """``kubectl kustomize`` of a target, as a tuple of objects."""
    problem = kubectl_problem()
    if problem:
        pytest.skip(problem)
    result = subprocess.run(
        [KUBECTL, "kustomize", str(TARGETS[target])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {target} exited {result.returncode}:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def only(objects: tuple[dict, ...], kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


def pod_spec(objects: tuple[dict, ...]) -> dict:
    return only(objects, "Deployment")["spec"]["template"]["spec"]


def container(objects: tuple[dict, ...], name: str) -> dict:
    """A container of the pod by name, init (sidecar) containers included."""
    spec = pod_spec(objects)
    for c in spec.get("initContainers", []) + spec["containers"]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name}")


def knobs(objects: tuple[dict, ...]) -> dict[str, str]:
    """The ConfigMap every container reads its knobs from (envFrom)."""
    return dict(only(objects, "ConfigMap")["data"])


def container_env(objects: tuple[dict, ...], name: str) -> dict[str, str]:
    """What a container's environment gets from the manifests: the ConfigMap,
    then its own `env` (which wins, as in Kubernetes)."""
    c = container(objects, name)
    env: dict[str, str] = {}
    configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    for source in c.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    env.update({e["name"]: e["value"] for e in c.get("env", [])})
    return env


def cpus(quantity: str) -> float:
    """A CPU quantity ("500m", "2") in CPUs."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def mebibytes(quantity: str) -> float:
    """A memory quantity ("1Gi", "768Mi", "512M") in MiB."""
    units = {
        "Ki": 1 / 1024,
        "Mi": 1,
        "Gi": 1024,
        "k": 1e3 / 2**20,
        "M": 1e6 / 2**20,
        "G": 1e9 / 2**20,
    }
    for suffix in sorted(units, key=len, reverse=True):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * units[suffix]
    return int(quantity) / 2**20


def derived_count(knob: str, value: str, cpu_limit: str | None) -> int:
    """A worker count as the entrypoint of the pod's images (both configure
    uWSGI's stack) resolves it: the knob's value; empty, uWSGI's own default
    where the knob has one (wsgistack/settings.py), else the container's CPU
    limit rounded up (wsgistack/cpus.py reads it back from the cgroup quota)."""
    if value.strip():
        return int(value)
    own = next(k for k in KNOBS if k.env == knob).servers.get(SERVER)
    if own is not None:
        return int(own)
    assert cpu_limit, f"{knob} empty needs a CPU limit to follow"
    return max(1, math.ceil(cpus(cpu_limit)))
