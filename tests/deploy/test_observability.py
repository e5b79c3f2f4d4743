"""The alert rules and the Grafana dashboard are well-formed and only use metrics the services export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

# Importing the services registers every metric they export.
import services.api.app
import services.dispatcher.service
import services.executor.service
import services.health.service  # noqa: F401

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
METRIC = re.compile(r"\bwf_[a-z_]+\b")
# Series that Prometheus (up) and kube-state-metrics produce, not the services.
EXTERNAL = re.compile(r"\b(up|kube_pod_container_status_restarts_total)\{")
CONSUMERS = ("dispatcher", "executor", "health")


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
        assert used or EXTERNAL.search(alert["expr"]), alert["alert"]
        assert used <= exported_names(), (alert["alert"], used - exported_names())


def test_every_service_has_an_absent_alert_and_errors_are_a_ratio():
    rules = yaml.safe_load((OBSERVABILITY / "prometheus-rules.yaml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    exprs = " ".join(a["expr"] for a in alerts.values())
    for service in (*CONSUMERS, "api"):
        # When every pod of a service is down its series vanish: only absent() fires then.
        assert f'absent(up{{container="{service}"}} == 1)' in exprs, service
    assert "kube_pod_container_status_restarts_total" in exprs
    errors = alerts["WorkflowsApiServerErrors"]["expr"]
    assert "/" in errors, "5xx must be a share of all responses, not an absolute rate"


@pytest.mark.timeout(1500)  # may build Helm with Go the first time
def test_the_chart_ships_these_rules_as_a_prometheus_rule():
    from tests.deploy.manifests import CHART_EXAMPLE, helm_template, of_kind

    rules = yaml.safe_load((OBSERVABILITY / "prometheus-rules.yaml").read_text())
    (shipped,) = of_kind(helm_template(CHART_EXAMPLE), "PrometheusRule").values()
    assert shipped["spec"] == rules
    (monitor,) = of_kind(helm_template(CHART_EXAMPLE), "ServiceMonitor").values()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


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
