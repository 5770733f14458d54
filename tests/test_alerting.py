"""Alerts that reach someone and no permanent false alarms: Alertmanager receivers and routes,
the EKS control-plane jobs turned off, size retention, disruption budgets."""

from __future__ import annotations

import pytest

from components.config import MonitoringConfig
from tests.conftest import build, load, load_with, release


@pytest.fixture(scope="module")
def stacks():
    return {s: build(load(s)) for s in ("dev", "staging", "prod")}


def test_prod_pages_critical_and_posts_critical_and_warning_to_slack(stacks):
    am = release(stacks["prod"], "kps")["values"]["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == ["alertmanager-pagerduty", "alertmanager-slack"]
    assert am["config"] == {
        "route": {"receiver": "slack", "routes": [
            {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
            {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']},
            {"receiver": "pagerduty", "matchers": ['severity = "critical"'], "continue": True},
            {"receiver": "slack", "matchers": ['severity =~ "critical|warning"']},
        ]},
        "receivers": [
            {"name": "null"},
            {"name": "pagerduty", "pagerduty_configs": [
                {"routing_key_file": "/etc/alertmanager/secrets/alertmanager-pagerduty/routing-key",
                 "send_resolved": True}]},
            {"name": "slack", "slack_configs": [
                {"api_url_file": "/etc/alertmanager/secrets/alertmanager-slack/webhook-url",
                 "channel": "#gpu-platform-alerts", "send_resolved": True}]},
        ],
    }


def test_staging_posts_to_slack_only(stacks):
    am = release(stacks["staging"], "kps")["values"]["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == ["alertmanager-slack"]
    assert [r["name"] for r in am["config"]["receivers"]] == ["null", "slack"]
    assert am["config"]["route"]["receiver"] == "slack"
    assert am["config"]["route"]["routes"][-1] == {"receiver": "slack", "matchers": ['severity =~ "critical|warning"']}


def test_dev_sends_everything_to_null(stacks):
    am = release(stacks["dev"], "kps")["values"]["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == []
    assert am["config"]["receivers"] == [{"name": "null"}]
    assert am["config"]["route"]["receiver"] == "null"


def test_webhook_takes_what_no_other_receiver_takes():
    def mutate(v):
        v["addons"]["monitoring"]["alerting"] = {
            "webhook": {"secret": {"name": "am-hook", "key": "url"}},
            "pagerduty": {"secret": {"name": "am-pd", "key": "key"}}}
    am = release(build(load_with("prod", mutate)), "kps")["values"]["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == ["am-hook", "am-pd"]
    route = am["config"]["route"]
    assert route["receiver"] == "webhook"
    # Without Slack the page does not continue; warnings fall through to the webhook.
    assert route["routes"][2:] == [{"receiver": "pagerduty", "matchers": ['severity = "critical"'], "continue": False}]
    assert am["config"]["receivers"][-1] == {"name": "webhook", "webhook_configs": [
        {"url_file": "/etc/alertmanager/secrets/am-hook/url", "send_resolved": True}]}


def test_no_receiver_config_holds_a_credential(stacks):
    """Credentials are read from mounted files; the inline fields stay unset."""
    for result in stacks.values():
        for receiver in release(result, "kps")["values"]["alertmanager"]["config"]["receivers"]:
            for configs in (v for k, v in receiver.items() if k.endswith("_configs")):
                for c in configs:
                    assert not {"api_url", "routing_key", "service_key", "url"} & set(c), receiver


def test_eks_unreachable_control_plane_is_not_scraped_nor_alerted_on(stacks):
    v = release(stacks["prod"], "kps")["values"]
    for job in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert v[job] == {"enabled": False}
    assert v["defaultRules"] == {"rules": {
        "kubeControllerManager": False, "kubeSchedulerAlerting": False, "kubeSchedulerRecording": False,
        "etcd": False, "kubeProxy": False}}


def test_retention_size_defaults_to_85_percent_of_the_volume(stacks):
    assert release(stacks["prod"], "kps")["values"]["prometheus"]["prometheusSpec"]["retentionSize"] == "170GiB"
    assert release(stacks["staging"], "kps")["values"]["prometheus"]["prometheusSpec"]["retentionSize"] == "42GiB"
    assert MonitoringConfig(storage_gib=100, retention_size_gib=60).retention_size == "60GiB"


def test_retention_size_must_leave_room_for_the_wal():
    with pytest.raises(ValueError, match=r"100 GiB leaves no room for the WAL on the 100 GiB volume\. Use at most 85"):
        MonitoringConfig(storage_gib=100, retention_size_gib=100)


def test_disruption_budgets_for_replicated_addons(stacks):
    adapter = release(stacks["prod"], "prometheus-adapter")["values"]
    assert adapter["replicas"] == 2 and adapter["podDisruptionBudget"] == {"enabled": True, "maxUnavailable": 1}
    keda = release(stacks["prod"], "keda")["values"]
    assert keda["podDisruptionBudget"] == {
        "operator": {"maxUnavailable": 1}, "metricServer": {"maxUnavailable": 1}, "webhooks": {"maxUnavailable": 1}}
    # A single Prometheus gets no PDB: it would refuse every eviction.
    assert "podDisruptionBudget" not in release(stacks["prod"], "kps")["values"]["prometheus"]


def test_single_replica_keda_has_no_budget_that_blocks_drains():
    def mutate(v):
        v["addons"]["keda"] = {"operatorReplicas": 1}
    assert release(build(load_with("prod", mutate)), "keda")["values"]["podDisruptionBudget"] == {}
