"""docker-compose.yml follows the Compose specification and runs the same commands, ports and
settings as Kubernetes and `make up`."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import compose_spec
import pytest

import wf.stack
from tests.deploy.manifests import (
    MIGRATE_COMMAND,
    REPO,
    SERVICE_PORT_SETTING,
    SETTINGS_ENV,
    compose,
    compose_env,
    containers,
    render,
    service_command,
    setting_fields,
    settings_env,
    settings_from_env,
)
from wf.stack import SERVICES

pytestmark = pytest.mark.timeout(900)  # renders the k8s base, which may build kustomize once


def test_compose_file_follows_the_compose_specification():
    spec = compose_spec.PyCompose.from_json(json.dumps(compose()))
    spec.validate()
    spec.validate_networks()
    spec.validate_volumes()
    model = spec.to_spec()
    assert model.services is not None
    names = set(model.services)
    assert names >= {"postgres", "kafka", "mailpit", "migrate", *SERVICES}
    for name, service in compose()["services"].items():
        assert set(service.get("depends_on", {})) <= names, name


def test_compose_starts_kafka_in_kraft_mode_and_everything_in_order():
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for infra in ("kafka", "postgres", "mailpit"):
        assert services[infra]["healthcheck"]["test"], infra
    assert services["migrate"]["command"] == MIGRATE_COMMAND
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in SERVICES:
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "kafka": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
        }, name


def test_compose_services_match_kubernetes_and_make_up():
    services = compose()["services"]
    k8s = dict(containers(render("base")))
    for name in SERVICES:
        service = services[name]
        assert service["command"] == service_command(name) == k8s[name].spec["command"]
        env = compose_env(service)
        settings = settings_from_env(env)
        port = getattr(settings, SERVICE_PORT_SETTING[name])
        assert port == k8s[name].spec["ports"][0]["containerPort"], name
        urls = re.findall(r"http://127\.0\.0\.1:(\d+)/healthz", " ".join(service["healthcheck"]["test"]))
        assert urls == [str(port)], name
        # Same settings as Kubernetes, apart from where Kafka/PostgreSQL are and development mode.
        assert service["env_file"] == [str(SETTINGS_ENV.relative_to(REPO))]
        unknown = {k for k in env if k.removeprefix("WF_").lower() not in setting_fields()}
        assert not unknown, f"{name}: not settings of shared/config.py: {sorted(unknown)}"
        assert settings.shutdown_grace_s == settings_from_env(k8s[name].env).shutdown_grace_s, name
        stop_grace = _seconds(service["stop_grace_period"])
        assert stop_grace >= settings.shutdown_grace_s + 10, name
    assert services["api"]["ports"] == ["8080:8080"]
    assert dict(containers(render("base"), "Job"))["migrate"].spec["command"] == MIGRATE_COMMAND
    # `make up` (wf/stack.py) and `make migrate` start the same entry points.
    stack_source = inspect.getsource(wf.stack.up)
    assert '"-m", f"services.{name}"' in stack_source
    assert '"migrate"' in stack_source
    assert re.search(r"^migrate:.*\n\t\$\(BIN\)/wf migrate$", (REPO / "Makefile").read_text(), re.M)


def test_compose_executor_reaches_only_the_mail_catcher_among_private_networks():
    document = compose()
    executor = compose_env(document["services"]["executor"])
    subnet = document["networks"]["peers"]["ipam"]["config"][0]["subnet"]
    assert executor["WF_EGRESS_ALLOW_CIDRS"] == subnet
    assert "peers" in document["services"]["mailpit"]["networks"]
    assert settings_env()["WF_EGRESS_ALLOW_CIDRS"] == ""


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration))


def test_the_development_state_volume_is_where_the_image_keeps_it():
    dockerfile = (REPO / "Dockerfile").read_text()
    state_dir = re.search(r"WF_RUN_DIR=(\S+)", dockerfile)
    assert state_dir is not None
    for name in ("migrate", *SERVICES):
        assert f"workflows-state:{state_dir.group(1)}" in compose()["services"][name]["volumes"], name
    assert Path(state_dir.group(1)).is_absolute()


def test_kafka_keeps_its_data_on_the_mounted_volume():
    """The apache/kafka image writes to /tmp/kraft-combined-logs unless told otherwise: topics and
    offsets would be lost whenever the container is recreated, although a volume is mounted."""
    kafka = compose()["services"]["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].split(",")
    mounts = [v.split(":")[1] for v in kafka["volumes"] if ":" in v]
    named = set(compose().get("volumes") or {})
    for directory in log_dirs:
        assert any(directory == m or directory.startswith(m.rstrip("/") + "/") for m in mounts), directory
    assert {v.split(":")[0] for v in kafka["volumes"]} <= named
