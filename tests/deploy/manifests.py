"""Loading what the deployment files say: kustomize output, docker-compose.yml, settings.env.

kustomize is the real one (sigs.k8s.io/kustomize), built once with Go into the git-ignored
.cache/kustomize/ (about two minutes the first time, then instant).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from shared.config import Settings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
SETTINGS_ENV = K8S / "base" / "settings.env"
COMPOSE_FILE = REPO / "docker-compose.yml"
KUSTOMIZE_VERSION = "v5.8.2"  # the newest that builds with Go 1.26
KUSTOMIZE_DIR = REPO / ".cache" / "kustomize" / KUSTOMIZE_VERSION
CHART = REPO / "deploy" / "helm" / "workflows"
CHART_EXAMPLE = CHART / "examples" / "production.yaml"
HELM_VERSION = "v3.21.4"  # builds with Go 1.26
HELM_DIR = REPO / ".cache" / "helm" / HELM_VERSION

SERVICE_PORT_SETTING = {
    "api": "api_port",
    "dispatcher": "dispatcher_port",
    "executor": "executor_port",
    "health": "health_port",
}
# Settings that are secrets: referenced through the Secret "workflows-secrets", never committed.
SECRET_SETTINGS = {
    "database_url",
    "jwt_secret",
    "master_key",
    "master_key_previous",
    "kafka_sasl_password",
    "kafka_sasl_password_file",
    "kafka_ssl_key_password",
}
# The Kafka security settings of issue 14, which shared/config.py gains on that branch: the chart and
# settings.env already name them, so until the merge they count as known settings here.
KAFKA_SECURITY_SETTINGS = {
    "WF_KAFKA_SECURITY_PROTOCOL",
    "WF_KAFKA_SASL_MECHANISM",
    "WF_KAFKA_SASL_USERNAME",
    "WF_KAFKA_SASL_PASSWORD",
    "WF_KAFKA_SASL_PASSWORD_FILE",
    "WF_KAFKA_SSL_CA_FILE",
    "WF_KAFKA_SSL_CERT_FILE",
    "WF_KAFKA_SSL_KEY_FILE",
    "WF_KAFKA_SSL_KEY_PASSWORD",
    "WF_KAFKA_COMPRESSION",
}
SECRET_NAME = "workflows-secrets"


def service_command(name: str) -> list[str]:
    return ["python", "-m", f"services.{name}"]


MIGRATE_COMMAND = ["wf", "migrate"]


def go_install(package: str, version: str, directory: Path, binary_name: str) -> Path:
    """`go install package@version` into the git-ignored .cache (once; several suites may start at
    once: one builds, the others wait on the lock)."""
    binary = directory / binary_name
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(f"building {binary_name} needs Go (https://go.dev); none is on PATH")
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            subprocess.run(
                [go, "install", f"{package}@{version}"],
                env={**go_env(), "GOBIN": str(directory)},
                check=True,
                capture_output=True,
                timeout=1200,
            )
    return binary


def go_env() -> dict[str, str]:
    cache = REPO / ".cache" / "go"
    return {
        **os.environ,
        "GOMODCACHE": str(cache / "mod"),
        "GOCACHE": str(cache / "build"),
        "GOFLAGS": "-modcacherw",
        "GOTOOLCHAIN": "local",
    }


def kustomize_binary() -> Path:
    return go_install("sigs.k8s.io/kustomize/kustomize/v5", KUSTOMIZE_VERSION, KUSTOMIZE_DIR, "kustomize")


def helm_binary() -> Path:
    return go_install("helm.sh/helm/v3/cmd/helm", HELM_VERSION, HELM_DIR, "helm")


@cache
def _render(path: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run(
        [str(kustomize_binary()), "build", path], check=True, capture_output=True, text=True, timeout=120
    )
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def render(target: str) -> list[dict[str, Any]]:
    """`kustomize build deploy/k8s/<target>` as a list of objects (a fresh copy for each caller)."""
    copy: list[dict[str, Any]] = json.loads(json.dumps(_render(str(K8S / target))))
    return copy


@cache
def _helm_render(values: tuple[str, ...], sets: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    command = [str(helm_binary()), "template", "workflows", str(CHART), "--namespace", "workflows"]
    for path in values:
        command += ["--values", path]
    for assignment in sets:
        command += ["--set", assignment]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def helm_template(*values: Path, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """`helm template` of deploy/helm/workflows with these values files (a fresh copy per caller)."""
    copy: list[dict[str, Any]] = json.loads(json.dumps(_helm_render(tuple(map(str, values)), sets)))
    return copy


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, timeout=120)


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def component_of(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def settings_env() -> dict[str, str]:
    return {k: v or "" for k, v in dotenv_values(SETTINGS_ENV).items()}


def commented_settings() -> set[str]:
    """Optional settings documented as commented-out lines (`# WF_NAME=example`)."""
    names = set()
    for line in SETTINGS_ENV.read_text().splitlines():
        stripped = line.lstrip("# ").split("=", 1)
        if line.startswith("#") and len(stripped) == 2 and stripped[0].startswith("WF_"):
            names.add(stripped[0])
    return names


def env_name(field: str) -> str:
    return f"WF_{field.upper()}"


def setting_fields() -> set[str]:
    return {name for name in Settings.model_fields if name != "extra"}


FAKE_SECRETS = {
    "WF_DATABASE_URL": "postgresql+psycopg://u:p@db:5432/workflows",
    "WF_JWT_SECRET": "a-real-looking-jwt-secret-for-validation-only",
    "WF_MASTER_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    # Kafka logins come from secretKeyRefs of their own (a Strimzi KafkaUser's Secret, say).
    "WF_KAFKA_SASL_PASSWORD": "a-kafka-password-for-validation-only",
    "WF_KAFKA_SSL_KEY_PASSWORD": "a-key-password-for-validation-only",
}


def settings_from_env(env: dict[str, str]) -> Settings:
    """The Settings a process gets from exactly these environment variables (no .env files)."""
    values: dict[str, Any] = {
        name.removeprefix("WF_").lower(): value for name, value in env.items() if name.startswith("WF_")
    }
    return Settings(_env_file=None, **values)


@dataclass
class Container:
    """A Deployment's or Job's first container, with the environment it would see."""

    owner: dict[str, Any]
    spec: dict[str, Any]
    env: dict[str, str]

    @property
    def pod(self) -> dict[str, Any]:
        return dict(self.owner["spec"]["template"]["spec"])

    def port(self, name_or_number: str | int) -> int:
        if isinstance(name_or_number, int):
            return name_or_number
        return next(int(p["containerPort"]) for p in self.spec["ports"] if p["name"] == name_or_number)


def containers(objects: list[dict[str, Any]], kind: str = "Deployment") -> Iterator[tuple[str, Container]]:
    config_maps = of_kind(objects, "ConfigMap")
    for obj in of_kind(objects, kind).values():
        spec = obj["spec"]["template"]["spec"]["containers"][0]
        env: dict[str, str] = {}
        for source in spec.get("envFrom", []):
            if "configMapRef" in source:
                env.update(config_maps[source["configMapRef"]["name"]]["data"])
            elif source["secretRef"]["name"] == SECRET_NAME:  # the kustomize base's and the chart's
                env.update({k: v for k, v in FAKE_SECRETS.items() if "KAFKA" not in k})
        for entry in spec.get("env", []):
            if "value" in entry:
                env[entry["name"]] = entry["value"]
            elif entry["name"] in FAKE_SECRETS:
                env[entry["name"]] = FAKE_SECRETS[entry["name"]]
        if "$(WORKFLOWS_DB_PASSWORD)" in env.get("WF_DATABASE_URL", ""):
            env["WF_DATABASE_URL"] = env["WF_DATABASE_URL"].replace("$(WORKFLOWS_DB_PASSWORD)", "p")
        yield component_of(obj), Container(obj, spec, env)


def compose() -> dict[str, Any]:
    """docker-compose.yml with YAML anchors and merge keys resolved (as `docker compose config` does)."""
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment: its env_files, then `environment` on top."""
    env: dict[str, str] = {}
    for path in service.get("env_file", []):
        env.update({k: v or "" for k, v in dotenv_values(REPO / path).items()})
    env.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
    return env
