"""Custom resources checked against their CustomResourceDefinitions' schemas, as the API server would.

The CRDs come from the upstream projects' Go modules, downloaded at test time through the Go module
proxy into the git-ignored .cache (nothing copied into this repository): KEDA's config/crd/bases and
the Prometheus Operator's example/prometheus-operator-crd. Strimzi publishes no module or Maven
artifact with its CRD YAML, so its kinds are checked against the fields we use (STRIMZI_SHAPES).
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.deploy.manifests import go_env

KEDA = ("github.com/kedacore/keda/v2", "v2.21.1", "config/crd/bases/")
PROMETHEUS_OPERATOR = (
    "github.com/prometheus-operator/prometheus-operator",
    "v0.85.0",
    "example/prometheus-operator-crd/",
)
MODULES = (KEDA, PROMETHEUS_OPERATOR)
# The CRD files of the kinds Workflows ships objects of.
CRD_FILES = (
    "_scaledobjects.yaml",
    "_triggerauthentications.yaml",
    "_servicemonitors.yaml",
    "_prometheusrules.yaml",
)


def _module_zip(module: str, version: str) -> Path:
    # -json reports the zip even when the module's go.mod wants a newer Go than this toolchain.
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        env=go_env(),
        capture_output=True,
        text=True,
        timeout=600,
        cwd="/",
    )
    info = json.loads(out.stdout)
    zip_path = info.get("Zip")
    if not zip_path or not Path(zip_path).exists():
        raise RuntimeError(f"go mod download {module}@{version} failed: {out.stdout} {out.stderr}")
    return Path(zip_path)


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the openAPIV3Schema of that served version, from the upstream CRDs."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for module, version, folder in MODULES:
        with zipfile.ZipFile(_module_zip(module, version)) as archive:
            prefix = f"{module}@{version}/{folder}"
            for name in archive.namelist():
                if not (name.startswith(prefix) and name.endswith(CRD_FILES)):
                    continue
                for doc in yaml.safe_load_all(archive.read(name)):
                    if not doc or doc.get("kind") != "CustomResourceDefinition":
                        continue
                    group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
                    for served in doc["spec"]["versions"]:
                        if served.get("served"):
                            schema = served["schema"]["openAPIV3Schema"]
                            schemas[(f"{group}/{served['name']}", kind)] = strict(schema)
    return schemas


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A structural schema made strict like `kubectl apply --validate=strict`: unknown fields are
    errors (the API server would silently prune them), and int-or-string accepts both."""
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes")}
    if "(?i)" in schema.get("pattern", ""):
        # RE2 allows an inline flag anywhere; Python only at the start.
        out["pattern"] = "(?i)" + schema["pattern"].replace("(?i)", "")
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in schema:
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = strict(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        out["items"] = strict(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [strict(s) for s in schema[key]]
    return out


# Strimzi kafka.strimzi.io/v1 (Strimzi 1.x serves only v1): the fields of the API reference that the
# chart and the kustomize component use, with their types; anything else is an error.
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name", "labels"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {**_LABELS, "required": ["strimzi.io/cluster"]},
        "annotations": _LABELS,
    },
    "additionalProperties": False,
}
_ACL = {
    "type": "object",
    "required": ["resource", "operations"],
    "properties": {
        "resource": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"enum": ["topic", "group", "cluster", "transactionalId"]},
                "name": {"type": "string"},
                "patternType": {"enum": ["literal", "prefix"]},
            },
            "additionalProperties": False,
        },
        "operations": {
            "type": "array",
            "items": {
                "enum": [
                    "Read",
                    "Write",
                    "Create",
                    "Delete",
                    "Alter",
                    "Describe",
                    "ClusterAction",
                    "AlterConfigs",
                    "DescribeConfigs",
                    "IdempotentWrite",
                    "All",
                ]
            },
        },
        "host": {"type": "string"},
        "type": {"enum": ["allow", "deny"]},
    },
    "additionalProperties": False,
}
STRIMZI_SHAPES: dict[tuple[str, str], dict[str, Any]] = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"enum": ["kafka.strimzi.io/v1"]},
            "kind": {"enum": ["KafkaTopic"]},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["partitions", "replicas"],
                "properties": {
                    "topicName": {"type": "string"},
                    "partitions": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                    "config": {
                        "type": "object",
                        "additionalProperties": {"type": ["string", "integer", "boolean", "number"]},
                    },
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
    ("kafka.strimzi.io/v1", "KafkaUser"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"enum": ["kafka.strimzi.io/v1"]},
            "kind": {"enum": ["KafkaUser"]},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "properties": {
                    "authentication": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"enum": ["tls", "tls-external", "scram-sha-512"]}},
                        "additionalProperties": False,
                    },
                    "authorization": {
                        "type": "object",
                        "required": ["type", "acls"],
                        "properties": {
                            "type": {"enum": ["simple"]},
                            "acls": {"type": "array", "items": _ACL},
                        },
                        "additionalProperties": False,
                    },
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
}


def validate_custom_resource(obj: dict[str, Any]) -> None:
    """Raises jsonschema.ValidationError, or KeyError for a kind with no schema."""
    key = (obj["apiVersion"], obj["kind"])
    if key in STRIMZI_SHAPES:
        jsonschema.Draft4Validator(STRIMZI_SHAPES[key]).validate(obj)
        return
    schema = crd_schemas()[key]
    # The API server validates metadata itself (kubernetes-validate's ObjectMeta covers it).
    # OpenAPI v3 schemas are JSON Schema draft 4 plus extensions (dropped by strict()).
    jsonschema.Draft4Validator(schema).validate({k: v for k, v in obj.items() if k != "metadata"})
