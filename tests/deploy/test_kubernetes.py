"""deploy/k8s renders with the real kustomize, validates against the Kubernetes schemas and agrees
with the settings, ports and commands the services actually use."""

from __future__ import annotations

import ipaddress
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, latest_version

from shared.config import Settings
from shared.kafka.topics import topic_layout
from tests.deploy.manifests import (
    KAFKA_SECURITY_SETTINGS,
    MIGRATE_COMMAND,
    SECRET_NAME,
    SECRET_SETTINGS,
    SERVICE_PORT_SETTING,
    commented_settings,
    component_of,
    containers,
    env_name,
    of_kind,
    render,
    service_command,
    setting_fields,
    settings_env,
    settings_from_env,
)
from wf.stack import SERVICES

# The first test may build kustomize with Go (about two minutes once per machine).
pytestmark = pytest.mark.timeout(900)

TARGETS = ["base", "overlays/example"]
# The oldest Kubernetes minor still widely run, and the newest the schemas know.
K8S_VERSIONS = ["1.30", latest_version()]
CUSTOM_KINDS = {("kafka.strimzi.io/v1", "KafkaTopic"), ("keda.sh/v1alpha1", "ScaledObject")}
# settings.env lines that deliberately differ from the code defaults, for containers.
CONTAINER_OVERRIDES = {"WF_ENV", "WF_KAFKA_BOOTSTRAP", "WF_API_HOST", "WF_METRICS_HOST"}


@pytest.fixture(params=TARGETS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def test_built_in_objects_validate_against_the_kubernetes_schemas(objects):
    custom = []
    for obj in objects:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except SchemaNotFoundError:
                custom.append(obj)
                break
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} (k8s {version}): {path}: {exc.message}")
    for obj in custom:
        assert (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS, f"unexpected kind {obj['kind']}"
        assert obj["metadata"]["name"]
        assert isinstance(obj["spec"], dict)


def test_every_service_has_a_hardened_deployment_with_probes_on_its_metrics_port(objects):
    deployments = dict(containers(objects))
    assert set(deployments) == set(SERVICES)
    for name, container in deployments.items():
        assert container.spec["command"] == service_command(name)
        settings = settings_from_env(container.env)
        port = getattr(settings, SERVICE_PORT_SETTING[name])
        metrics_port = settings.api_metrics_port if name == "api" else port
        ports = [p["containerPort"] for p in container.spec["ports"]]
        assert ports == ([port, metrics_port] if name == "api" else [port]), name
        # Liveness and startup ask whether the loops make progress, readiness whether the
        # dependencies answer: a database outage must not restart pods.
        expected = {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
        for probe, path in expected.items():
            check = container.spec[probe]["httpGet"]
            assert (check["path"], container.port(check["port"])) == (path, metrics_port), (name, probe)
        annotations = container.owner["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (
            str(metrics_port),
            "/metrics",
        )
        # Listening on loopback only would make every probe fail.
        assert settings.api_host == settings.metrics_host == "0.0.0.0"

        pod, security = container.pod, container.spec["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        resources = container.spec["resources"]
        assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}, name


def test_services_route_to_the_ports_the_processes_listen_on(objects):
    deployments = dict(containers(objects))
    for service in of_kind(objects, "Service").values():
        container = deployments[component_of(service)]
        selector = service["spec"]["selector"]
        labels = container.owner["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        for port in service["spec"]["ports"]:
            assert container.port(port["targetPort"]) in [p["containerPort"] for p in container.spec["ports"]]
    # The API serves the product; it must be reachable through a Service.
    assert "workflows-api" in of_kind(objects, "Service")


def test_grace_periods_let_in_flight_work_finish_or_be_handed_back(objects):
    for name, container in containers(objects):
        settings = settings_from_env(container.env)
        pre_stop = container.spec.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        sleep = int(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
        # Drain, then at least 10 s to leave the consumer group, flush producers and close pools.
        assert container.pod["terminationGracePeriodSeconds"] >= sleep + settings.shutdown_grace_s + 10, name
        if name == "executor":
            longest_action = max(settings.upload_timeout_s, settings.http_timeout_s, settings.smtp_timeout_s)
            assert settings.shutdown_grace_s > longest_action
            # A run not finished by then is resumed by another executor once its lease lapses.
            assert settings.executor_lease_s > 0


def test_every_setting_comes_from_the_config_map_or_the_secret(objects):
    config_maps = of_kind(objects, "ConfigMap")
    assert len(config_maps) == 1
    data = next(iter(config_maps.values()))["data"]
    documented = set(data) | commented_settings() | {env_name(f) for f in SECRET_SETTINGS}
    missing = {env_name(f) for f in setting_fields()} - documented
    assert not missing, f"add to deploy/k8s/base/settings.env (and docs/deployment.md): {sorted(missing)}"
    unknown = {
        k
        for k in data | dict.fromkeys(commented_settings())
        if k.removeprefix("WF_").lower() not in setting_fields() and k not in KAFKA_SECURITY_SETTINGS
    }
    assert not unknown, f"not settings of shared/config.py: {sorted(unknown)}"
    assert not {env_name(f) for f in SECRET_SETTINGS} & set(data), "secrets belong in the Secret"
    # No secret values are committed: the Secret is created per cluster, and every pod references it.
    assert not of_kind(objects, "Secret")
    for kind in ("Deployment", "Job"):
        for name, container in containers(objects, kind):
            refs = [s["secretRef"]["name"] for s in container.spec["envFrom"] if "secretRef" in s]
            assert refs == [SECRET_NAME], name
            # The values parse, and production mode accepts them once the Secret is there.
            settings_from_env(container.env)


def test_config_map_values_are_the_code_defaults_unless_containers_need_otherwise():
    env = settings_env()
    defaults = Settings.model_fields
    for key, value in env.items():
        if key in CONTAINER_OVERRIDES:
            continue
        default = defaults[key.removeprefix("WF_").lower()].default
        parsed = getattr(settings_from_env({key: value}), key.removeprefix("WF_").lower())
        assert parsed == default, f"{key}={value} in settings.env, but the code default is {default!r}"


def test_the_migration_job_runs_wf_migrate():
    jobs = dict(containers(render("base"), "Job"))
    assert jobs["migrate"].spec["command"] == MIGRATE_COMMAND
    assert jobs["migrate"].pod["restartPolicy"] == "Never"


def test_the_pre_rollout_step_applies_everything_the_migration_job_needs():
    """docs/deployment.md's first step, `kubectl apply -l workflows/pre-rollout=true`, must create
    the Namespace, the (hashed) settings ConfigMap and the ServiceAccount the Job uses, or the Job's
    pod waits for them until its deadline (the first-install failure)."""
    objects = render("overlays/example")
    selected = [o for o in objects if o["metadata"].get("labels", {}).get("workflows/pre-rollout") == "true"]
    by_kind = {(o["kind"], o["metadata"]["name"]) for o in selected}
    job = dict(containers(objects, "Job"))["migrate"]
    config_maps = {s["configMapRef"]["name"] for s in job.spec["envFrom"] if "configMapRef" in s}
    assert config_maps
    for name in config_maps:
        assert ("ConfigMap", name) in by_kind
    assert ("ServiceAccount", job.pod["serviceAccountName"]) in by_kind
    assert ("Job", job.owner["metadata"]["name"]) in by_kind
    namespaces = of_kind(objects, "Namespace")
    assert set(namespaces) == {o["metadata"]["namespace"] for o in selected if o["kind"] != "Namespace"}
    assert all(("Namespace", n) in by_kind for n in namespaces)
    # Nothing else: the services roll only after the Job has finished.
    assert {kind for kind, _ in by_kind} == {"Namespace", "ConfigMap", "ServiceAccount", "Job"}


def test_every_service_has_a_disruption_budget(objects):
    budgets = of_kind(objects, "PodDisruptionBudget")
    for name, container in containers(objects):
        labels = container.owner["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets.values() if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, name


def _scaling(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    targets: dict[str, list[dict[str, Any]]] = {}
    for kind in ("HorizontalPodAutoscaler", "ScaledObject"):
        for obj in of_kind(objects, kind).values():
            targets.setdefault(obj["spec"]["scaleTargetRef"]["name"], []).append(obj)
    return targets


def test_base_scales_consumers_on_cpu_and_the_overlay_on_kafka_lag():
    base = _scaling(render("base"))
    overlay_objects = render("overlays/example")
    overlay = _scaling(overlay_objects)
    settings = settings_from_env(dict(containers(overlay_objects))["executor"].env)
    consumed = {
        "dispatcher": (settings.topic_events, settings.partitions_events),
        "executor": (settings.topic_runs, settings.partitions_runs),
    }
    for name, (topic, partitions) in consumed.items():
        deployment = f"workflows-{name}"
        assert [o["kind"] for o in base[deployment]] == ["HorizontalPodAutoscaler"]
        # Exactly one autoscaler per Deployment: a ScaledObject next to an HPA would fight it.
        assert [o["kind"] for o in overlay[deployment]] == ["ScaledObject"]
        scaled = overlay[deployment][0]["spec"]
        kafka = next(t for t in scaled["triggers"] if t["type"] == "kafka")["metadata"]
        assert kafka["consumerGroup"] == f"{settings.consumer_group_prefix}-{name}"
        assert kafka["topic"] == topic
        assert kafka["bootstrapServersFromEnv"] == "WF_KAFKA_BOOTSTRAP"
        assert scaled["maxReplicaCount"] <= partitions
        assert base[deployment][0]["spec"]["maxReplicas"] <= partitions
        assert any(t["type"] == "cpu" for t in scaled["triggers"])


def test_strimzi_topics_have_the_partitions_the_services_expect():
    objects = render("overlays/example")
    topics = {
        t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(objects, "KafkaTopic").values()
    }
    settings = settings_from_env(dict(containers(objects))["executor"].env)
    assert topics == topic_layout(settings)
    # With managed topics the services must not create them.
    assert settings.kafka_create_topics is False
    assert not of_kind(render("base"), "KafkaTopic")


def _allowed(policy: dict[str, Any], address: str, port: int) -> bool:
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"]["egress"]:
        ports = [p["port"] for p in rule.get("ports", [])]
        if ports and port not in ports:
            continue
        peers = rule.get("to")
        if not peers:
            return True
        for peer in peers:
            block = peer.get("ipBlock")
            if block is None or ip.version != ipaddress.ip_network(block["cidr"]).version:
                continue
            if ip in ipaddress.ip_network(block["cidr"]) and not any(
                ip in ipaddress.ip_network(e)
                for e in block.get("except", [])
                if ipaddress.ip_network(e).version == ip.version
            ):
                return True
    return False


def test_executor_may_reach_the_internet_but_not_private_ranges():
    objects = render("overlays/example")
    labels = dict(containers(objects))["executor"].owner["spec"]["template"]["metadata"]["labels"]
    selecting = [
        p
        for p in of_kind(objects, "NetworkPolicy").values()
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
    ]
    egress = [p for p in selecting if "Egress" in p["spec"]["policyTypes"] and p["spec"].get("egress")]
    policy = {"spec": {"egress": [rule for p in egress for rule in p["spec"]["egress"]]}}
    assert "workflows-executor-egress" in {p["metadata"]["name"] for p in egress}
    for public in ("8.8.8.8", "52.95.110.1"):
        assert _allowed(policy, public, 443), public
    # No IPv6 egress in the base: ::/0 would open pods with global IPv6 addresses.
    assert not _allowed(policy, "2606:4700:4700::1111", 443)
    for private in (
        "10.1.2.3",
        "172.16.5.4",
        "172.31.255.1",
        "192.168.1.10",
        "169.254.169.254",
        "100.64.0.1",
        "127.0.0.1",
        "fd00:ec2::254",
        "fe80::1",
        "198.18.0.1",
        "240.0.0.1",
        "192.0.0.8",
        "224.0.0.251",
    ):
        for port in (80, 443, 22):
            assert not _allowed(policy, private, port), (private, port)
    dns = [r for r in policy["spec"]["egress"] if {p["port"] for p in r.get("ports", [])} == {53}]
    assert dns
    assert {p["protocol"] for p in dns[0]["ports"]} == {"UDP", "TCP"}
    # The example's managed PostgreSQL (a private address) is reachable, on its port only.
    assert _allowed(policy, "10.20.30.40", 5432)
    assert not _allowed(policy, "10.20.30.40", 22)
