"""Helm values of the cluster add-ons, checked key by key against each chart's defaults
(tests/upstream/charts) by the conformance suite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from components import labels
from components.config import GpuOperatorConfig, GpuTier, KedaConfig, MonitoringConfig
from platform_facts import vllm as metrics

MONITORING_NAMESPACE = "monitoring"
KEDA_NAMESPACE = "keda"
GPU_OPERATOR_NAMESPACE = "gpu-operator"
# fullnameOverride makes the Prometheus Service name stable: <override>-prometheus.
KPS_FULLNAME = "kps"
PROMETHEUS_PORT = 9090
DASHBOARD_LABEL = "grafana_dashboard"
TIME_SLICING_CONFIG = "time-slicing-config"
MIG_CONFIG = "custom-mig-config"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"

# vLLM per-pod gauges exposed to HPAs through the custom metrics API, ':' renamed to '_'.
ADAPTER_METRICS = (metrics.NUM_REQUESTS_WAITING, metrics.NUM_REQUESTS_RUNNING, metrics.KV_CACHE_USAGE)


def prometheus_url() -> str:
    return f"http://{KPS_FULLNAME}-prometheus.{MONITORING_NAMESPACE}.svc:{PROMETHEUS_PORT}"


def _placement(system: dict[str, Any]) -> dict[str, Any]:
    return {"nodeSelector": system["nodeSelector"], "tolerations": system["tolerations"]}


def kube_prometheus_stack(mon: MonitoringConfig, system: dict[str, Any]) -> dict[str, Any]:
    place = _placement(system)
    return {
        "fullnameOverride": KPS_FULLNAME,
        "prometheus": {
            "prometheusSpec": {
                # Select every ServiceMonitor/PodMonitor/PrometheusRule in every namespace,
                # not only those labelled with this release.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "retention": mon.retention,
                "scrapeInterval": f"{mon.scrape_interval_seconds}s",
                "storageSpec": {"volumeClaimTemplate": {"spec": {
                    "storageClassName": "gp3",
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{mon.storage_gib}Gi"}},
                }}},
                "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
                **place,
            },
        },
        "alertmanager": {"alertmanagerSpec": dict(place)},
        "prometheusOperator": {**place, "admissionWebhooks": {"patch": dict(place)}},
        "grafana": {
            "enabled": mon.grafana_enabled,
            # The sidecar loads every ConfigMap labelled grafana_dashboard=1, in all namespaces.
            "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1",
                                       "searchNamespace": "ALL"}},
            **place,
        },
        "kube-state-metrics": dict(place),
    }


def prometheus_adapter(system: dict[str, Any]) -> dict[str, Any]:
    """Custom metrics only: KEDA owns v1beta1.external.metrics.k8s.io, so no rules.external."""
    custom = []
    for metric in ADAPTER_METRICS:
        custom.append({
            "seriesQuery": f'{metric}{{namespace!="",pod!=""}}',
            "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
            "name": {"matches": f"^{metric}$", "as": metric.replace(":", "_")},
            "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
        })
    return {
        "prometheus": {"url": f"http://{KPS_FULLNAME}-prometheus.{MONITORING_NAMESPACE}.svc", "port": PROMETHEUS_PORT},
        "rules": {"default": False, "custom": custom},
        "replicas": 2,
        **_placement(system),
    }


def keda(config: KedaConfig, system: dict[str, Any]) -> dict[str, Any]:
    replicas = config.operator_replicas
    return {
        "operator": {"replicaCount": replicas},
        "metricsServer": {"replicaCount": replicas},
        "webhooks": {"enabled": True, "replicaCount": replicas},
        **_placement(system),
    }


def time_slicing_data(tiers: Sequence[GpuTier]) -> dict[str, str]:
    """Device plugin configs, one key per time-sliced tier (its nodes select it by label)."""
    data = {}
    for tier in tiers:
        if tier.time_slicing is None:
            continue
        data[tier.name] = yaml.safe_dump({
            "version": "v1",
            "flags": {"migStrategy": "none"},
            "sharing": {"timeSlicing": {"resources": [
                {"name": labels.GPU_RESOURCE, "replicas": tier.time_slicing.replicas}]}},
        }, sort_keys=False)
    return data


def mig_parted_config(tiers: Sequence[GpuTier], names: dict[str, str]) -> str | None:
    """mig-parted config.yaml with one entry per MIG tier (named by ``names[tier]``)."""
    entries: dict[str, Any] = {"all-disabled": [{"devices": "all", "mig-enabled": False}]}
    for tier in tiers:
        if tier.mig is not None:
            entries[names[tier.name]] = [{"devices": "all", "mig-enabled": True,
                                          "mig-devices": dict(sorted(tier.mig.profiles.items()))}]
    if len(entries) == 1:
        return None
    return yaml.safe_dump({"version": "v1", "mig-configs": entries}, sort_keys=False)


def gpu_operator(config: GpuOperatorConfig, tiers: Sequence[GpuTier], system: dict[str, Any],
                 mig_names: dict[str, str]) -> dict[str, Any]:
    """GPU Operator on the EKS AL2023 NVIDIA AMI: the AMI ships the driver and the container
    toolkit, so the operator installs neither; it runs the device plugin, GFD, NFD, DCGM."""
    values: dict[str, Any] = {
        "driver": {"enabled": False},
        "toolkit": {"enabled": False},
        "nfd": {"enabled": True},
        "gfd": {"enabled": True},
        "devicePlugin": {"enabled": True},
        "dcgmExporter": {
            "enabled": config.dcgm_exporter,
            # honorLabels keeps DCGM's pod/namespace labels instead of exported_pod/...
            "serviceMonitor": {"enabled": config.dcgm_exporter, "interval": "15s",
                               "honorLabels": True},
        },
        "operator": {"nodeSelector": {"kubernetes.io/os": "linux", **system["nodeSelector"]},
                     "tolerations": system["tolerations"]},
        # Operand DaemonSets tolerate the GPU taint (the chart default, kept explicit).
        "daemonsets": {"tolerations": [{"key": labels.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]},
        "node-feature-discovery": {"master": _placement(system), "gc": _placement(system)},
    }
    slicing = time_slicing_data(tiers)
    if slicing:
        values["devicePlugin"]["config"] = {"create": True, "name": TIME_SLICING_CONFIG, "data": slicing}
    mig = mig_parted_config(tiers, mig_names)
    if mig is not None:
        strategy = next(t.mig.strategy for t in tiers if t.mig is not None)
        values["mig"] = {"strategy": strategy}
        values["migManager"] = {
            "enabled": True,
            "config": {"create": True, "name": MIG_CONFIG, "default": "all-disabled", "data": {"config.yaml": mig}},
            # On EC2 the GPUs are passed through; enabling MIG mode needs a node reboot.
            "env": [{"name": "WITH_REBOOT", "value": "true"}],
        }
    return values


def tier_node_labels(tier: GpuTier) -> dict[str, str]:
    """Labels a tier's NodePools put on nodes so the GPU Operator applies its sharing config."""
    return {DEVICE_PLUGIN_CONFIG_LABEL: tier.name} if tier.time_slicing is not None else {}
