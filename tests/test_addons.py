"""Cluster add-ons: values the charts accept, ordering, GPU sharing, dashboards."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from components import versions
from components.render import dashboards
from components.render.addons import prometheus_url
from platform_facts import dcgm
from platform_facts import vllm as vllm_facts
from tests.conftest import build, by_type, load, load_with, release

PINNED = {(c.chart, c.version) for c in vars(versions).values() if isinstance(c, versions.Chart)}


@pytest.fixture(scope="module")
def prod():
    return build(load("prod"))


def test_releases_use_versions_from_versions_py_only(prod):
    releases = by_type(prod, "kubernetes:helm.sh/v3:Release")
    assert {r.inputs["name"] for r in releases} == {
        "karpenter-crd", "karpenter", "kps", "prometheus-adapter", "keda", "gpu-operator",
        "chat-8b-router", "reason-70b-router"}
    for r in releases:
        assert (r.inputs["chart"], r.inputs["version"]) in PINNED


def test_prometheus_selects_everything_and_has_a_stable_url(prod):
    v = release(prod, "kps")["values"]
    spec = v["prometheus"]["prometheusSpec"]
    assert v["fullnameOverride"] == "kps"
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False and spec["ruleSelectorNilUsesHelmValues"] is False
    assert spec["retention"] == "30d"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert spec["nodeSelector"] == {"platform.gpu/pool": "system"}
    assert prometheus_url() == "http://kps-prometheus.monitoring.svc:9090"
    assert prod.outputs["prometheusUrl"] == prometheus_url()


def test_grafana_off_removes_dashboards():
    cfg = load_with("dev", lambda v: v.setdefault("addons", {}).update(monitoring={"grafanaEnabled": False}))
    result = build(cfg)
    assert release(result, "kps")["values"]["grafana"]["enabled"] is False
    assert not [r for r in by_type(result, "kubernetes:core/v1:ConfigMap") if r.name.endswith("dashboard-vllm")]
    assert result.outputs["grafanaService"] == ""


def test_adapter_exposes_custom_metrics_only(prod):
    v = release(prod, "prometheus-adapter")["values"]
    assert "external" not in v["rules"] and v["rules"]["default"] is False
    names = [r["name"]["as"] for r in v["rules"]["custom"]]
    assert names == ["vllm_num_requests_waiting", "vllm_num_requests_running", "vllm_kv_cache_usage_perc"]
    assert all(":" not in n for n in names)
    assert v["prometheus"] == {"url": "http://kps-prometheus.monitoring.svc", "port": 9090}


def test_keda_runs_on_system_nodes_with_webhooks(prod):
    v = release(prod, "keda")["values"]
    assert v["webhooks"]["enabled"] is True and v["nodeSelector"] == {"platform.gpu/pool": "system"}


def test_gpu_operator_for_the_al2023_nvidia_ami(prod):
    v = release(prod, "gpu-operator")["values"]
    assert v["driver"] == {"enabled": False} and v["toolkit"] == {"enabled": False}
    assert v["devicePlugin"]["enabled"] and v["nfd"]["enabled"] and v["gfd"]["enabled"]
    assert v["dcgmExporter"]["serviceMonitor"]["honorLabels"] is True
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in v["daemonsets"]["tolerations"]


def test_gpu_operator_installs_after_monitoring(prod):
    kps = next(r for r in prod.resources if r.inputs.get("name") == "kps")
    gpu = next(r for r in prod.resources if r.inputs.get("name") == "gpu-operator")
    assert kps.urn in gpu.depends_on


def test_time_slicing_profile_and_node_label():
    # Four vLLMs cannot share an L4 (each reserves 90 % of its memory), so the tier serves nothing
    # here; the config rules on what may run on a time-sliced tier are in test_config.
    cfg = load_with("dev", lambda v: (v["gpuTiers"][0].update(timeSlicing={"replicas": 4}), v.update(modelServices=[], exampleValues=[])))
    result = build(cfg)
    cfg_values = release(result, "gpu-operator")["values"]["devicePlugin"]["config"]
    assert cfg_values["name"] == "time-slicing-config" and cfg_values["create"] is True
    sharing = yaml.safe_load(cfg_values["data"]["l4"])["sharing"]["timeSlicing"]["resources"]
    assert sharing == [{"name": "nvidia.com/gpu", "replicas": 4}]
    for r in by_type(result, "kubernetes:karpenter.sh/v1:NodePool"):
        assert r.inputs["spec"]["template"]["metadata"]["labels"]["nvidia.com/device-plugin.config"] == "l4"


def test_mig_profile_config_and_node_label():
    # The 70B cannot run on 1g.10gb slices (the config refuses it), so it leaves the MIG tier here.
    cfg = load_with("prod", lambda v: (v["gpuTiers"][1].update(mig={"strategy": "single", "profiles": {"1g.10gb": 7}}),
                                       v["modelServices"].pop(1),
                                       v["exampleValues"].remove("modelServices[1].model.source")))
    result = build(cfg)
    v = release(result, "gpu-operator")["values"]
    assert v["mig"] == {"strategy": "single"}
    parted = yaml.safe_load(v["migManager"]["config"]["data"]["config.yaml"])
    assert parted["mig-configs"]["custom-7x1g-10gb"] == [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}]
    pools = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in by_type(result, "kubernetes:karpenter.sh/v1:NodePool")}
    assert pools["h100-on-demand"]["template"]["metadata"]["labels"]["nvidia.com/mig.config"] == "custom-7x1g-10gb"
    assert "nvidia.com/mig.config" not in pools["l40s-on-demand"]["template"]["metadata"]["labels"]


METRIC = re.compile(r"\b(vllm:[a-z_]+|DCGM_[A-Z_]+)\b")


def _metrics(expr: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in METRIC.findall(expr)}


@pytest.mark.parametrize("board", [dashboards.vllm(), dashboards.dcgm()], ids=["vllm", "dcgm"])
def test_dashboards_are_grafana_json_with_emitted_metrics_only(board):
    json.loads(json.dumps(board))
    assert board["uid"] and board["title"] and board["panels"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    used = set()
    for panel in board["panels"]:
        assert panel["type"] == "timeseries" and panel["targets"]
        for t in panel["targets"]:
            used |= _metrics(t["expr"])
    assert used and used <= vllm_facts.METRIC_FAMILIES | dcgm.METRICS
    assert "vllm:gpu_cache_usage_perc" not in json.dumps(board)


def test_dashboard_configmaps_are_labelled_for_the_sidecar(prod):
    cms = [r.inputs for r in by_type(prod, "kubernetes:core/v1:ConfigMap") if r.name.endswith(("dashboard-vllm", "dashboard-dcgm"))]
    assert len(cms) == 2
    for cm in cms:
        assert cm["metadata"]["labels"] == {"grafana_dashboard": "1"} and cm["metadata"]["namespace"] == "monitoring"


def test_platform_outputs_for_consumers(prod):
    out = prod.outputs
    assert out["namespaces"] == {"monitoring": "monitoring", "keda": "keda", "gpuOperator": "gpu-operator"}
    assert out["nodePools"] == {"l40s": {"on-demand": "l40s-on-demand", "spot": "l40s-spot"}, "h100": {"on-demand": "h100-on-demand"}}
    assert out["kubeconfig"] == "[secret]" and out["clusterName"] == "llm-prod"
