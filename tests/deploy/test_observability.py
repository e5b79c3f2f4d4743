"""The alert rules and the Grafana dashboard are well-formed and only use metrics the services export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

# Importing the services registers every metric they export.
import services.api.app
import services.dispatcher.service
import services.executor.service
import services.health.service  # noqa: F401

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
METRIC = re.compile(r"\bwf_[a-z_]+\b")


def exported_names() -> set[str]:
    return set(REGISTRY._names_to_collectors)  # includes the _total, _bucket, _sum and _count samples


def test_alert_rules_are_well_formed_and_use_exported_metrics():
    rules = yaml.safe_load((OBSERVABILITY / "prometheus-rules.yaml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    names = {a["alert"] for a in alerts}
    assert {
        "WorkflowsDispatcherLagGrowing",
        "WorkflowsDeadLetters",
        "WorkflowsRunFailureRateHigh",
        "WorkflowsPendingRunsStale",
    } <= names
    for alert in alerts:
        assert set(alert) >= {"alert", "expr", "labels", "annotations"}, alert["alert"]
        assert alert["labels"]["severity"] in {"warning", "critical"}
        assert alert["annotations"]["summary"]
        assert alert["expr"].count("(") == alert["expr"].count(")"), alert["alert"]
        used = set(METRIC.findall(alert["expr"]))
        assert used, alert["alert"]
        assert used <= exported_names(), (alert["alert"], used - exported_names())


def test_dashboard_panels_query_exported_metrics():
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    assert dashboard["uid"]
    assert dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = set(METRIC.findall(target["expr"]))
            assert used, panel["title"]
            assert used <= exported_names(), (panel["title"], used - exported_names())
