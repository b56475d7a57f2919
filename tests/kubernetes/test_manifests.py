"""deploy/kubernetes: rendered by Kustomize, valid for the Kubernetes API, and
in agreement with the knobs and the timeout ladder of wsgistack/settings.py.

No cluster runs here: these tests prove what a manifest can prove (it renders,
the API server's schema accepts it, its numbers agree with each other and with
the servers' configs), and tests/integration/test_kubernetes_pod.py runs the
pod's two containers with plain `docker run`, wired as the pod wires them.
"""

from __future__ import annotations

import copy
import re

import kubernetes_validate
import pytest

from tests.kubernetes.manifests import (
    ROOT,
    SERVER,
    TARGETS,
    container,
    container_env,
    cpus,
    derived_count,
    knobs,
    mebibytes,
    only,
    pod_spec,
    render,
)
from wsgistack.configs import nginx
from wsgistack.settings import STOP_MARGIN, Settings

# the API versions validated against: the first release with native sidecar
# containers (restartPolicy: Always in initContainers) stable, and the newest
# whose schema the pinned kubernetes-validate ships (it ships them all: no
# network needed)
KUBERNETES_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
KINDS = {
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
}
# memory a uWSGI container needs beyond its workers' recycling threshold: the
# master (15 MB measured in the image) and one request's overshoot of a worker
# (reload-on-rss is checked after each request)
UWSGI_MEMORY_HEADROOM_MIB = 64
# the images' user (Dockerfile: ARG UID=1000, ARG GID=1000)
IMAGE_UID = int(re.search(r"^ARG UID=(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)[1])

pytestmark = pytest.mark.parametrize("target", sorted(TARGETS))


def settings_of(target: str) -> Settings:
    """The settings the containers' entrypoint renders from (the ConfigMap)."""
    return Settings.from_env(knobs(render(target)), server=SERVER)


def prestop_sleep(nginx: dict) -> int:
    command = " ".join(nginx["lifecycle"]["preStop"]["exec"]["command"])
    found = re.search(r"\bsleep (\d+)\b", command)
    assert found, command
    return int(found[1])


def test_kustomize_renders_every_object(target: str) -> None:
    objects = render(target)
    assert {o["kind"] for o in objects} == KINDS
    names = {o["metadata"]["name"] for o in objects if o["kind"] != "ConfigMap"}
    assert names == {"wsgistack"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_objects_validate_against_the_kubernetes_api_schema(target: str, version: str) -> None:
    for obj in render(target):
        # strict: an unknown or misspelt field is an error, as `kubectl apply
        # --validate=strict` makes it
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_refuses_what_the_api_server_would(target: str) -> None:
    deployment = only(render(target), "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "55s"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSIONS[-1], strict=True)


def test_grace_period_covers_the_prestop_sleep_and_the_ladder(target: str) -> None:
    objects = render(target)
    s = settings_of(target)
    spec = pod_spec(objects)
    sleep = prestop_sleep(container(objects, "nginx"))
    # the sleep, then nginx drains (requests up to the proxy timeout), then
    # uWSGI stops with STOP_MARGIN left: the compose stop_grace_period plus the sleep
    assert spec["terminationGracePeriodSeconds"] == sleep + s.STOP_GRACE_PERIOD
    assert spec["terminationGracePeriodSeconds"] - sleep - s.PROXY_TIMEOUT == STOP_MARGIN
    # long enough for endpoint removal to reach kube-proxy and ingress controllers
    assert 5 <= sleep < s.REQUEST_TIMEOUT


def test_uwsgi_stops_after_nginx(target: str) -> None:
    spec = pod_spec(render(target))
    # a native sidecar: started before the containers, stopped after them
    sidecars = {c["name"]: c for c in spec.get("initContainers", [])}
    assert sidecars["uwsgi"]["restartPolicy"] == "Always"
    # nginx's exporter too, so that it reports nginx's drain
    assert sidecars["nginx-exporter"]["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["nginx"]
    # nginx's preStop quits gracefully and waits until nginx has gone
    prestop = container(render(target), "nginx")["lifecycle"]["preStop"]
    command = " ".join(prestop["exec"]["command"])
    assert "-s quit" in command and "nginx.pid" in command


def test_probes_follow_the_health_contract_and_the_ladder(target: str) -> None:
    objects = render(target)
    s = settings_of(target)
    nginx = container(objects, "nginx")
    for probe in ("startupProbe", "livenessProbe"):
        # nginx's own answer: never waits for busy workers
        assert nginx[probe]["httpGet"] == {"path": "/livez", "port": "http"}
    readiness = nginx["readinessProbe"]
    assert readiness["httpGet"] == {"path": "/readyz", "port": "http"}
    # a probe is not a request that may run for the whole request timeout
    assert readiness["timeoutSeconds"] < s.REQUEST_TIMEOUT
    assert readiness["timeoutSeconds"] <= readiness["periodSeconds"]
    liveness = nginx["livenessProbe"]
    assert liveness["timeoutSeconds"] <= liveness["periodSeconds"]
    # the health paths are answered on the port the container declares
    assert {p["name"]: p["containerPort"] for p in nginx["ports"]} == {"http": 8080}
    # no probe on uWSGI: nginx's /readyz goes through it (deployment.yaml says why)
    uwsgi = container(objects, "uwsgi")
    assert not {"livenessProbe", "readinessProbe", "startupProbe"} & set(uwsgi)


def test_memory_limit_lets_uwsgi_recycle_a_worker_first(target: str) -> None:
    objects = render(target)
    s = settings_of(target)
    uwsgi = container(objects, "uwsgi")
    limits, requests = uwsgi["resources"]["limits"], uwsgi["resources"]["requests"]
    processes = derived_count("WSGI_PROCESSES", knobs(objects)["WSGI_PROCESSES"], limits.get("cpu"))
    assert s.RELOAD_ON_RSS_MB > 0, "without reload-on-rss the kernel's OOM killer is the limit"
    needed = processes * s.RELOAD_ON_RSS_MB + UWSGI_MEMORY_HEADROOM_MIB
    assert mebibytes(limits["memory"]) >= needed, (limits["memory"], needed)
    for name in ("uwsgi", "nginx"):
        resources = container(objects, name)["resources"]
        # memory is not overcommitted; CPU requests stay within the limits
        assert resources["requests"]["memory"] == resources["limits"]["memory"], name
        assert cpus(resources["requests"]["cpu"]) <= cpus(resources["limits"]["cpu"]), name
    assert cpus(requests["cpu"]) > 0


def test_uwsgi_runs_processes_of_one_thread(target: str) -> None:
    """The shape the entrypoint resolves from the ConfigMap: one thread per
    uWSGI process, so that harakiri cuts a stuck request under traffic
    (docs/nginx-uwsgi.md); nginx's limits are rendered from the same knobs."""
    s = settings_of(target)
    assert (s.WSGI_PROCESSES, s.WSGI_THREADS) == (8, 1)
    objects = render(target)
    assert container_env(objects, "uwsgi") == container_env(objects, "nginx") | {
        "UWSGI_SOCKET": container_env(objects, "uwsgi")["UWSGI_SOCKET"]
    }


def test_worker_counts_follow_the_cpu_limits(target: str) -> None:
    objects = render(target)
    for name, knob in (("uwsgi", "WSGI_PROCESSES"), ("nginx", "NGINX_WORKERS")):
        env = container_env(objects, name)
        cpu_limit = container(objects, name)["resources"]["limits"].get("cpu")
        # empty: uWSGI's own default, or the quota (which must then exist)
        assert derived_count(knob, env[knob], cpu_limit) >= 1


def test_the_socket_is_shared_by_the_two_containers_only(target: str) -> None:
    objects = render(target)
    spec = pod_spec(objects)
    volumes = {v["name"]: v for v in spec["volumes"]}
    sockets = set()
    for name in ("uwsgi", "nginx"):
        path = container_env(objects, name)["UWSGI_SOCKET"]
        assert path.startswith("/"), f"{name}: the socket is a path, not host:port"
        mounts = {m["mountPath"]: m["name"] for m in container(objects, name)["volumeMounts"]}
        folder = path.rsplit("/", 1)[0]
        assert folder in mounts, (name, path, mounts)
        assert "emptyDir" in volumes[mounts[folder]]
        sockets.add((path, mounts[folder]))
        # and nginx's config renders it as its unix: upstream
        upstream = nginx.values(Settings.from_env(container_env(objects, name)))["UWSGI_UPSTREAM"]
        assert upstream == f"unix:{path}"
    assert len(sockets) == 1, sockets
    # the uwsgi container's only port is its metrics (the network policy's)
    assert [p["name"] for p in container(objects, "uwsgi")["ports"]] == ["app-metrics"]


def test_security_context_matches_the_images(target: str) -> None:
    objects = render(target)
    spec = pod_spec(objects)
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == IMAGE_UID != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for name in ("uwsgi", "nginx", "nginx-exporter"):
        c = container(objects, name)
        assert c["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        # the one writable place: RUN_DIR (/tmp/wsgistack) on its own emptyDir
        tmp = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}["/tmp"]
        assert "emptyDir" in volumes[tmp], name
        assert Settings.from_env(container_env(objects, name)).RUN_DIR.startswith("/tmp/")


def test_rollout_budget_and_autoscaler_fit_together(target: str) -> None:
    objects = render(target)
    deployment = only(objects, "Deployment")
    hpa, pdb = only(objects, "HorizontalPodAutoscaler"), only(objects, "PodDisruptionBudget")
    # the autoscaler owns the replica count
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    # a drain or a rollout always leaves a pod serving
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["maxUnavailable"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pods = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == pods
    assert only(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == pods
    service = only(objects, "Service")
    assert service["spec"]["selector"] == pods
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= pods.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_network_policy_admits_http_only_and_sends_nothing(target: str) -> None:
    """http from the clients, the metrics ports from the monitoring namespace
    only, and nothing else: not nginx's status port, not the uwsgi socket."""
    objects = render(target)
    policy = only(objects, "NetworkPolicy")["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["egress"] == []
    http, metrics = policy["ingress"]
    assert http["ports"] == [{"protocol": "TCP", "port": "http"}]
    assert metrics["ports"] == [
        {"protocol": "TCP", "port": "app-metrics"},
        {"protocol": "TCP", "port": "nginx-metrics"},
    ]
    assert metrics["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    # the named ports are the metrics endpoints' own
    env = container_env(objects, "uwsgi")
    settings = Settings.from_env(env)
    ports = {
        p["name"]: p["containerPort"]
        for c in ("uwsgi", "nginx-exporter")
        for p in container(objects, c)["ports"]
    }
    assert ports == {"app-metrics": settings.METRICS_PORT, "nginx-metrics": 9113}
    scrape = " ".join(container(objects, "nginx-exporter")["args"])
    assert f"127.0.0.1:{settings.STATUS_PORT}/stub_status" in scrape
