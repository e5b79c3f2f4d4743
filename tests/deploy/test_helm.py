"""deploy/helm/workflows renders with the real Helm, validates as a cluster would (built-in kinds
against the Kubernetes schemas, custom resources against their CRDs) and keeps its promises:
migrations before the services, probes with the right meaning, the connection budget, and network
policies equal to the egress guard."""

from __future__ import annotations

import ipaddress
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, Version, all_versions

from services.executor.egress import blocked_cidrs
from shared.db.budget import connections_per_pod
from tests.deploy.crds import validate_custom_resource
from tests.deploy.manifests import (
    CHART,
    CHART_EXAMPLE,
    KAFKA_SECURITY_SETTINGS,
    component_of,
    containers,
    helm,
    helm_template,
    of_kind,
    render,
    settings_from_env,
)
from wf.stack import SERVICES

# The first test may build Helm with Go (a few minutes once per machine).
pytestmark = pytest.mark.timeout(1500)

# The three newest Kubernetes minors kubernetes-validate knows.
K8S_VERSIONS = sorted(all_versions(), key=Version)[-3:]
CUSTOM_KINDS = {
    "ScaledObject",
    "TriggerAuthentication",
    "KafkaTopic",
    "KafkaUser",
    "ServiceMonitor",
    "PrometheusRule",
}

RENDERS = {
    "chart-defaults": lambda: helm_template(),
    "chart-example": lambda: helm_template(CHART_EXAMPLE),
    "kustomize-base": lambda: render("base"),
    "kustomize-example": lambda: render("overlays/example"),
}


@pytest.fixture(params=sorted(RENDERS))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return RENDERS[request.param]()


@pytest.fixture(params=["defaults", "example"])
def chart(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return helm_template() if request.param == "defaults" else helm_template(CHART_EXAMPLE)


def test_helm_lint_passes_for_the_defaults_and_the_example():
    for args in ([], ["--values", str(CHART_EXAMPLE)]):
        result = helm("lint", "--strict", str(CHART), *args)
        assert result.returncode == 0, result.stdout + result.stderr


def test_values_outside_their_choices_are_refused_before_anything_is_applied():
    for assignment in (
        "kafka.securityProtocol=SASL",
        "kafka.sasl.mechanism=SCRAM-SHA-1",
        "settings.LOG_LEVEL=x",
    ):
        result = helm("template", "workflows", str(CHART), "--set", assignment)
        assert result.returncode != 0, assignment
        assert "schema" in result.stderr, result.stderr


def test_every_object_validates_as_the_api_server_would(rendered):
    """Built-in kinds: kubernetes-validate, strict, the three newest minors. Custom resources: the
    upstream CRD's schema (unknown fields are errors)."""
    seen_custom = set()
    for obj in rendered:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CUSTOM_KINDS:
            seen_custom.add(obj["kind"])
            try:
                validate_custom_resource(obj)
            except jsonschema.ValidationError as exc:
                pytest.fail(f"{name}: {'.'.join(map(str, exc.absolute_path))}: {exc.message}")
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except SchemaNotFoundError:
                pytest.fail(f"{name}: {obj['apiVersion']} is not served by Kubernetes {version}")
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                pytest.fail(f"{name} (k8s {version}): {path}: {exc.message}")


def test_the_example_exercises_every_custom_kind():
    kinds = {o["kind"] for o in helm_template(CHART_EXAMPLE)}
    assert kinds >= CUSTOM_KINDS


def test_a_custom_resource_with_an_unknown_field_is_rejected():
    scaled = of_kind(helm_template(CHART_EXAMPLE), "ScaledObject")["workflows-executor"]
    scaled["spec"]["maxReplicas"] = 3  # HPA's name, not KEDA's (maxReplicaCount)
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(scaled)
    topic = next(iter(of_kind(helm_template(CHART_EXAMPLE), "KafkaTopic").values()))
    topic["apiVersion"] = "kafka.strimzi.io/v1beta2"  # Strimzi 1.x serves only v1
    with pytest.raises(KeyError):
        validate_custom_resource(topic)


def test_migrations_run_as_a_hook_before_install_and_upgrade(chart):
    (job,) = of_kind(chart, "Job").values()
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["wf", "migrate"]
    # A pre-install hook runs before the release's other objects exist: it must not need the
    # ConfigMap (the first-install failure of the kustomize instructions) nor a ServiceAccount.
    assert all("configMapRef" not in source for source in container.get("envFrom", []))
    assert "serviceAccountName" not in job["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    config_map = next(iter(of_kind(chart, "ConfigMap").values()))["data"]
    pools = {"WF_DB_POOL_SIZE", "WF_DB_MAX_OVERFLOW"}  # one connection is enough for migrations
    assert {k: v for k, v in env.items() if k in config_map and k not in pools} == {
        k: v for k, v in config_map.items() if k not in pools
    }
    assert len(env) == len(container["env"]), "an environment variable is set twice"
    assert "WF_DATABASE_URL" in env


def test_probes_mean_started_alive_and_ready_on_the_metrics_port(chart):
    deployments = dict(containers(chart))
    assert set(deployments) == set(SERVICES)
    for name, container in deployments.items():
        settings = settings_from_env(container.env)
        metrics_port = settings.api_metrics_port if name == "api" else getattr(settings, f"{name}_port")
        assert container.port("metrics") == metrics_port
        paths = {
            p: container.spec[p]["httpGet"]["path"]
            for p in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert paths == {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}
        for probe in paths:
            assert container.spec[probe]["httpGet"]["port"] == "metrics"
    # The API's metrics are not on its public port.
    api = deployments["api"]
    assert api.port("http") != api.port("metrics")
    service_ports = {
        p["name"]: p["targetPort"] for p in of_kind(chart, "Service")["workflows-api"]["spec"]["ports"]
    }
    assert service_ports == {"http": "http", "metrics": "metrics"}


def test_pods_spread_over_zones_and_nodes_and_have_budgets(rendered):
    budgets = of_kind(rendered, "PodDisruptionBudget")
    for name, container in containers(rendered):
        spread = container.pod["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        labels = container.owner["spec"]["template"]["metadata"]["labels"]
        for constraint in spread:
            assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
        matching = [
            b for b in budgets.values() if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, name


def _max_replicas(objects: list[dict[str, Any]]) -> dict[str, int]:
    result = {}
    scalers = {o["spec"]["scaleTargetRef"]["name"]: o for o in of_kind(objects, "ScaledObject").values()}
    hpas = {
        o["spec"]["scaleTargetRef"]["name"]: o for o in of_kind(objects, "HorizontalPodAutoscaler").values()
    }
    for name, deployment in of_kind(objects, "Deployment").items():
        if name in scalers:
            result[name] = scalers[name]["spec"]["maxReplicaCount"]
        elif name in hpas:
            result[name] = hpas[name]["spec"]["maxReplicas"]
        else:
            result[name] = deployment["spec"]["replicas"]
    return result


def _budget(values: dict[str, Any], objects: list[dict[str, Any]]) -> int:
    replicas = _max_replicas(objects)
    total = int(values["reservedConnections"])
    for name, container in containers(objects):
        settings = settings_from_env(container.env)
        total += replicas[container.owner["metadata"]["name"]] * connections_per_pod(name, settings)
    return total


@pytest.mark.parametrize(
    ("values_file", "max_connections", "reserved"), [(None, 100, 10), (CHART_EXAMPLE, 400, 10)]
)
def test_connections_at_maximum_replicas_stay_within_max_connections(values_file, max_connections, reserved):
    objects = helm_template(values_file) if values_file else helm_template()
    total = _budget({"reservedConnections": reserved}, objects)
    assert total <= max_connections, (
        f"{total} connections at maximum replicas > max_connections {max_connections}"
    )


def test_the_chart_refuses_a_budget_over_max_connections():
    result = helm("template", "workflows", str(CHART), "--set", "executor.autoscaling.maxReplicas=12")
    assert result.returncode != 0
    assert "connection budget exceeded" in result.stderr
    # The same values by the formula (shared/db/budget.py) are indeed over.
    objects = helm_template(sets=("executor.autoscaling.maxReplicas=12", "database.maxConnections=1000"))
    assert _budget({"reservedConnections": 10}, objects) > 100


def test_prepared_statements_can_be_turned_off_for_pgbouncer():
    example = dict(containers(helm_template(CHART_EXAMPLE)))
    for name, container in example.items():
        assert settings_from_env(container.env).db_prepared_statements is False, name
    defaults = dict(containers(helm_template()))
    assert all(settings_from_env(c.env).db_prepared_statements for c in defaults.values())


def _executor_excepts(policy: dict[str, Any], version: int) -> list[str]:
    for rule in policy["spec"]["egress"]:
        for peer in rule.get("to", []):
            block = peer.get("ipBlock")
            if block and block["cidr"] == ("0.0.0.0/0" if version == 4 else "::/0"):
                return list(block.get("except", []))
    return []


def test_executor_egress_exceptions_equal_the_egress_guards_blocked_ranges():
    defaults = of_kind(helm_template(), "NetworkPolicy")["workflows-executor"]
    assert _executor_excepts(defaults, 4) == blocked_cidrs(4)
    # IPv6 only when asked for, and then excepting the guard's ranges and the cluster's own.
    assert _executor_excepts(defaults, 6) == []
    example = of_kind(helm_template(CHART_EXAMPLE), "NetworkPolicy")["workflows-executor"]
    assert _executor_excepts(example, 4) == blocked_cidrs(4)
    assert _executor_excepts(example, 6) == [*blocked_cidrs(6), "2001:db8:42::/56"]
    for target in ("base", "overlays/example"):
        kustomized = of_kind(render(target), "NetworkPolicy")["workflows-executor-egress"]
        assert _executor_excepts(kustomized, 4) == blocked_cidrs(4), target
        # No IPv6 rule: ::/0 would open pods and Services with global IPv6 addresses.
        assert _executor_excepts(kustomized, 6) == [], target


def _peers_allow(rule: dict[str, Any], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    for peer in rule.get("to", []):
        block = peer.get("ipBlock")
        if block is None or ip.version != ipaddress.ip_network(block["cidr"]).version:
            continue
        excepts = [ipaddress.ip_network(e) for e in block.get("except", [])]
        if ip in ipaddress.ip_network(block["cidr"]) and not any(ip in e for e in excepts):
            return True
    return False


def _policies_for(objects: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        p
        for p in of_kind(objects, "NetworkPolicy").values()
        if p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        and not p["spec"]["podSelector"].get("matchExpressions")
    ]


def test_network_policies_deny_by_default_and_name_every_destination(rendered):
    """The same for the chart and kustomize: the union of the policies selecting each pod."""
    policies = of_kind(rendered, "NetworkPolicy")
    assert any(
        p["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]} for p in policies.values()
    )
    pods = [*containers(rendered), *containers(rendered, "Job")]
    assert {name for name, _ in pods} == {*SERVICES, "migrate"}
    for name, container in pods:
        selecting = _policies_for(rendered, container.owner["spec"]["template"]["metadata"]["labels"])
        egress = [rule for p in selecting for rule in p["spec"].get("egress", [])]
        ingress = [rule for p in selecting for rule in p["spec"].get("ingress", [])]
        for rule in egress:
            # A rule without "to" would allow its ports to every address.
            assert rule.get("to"), (name, rule)
        for rule in ingress:
            assert rule.get("from"), (name, rule)
        ports = {p["port"] for rule in egress for p in rule.get("ports", [])}
        assert {53, 5432} <= ports, name
        ingress_ports = {p["port"] for rule in ingress for p in rule["ports"]}
        container_ports = {p["name"] for p in container.spec.get("ports", [])}
        if name == "migrate":
            assert not container_ports & ingress_ports, "nothing may connect to the migration Job"
            continue
        assert 9092 in ports or 9093 in ports, name
        assert ingress_ports == ({"http", "metrics"} if name == "api" else {"metrics"}), name
        internet = [r for r in egress if not r.get("ports")]
        assert bool(internet) == (name == "executor"), name
    (executor,) = [c for n, c in pods if n == "executor"]
    selecting = _policies_for(rendered, executor.owner["spec"]["template"]["metadata"]["labels"])
    internet = [r for p in selecting for r in p["spec"].get("egress", []) if not r.get("ports")]
    for public in ("8.8.8.8", "52.95.110.1"):
        assert any(_peers_allow(r, public) for r in internet), public
    for private in (
        "10.1.2.3",
        "172.31.255.1",
        "192.168.1.10",
        "169.254.169.254",
        "100.64.0.1",
        "127.0.0.1",
        "198.18.0.1",
        "240.0.0.1",
        "192.0.0.8",
        "224.0.0.251",
        "fd00:ec2::254",
        "fe80::1",
    ):
        assert not any(_peers_allow(r, private) for r in internet), private


def test_otlp_egress_is_the_http_port_when_an_endpoint_is_set():
    example = helm_template(CHART_EXAMPLE)
    settings = settings_from_env(dict(containers(example))["api"].env)
    assert str(settings.otlp_endpoint).endswith(":4318")
    for policy in of_kind(example, "NetworkPolicy").values():
        if component_of(policy) in SERVICES:
            ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
            assert 4318 in ports
            assert 4317 not in ports


def test_keda_authenticates_to_a_secured_kafka_like_the_services():
    objects = helm_template(CHART_EXAMPLE)
    (auth,) = of_kind(objects, "TriggerAuthentication").values()
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    deployments = dict(containers(objects))
    for name in ("dispatcher", "executor"):
        scaled = of_kind(objects, "ScaledObject")[f"workflows-{name}"]["spec"]
        kafka = next(t for t in scaled["triggers"] if t["type"] == "kafka")
        assert kafka["authenticationRef"]["name"] == auth["metadata"]["name"]
        assert (kafka["metadata"]["sasl"], kafka["metadata"]["tls"]) == ("scram_sha512", "enable")
        env = {e["name"]: e for e in deployments[name].spec["env"]}
        password = env["WF_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert refs["password"] == (password["name"], password["key"])
        assert env["WF_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env["WF_KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        assert env["WF_KAFKA_SSL_CA_FILE"]["value"] == "/etc/workflows/kafka-ca/ca.crt"
    assert {e["parameter"]: e["name"] for e in auth["spec"]["env"]} == {"username": "WF_KAFKA_SASL_USERNAME"}
    assert refs["ca"] == ("my-cluster-cluster-ca-cert", "ca.crt")
    # Mutual TLS: the client certificate goes to KEDA too.
    tls = helm_template(
        CHART_EXAMPLE, sets=("kafka.securityProtocol=SSL", "kafka.strimzi.user.authentication=tls")
    )
    (auth,) = of_kind(tls, "TriggerAuthentication").values()
    assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {"ca", "cert", "key"}
    # Brokers with a public CA (MSK, Confluent Cloud) and no login: TLS on, nothing to authenticate.
    public = helm_template(sets=("kafka.securityProtocol=SSL", "keda.enabled=true"))
    assert not of_kind(public, "TriggerAuthentication")
    for scaled in of_kind(public, "ScaledObject").values():
        kafka = next(t for t in scaled["spec"]["triggers"] if t["type"] == "kafka")
        assert kafka["metadata"]["tls"] == "enable"
        assert "authenticationRef" not in kafka
    user = of_kind(tls, "KafkaUser")["workflows"]
    assert user["spec"]["authentication"]["type"] == "tls"
    env = {e["name"] for e in dict(containers(tls))["executor"].spec["env"]}
    assert {"WF_KAFKA_SSL_CERT_FILE", "WF_KAFKA_SSL_KEY_FILE"} <= env
    assert not env & {"WF_KAFKA_SASL_PASSWORD"}


def test_chart_settings_are_known_and_secrets_come_by_reference(chart):
    from tests.deploy.manifests import setting_fields

    known = {f"WF_{f.upper()}" for f in setting_fields()} | KAFKA_SECURITY_SETTINGS
    for kind in ("Deployment", "Job"):
        for name, container in containers(chart, kind):
            names = {e["name"] for e in container.spec["env"] if e["name"].startswith("WF_")}
            assert names <= known, (name, names - known)
            for entry in container.spec["env"]:
                if entry["name"] in {"WF_DATABASE_URL", "WF_KAFKA_SASL_PASSWORD"} and "value" in entry:
                    assert "$(WORKFLOWS_DB_PASSWORD)" in entry["value"]
    assert not of_kind(chart, "Secret")


def test_strimzi_topics_have_the_partitions_the_services_expect():
    from shared.kafka.topics import topic_layout

    objects = helm_template(CHART_EXAMPLE)
    topics = {
        t["spec"]["topicName"]: t["spec"]["partitions"] for t in of_kind(objects, "KafkaTopic").values()
    }
    settings = settings_from_env(dict(containers(objects))["executor"].env)
    assert topics == topic_layout(settings)
    assert settings.kafka_create_topics is False
