"""The platform's own alerts (Karpenter launches, KEDA scalers, GPU nodes), unit-tested by
`promtool test rules` on the rendered PrometheusRule: each fires on the series the pinned
exporter emits (names and labels from platform_facts, copied from upstream sources) and stays
quiet when it should. A misspelled metric or label never fires, and its "fires" case fails."""

from __future__ import annotations

import pytest

from components.monitoring import KARPENTER_RELEASE
from platform_facts import karpenter, keda
from tests.conftest import build, by_type, load, release
from tests.promql_kit import KSM_TARGET, Build, run_promtool_tests, series

KARPENTER_TARGET = {"job": "karpenter", "namespace": "kube-system", "service": "karpenter",
                    "endpoint": karpenter.METRICS_PORT, "instance": "10.0.8.8:8080"}
# honorLabels on the KEDA monitor: the series keep KEDA's own "namespace" (the ScaledObject's).
KEDA_TARGET = {"job": "keda-operator", "service": "keda-operator",
               "endpoint": keda.METRICS_PORT, "instance": "10.0.8.9:8080"}


def _launch_errors(error: str, per_minute: int, minutes: int) -> dict[str, str]:
    labels = {**KARPENTER_TARGET, "controller": "nodeclaim.lifecycle", "method": karpenter.CREATE_METHOD,
              "provider": "aws", "error": error}
    return {"series": series(karpenter.CLOUDPROVIDER_ERRORS, labels), "values": f"0+{per_minute}x{minutes}"}


def _scaler_errors(per_minute: int, minutes: int) -> dict[str, str]:
    labels = {**KEDA_TARGET, "namespace": "inference", "metric": "s0-prometheus", "scaledObject": "chat-burst",
              "scaler": "prometheusScaler", "triggerIndex": "0", "type": "scaledobject"}
    return {"series": series(keda.SCALER_ERRORS, labels), "values": f"0+{per_minute}x{minutes}"}


def _empty_results(per_minute: int, minutes: int) -> dict[str, str]:
    labels = {**KEDA_TARGET, "namespace": "inference", "scaledResource": "chat-burst", "triggerName": "queue",
              "metricName": "s0-prometheus", "resourceType": "scaledobject", "ignoreNullValues": "true"}
    return {"series": series(keda.EMPTY_UPSTREAM_RESPONSES, labels), "values": f"0+{per_minute}x{minutes}"}


def _allocatable(node: str, resource: str, value: int, minutes: int) -> dict[str, str]:
    labels = {**KSM_TARGET, "node": node, "resource": resource, "unit": "integer"}
    return {"series": series("kube_node_status_allocatable", labels), "values": f"{value}x{minutes}"}


ICE = karpenter.INSUFFICIENT_CAPACITY_ERROR
# alert -> [(case, fires, input series, eval minute, expected extra labels)]
CASES = {
    "KarpenterLaunchFailures": [
        ("one failed launch a minute for 40m", True, [_launch_errors("", 1, 40)], 30, {}),
        ("only insufficient capacity", False, [_launch_errors(ICE, 1, 40)], 30, {}),
        ("counter flat (no new failures)", False, [_launch_errors("", 0, 40)], 30, {}),
    ],
    "KarpenterInsufficientCapacity": [
        ("insufficient capacity for 60m", True, [_launch_errors(ICE, 1, 60)], 50, {}),
        ("insufficient capacity for 20m only", False, [_launch_errors(ICE, 1, 60)], 20, {}),
        ("other launch errors only", False, [_launch_errors("", 1, 60)], 50, {}),
    ],
    "KedaScalerErrors": [
        ("a scaler failing every minute", True, [_scaler_errors(1, 30)], 20,
         {"namespace": "inference", "scaledObject": "chat-burst"}),
        ("no new errors", False, [_scaler_errors(0, 30)], 20, {}),
    ],
    "KedaScalerEmptyResults": [
        ("a trigger's query empty every minute", True, [_empty_results(1, 40)], 25,
         {"namespace": "inference", "scaledResource": "chat-burst", "triggerName": "queue"}),
        ("no empty responses", False, [_empty_results(0, 40)], 25, {}),
    ],
    "GPUNodeNoAllocatableGPU": [
        ("a GPU node at 0 allocatable GPUs", True,
         [_allocatable("ip-10-0-1-1", "nvidia_com_gpu", 0, 30), _allocatable("ip-10-0-1-2", "nvidia_com_gpu", 4, 30)],
         15, {"node": "ip-10-0-1-1"}),
        ("every GPU node with its GPUs", False, [_allocatable("ip-10-0-1-2", "nvidia_com_gpu", 4, 30)], 15, {}),
        ("0 of another resource on a CPU node", False, [_allocatable("ip-10-0-2-1", "hugepages_2Mi", 0, 30)], 15, {}),
        ("at 0 for less than the for: duration", False,
         [{"series": _allocatable("ip-10-0-1-1", "nvidia_com_gpu", 0, 1)["series"], "values": "4x10 0x20"}], 15, {}),
    ],
}


def _rules(directory) -> list[dict]:
    rules = [o for o in Build.read(directory).of_kind("PrometheusRule") if o["metadata"]["name"] == "gpu-platform-alerts"]
    assert len(rules) == 1
    return rules[0]["spec"]["groups"]


def test_every_platform_alert_has_cases(synthesized):
    alerts = {r["alert"] for g in _rules(synthesized["prod"]) for r in g["rules"]}
    assert alerts == set(CASES)


def test_platform_alerts_fire_and_stay_quiet(synthesized, promtool, tmp_path):
    groups = _rules(synthesized["prod"])
    by_name = {r["alert"]: r for g in groups for r in g["rules"]}
    tests, fired, quiet = [], 0, 0
    for alert, cases in CASES.items():
        rule = by_name[alert]
        for case, fires, inputs, minute, extra in cases:
            expected = [{"exp_labels": {**rule["labels"], **extra, "alertname": alert},
                         "exp_annotations": rule["annotations"]}] if fires else []
            tests.append({"name": f"{alert}: {case}", "interval": "1m", "input_series": inputs,
                          "alert_rule_test": [{"eval_time": f"{minute}m", "alertname": alert,
                                               "exp_alerts": expected}]})
            fired, quiet = fired + fires, quiet + (not fires)
    proc = run_promtool_tests(promtool, tmp_path, groups, tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (fired, quiet) == (5, 9)


@pytest.fixture(scope="module")
def prod():
    return build(load("prod"))


def test_monitors_select_the_controllers_services(prod):
    monitors = {r.inputs["metadata"]["name"]: r.inputs for r in by_type(prod, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")}
    assert monitors["karpenter"]["spec"] == {
        "namespaceSelector": {"matchNames": ["kube-system"]},
        "selector": {"matchLabels": {"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": "karpenter"}},
        "endpoints": [{"port": "http-metrics", "path": "/metrics"}]}
    assert monitors["keda-operator"]["spec"] == {
        "namespaceSelector": {"matchNames": ["keda"]},
        "selector": {"matchLabels": {"app.kubernetes.io/name": "keda-operator"}},
        "endpoints": [{"port": "metrics", "path": "/metrics", "honorLabels": True}]}
    # The KEDA chart exposes the operator's metrics port only with prometheus.operator.enabled.
    assert release(prod, "keda")["values"]["prometheus"] == {"operator": {"enabled": True}}


def test_karpenter_monitor_names_the_karpenter_release(prod):
    """The monitor's instance label is the release name the Karpenter component installs."""
    assert KARPENTER_RELEASE in {r.inputs["name"] for r in by_type(prod, "kubernetes:helm.sh/v3:Release")}
    assert release(prod, KARPENTER_RELEASE)["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
