"""deploy/kubernetes/components/jobs, as each overlay that adds it renders: the
job queue's objects valid, and in agreement with its knobs (jobs.env), its
ladder (wsgistack/settings.py) and the images. The queue and its faults run
for real under compose (tests/integration/test_jobs.py); no cluster runs here
(docs/kubernetes.md)."""

from __future__ import annotations

import pytest

from tests.kubernetes.manifests import (
    TARGETS,
    component,
    container,
    container_env,
    cpus,
    derived_count,
    mebibytes,
    only,
    pod_spec,
    render,
)
from tests.kubernetes.test_manifests import IMAGE_UID
from wsgistack.settings import STOP_MARGIN, Settings

# the targets whose kustomization adds the component
JOBS_TARGETS = sorted(
    name
    for name, path in TARGETS.items()
    if "components/jobs" in (path / "kustomization.yaml").read_text()
)
SECRET = "secret:wsgistack-valkey/password"
HEARTBEAT = "fresh:$RUN_DIR/worker-heartbeat"
# a job process is recycled above 256 MB (deploy/celery/celeryconfig.py); the
# main process and one job's overshoot on top
JOB_PROCESS_MIB, WORKER_HEADROOM_MIB = 256, 256

pytestmark = pytest.mark.parametrize("target", JOBS_TARGETS)


def test_the_production_overlay_adds_the_job_queue(target: str) -> None:
    # the base alone runs the web stack only (its own tests: test_manifests.py)
    assert JOBS_TARGETS == ["overlays/production"]


def settings_of(target: str, of: str, name: str) -> Settings:
    return Settings.from_env(container_env(render(target), name, of))


def test_the_job_queue_renders_its_objects(target: str) -> None:
    objects = render(target)
    kinds = {(component(o), o["kind"]) for o in objects if component(o) in ("worker", "valkey")}
    assert kinds == {
        ("worker", "Deployment"),
        ("worker", "HorizontalPodAutoscaler"),
        ("worker", "PodDisruptionBudget"),
        ("worker", "NetworkPolicy"),
        ("valkey", "StatefulSet"),
        ("valkey", "Service"),
        ("valkey", "NetworkPolicy"),
    }


def test_everyone_reaches_valkey_at_its_service_with_the_secrets_password(target: str) -> None:
    objects = render(target)
    service = only(objects, "Service", "valkey")
    (port,) = service["spec"]["ports"]
    address = f"{service['metadata']['name']}:{port['port']}"
    users = (("web", "uwsgi"), ("worker", "worker"), ("valkey", "valkey"))
    for of, name in users:
        env = container_env(objects, name, of)
        assert env["VALKEY_ADDRESS"] == address, (of, env["VALKEY_ADDRESS"])
        # from the Secret, never written in a manifest
        assert env["VALKEY_PASSWORD"] == SECRET, of
        assert env["VALKEY_USER"]
    # the Service's port is the pod's, by name
    valkey = container(objects, "valkey", "valkey")
    assert {p["name"]: p["containerPort"] for p in valkey["ports"]} == {port["targetPort"]: 6379}
    labels = only(objects, "StatefulSet", "valkey")["spec"]["template"]["metadata"]["labels"]
    assert labels.items() >= service["spec"]["selector"].items()


def test_a_stopping_worker_has_its_stop_timeout_and_the_exit(target: str) -> None:
    objects = render(target)
    s = settings_of(target, "worker", "worker")
    spec = pod_spec(objects, "worker")
    assert spec["terminationGracePeriodSeconds"] == s.WORKER_STOP_GRACE_PERIOD
    assert spec["terminationGracePeriodSeconds"] - s.JOB_STOP_TIMEOUT == STOP_MARGIN
    # the preStop hook sends the stop signal itself and waits for the exit
    command = " ".join(
        container(objects, "worker", "worker")["lifecycle"]["preStop"]["exec"]["command"]
    )
    assert "kill -TERM 1" in command and "kill -0 1" in command, command
    # the ladder the worker gets from its knobs
    assert s.JOB_TIME_LIMIT < s.JOB_HARD_TIME_LIMIT < s.JOB_VISIBILITY_TIMEOUT


def test_probes_mean_something_for_a_worker_and_for_valkey(target: str) -> None:
    objects = render(target)
    worker = container(objects, "worker", "worker")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = worker[probe]["exec"]["command"]
        assert command[0] == "/usr/local/bin/healthcheck.py", probe
        assert command[1].startswith(HEARTBEAT), (probe, command)
        assert worker[probe].get("timeoutSeconds", 1) <= worker[probe]["periodSeconds"], probe
    # liveness gives a worker cut from Valkey minutes, not seconds
    liveness = worker["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 120
    valkey = container(objects, "valkey", "valkey")
    assert valkey["readinessProbe"]["exec"]["command"][1].startswith("valkey://")
    assert valkey["livenessProbe"]["tcpSocket"] == {"port": "valkey"}


def test_resources_hold_the_processes_the_knobs_make(target: str) -> None:
    objects = render(target)
    worker = container(objects, "worker", "worker")
    limits = worker["resources"]["limits"]
    processes = derived_count(
        "JOB_WORKERS", container_env(objects, "worker", "worker")["JOB_WORKERS"], limits.get("cpu")
    )
    assert processes == max(1, round(cpus(limits["cpu"])))
    assert mebibytes(limits["memory"]) >= processes * JOB_PROCESS_MIB + WORKER_HEADROOM_MIB
    valkey = container(objects, "valkey", "valkey")
    maxmemory = settings_of(target, "valkey", "valkey").VALKEY_MEMORY_MB
    assert mebibytes(valkey["resources"]["limits"]["memory"]) >= 1.5 * maxmemory
    for c in (worker, valkey):
        assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"]
        assert c["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
    # Valkey's file on a volume of its own, writable by the image's user
    statefulset = only(objects, "StatefulSet", "valkey")["spec"]
    assert statefulset["replicas"] == 1
    (claim,) = statefulset["volumeClaimTemplates"]
    mounts = {m["mountPath"]: m["name"] for m in valkey["volumeMounts"]}
    assert mounts["/data"] == claim["metadata"]["name"]
    pod = statefulset["template"]["spec"]["securityContext"]
    assert pod["runAsUser"] == pod["fsGroup"] == IMAGE_UID and pod["runAsNonRoot"] is True


def test_network_policies_let_only_the_app_and_the_workers_reach_valkey(target: str) -> None:
    objects = render(target)
    valkey = only(objects, "NetworkPolicy", "valkey")["spec"]
    assert valkey["egress"] == []
    (rule,) = valkey["ingress"]
    (source,) = rule["from"]
    expressions = {e["key"]: set(e["values"]) for e in source["podSelector"]["matchExpressions"]}
    assert expressions["app.kubernetes.io/component"] == {"web", "worker"}
    assert rule["ports"] == [{"protocol": "TCP", "port": "valkey"}]
    worker = only(objects, "NetworkPolicy", "worker")["spec"]
    assert worker["ingress"] == []
    assert {p["port"] for r in worker["egress"] for p in r["ports"]} == {6379, 53}


def test_workers_scale_on_their_own(target: str) -> None:
    objects = render(target)
    deployment = only(objects, "Deployment", "worker")
    hpa = only(objects, "HorizontalPodAutoscaler", "worker")["spec"]
    pdb = only(objects, "PodDisruptionBudget", "worker")["spec"]
    assert "replicas" not in deployment["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["minReplicas"] > pdb["maxUnavailable"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pdb["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
