"""Helm values of the cluster add-ons, checked key by key against each chart's defaults
(tests/upstream/charts) by the conformance suite."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from components import labels, versions
from components.config import GpuOperatorConfig, GpuTier, KedaConfig, MonitoringConfig
from components.config.addons import AlertingConfig
from components.config.serving import SecretRef
from platform_facts import karpenter as karpenter_facts
from platform_facts import keda as keda_facts
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

# The encrypted gp3 class every volume of the platform claims (Prometheus, Redis).
STORAGE_CLASS = "gp3"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
# Requests of the system pods we size: set explicitly, so the system-node budget
# (render/system_pods) reads our figures rather than a chart's empty default.
COREDNS_RESOURCES = {"requests": {"cpu": "100m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}}
EBS_CSI_CONTROLLER_RESOURCES = {"requests": {"cpu": "10m", "memory": "40Mi"}, "limits": {"memory": "256Mi"}}
PROMETHEUS_RESOURCES = {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
CONFIG_RELOADER_RESOURCES = {"requests": {"cpu": "10m", "memory": "50Mi"}, "limits": {"memory": "100Mi"}}
OPERATOR_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
ALERTMANAGER_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
GRAFANA_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
GRAFANA_SIDECAR_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
KUBE_STATE_METRICS_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
ADAPTER_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}

# vLLM per-pod gauges exposed to HPAs through the custom metrics API, ':' renamed to '_'.
ADAPTER_METRICS = (metrics.NUM_REQUESTS_WAITING, metrics.NUM_REQUESTS_RUNNING, metrics.KV_CACHE_USAGE)


def prometheus_url() -> str:
    return f"http://{KPS_FULLNAME}-prometheus.{MONITORING_NAMESPACE}.svc:{PROMETHEUS_PORT}"


def _placement(system: dict[str, Any]) -> dict[str, Any]:
    return {"nodeSelector": system["nodeSelector"], "tolerations": system["tolerations"]}


def control_plane_log_group(cluster: str) -> str:
    """The log group EKS writes control-plane logs to (it creates it, without retention, if absent)."""
    return f"/aws/eks/{cluster}/cluster"


def gp3_storage_class() -> dict[str, Any]:
    """The encrypted gp3 StorageClass of the EBS CSI driver (the in-tree plugin cannot make gp3).

    WaitForFirstConsumer: the volume is created in the zone of the node the pod lands on.
    reclaimPolicy Delete: what lives on these volumes (metrics under a retention, a work
    queue whose items are processed at least once) is not a system of record, and Retain
    would leave a billed, unattached volume behind every deliberate PVC deletion. Encrypted
    with the account's aws/ebs key (no kmsKeyId), so the driver needs no KMS grants.
    """
    return {
        "metadata": {"name": STORAGE_CLASS},
        "provisioner": EBS_CSI_PROVISIONER,
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
        "reclaimPolicy": "Delete",
        "parameters": {"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
    }


def coredns_configuration(system: dict[str, Any]) -> dict[str, Any]:
    """CoreDNS add-on configuration: on the system nodes, tolerating their taint."""
    return {"replicaCount": 2, "resources": COREDNS_RESOURCES, **_placement(system)}


def ebs_csi_configuration(system: dict[str, Any]) -> dict[str, Any]:
    """EBS CSI add-on configuration: the controller on the system nodes (the node DaemonSet
    runs everywhere by the add-on's default)."""
    return {"controller": {"replicaCount": 2, "resources": EBS_CSI_CONTROLLER_RESOURCES, **_placement(system)}}


# Where alertmanagerSpec.secrets mounts each Secret (prometheus-operator: /etc/alertmanager/secrets/<name>).
ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets"
NULL_RECEIVER = "null"
# Alerts that exist to be silent: Watchdog proves the pipeline works (a dead-man's switch
# pages when it stops), InfoInhibitor only inhibits info alerts (kube-prometheus-stack rules).
SILENT_ALERTS = ("Watchdog", "InfoInhibitor")
# Scrape jobs and default rules of components EKS manages and does not expose: the control
# plane's controller-manager, scheduler and etcd have no reachable endpoints, and the EKS
# kube-proxy binds its metrics to 127.0.0.1:10249; left on, KubeControllerManagerDown and
# KubeSchedulerDown (critical) fire forever (production-facts §9).
EKS_UNREACHABLE_JOBS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
EKS_UNREACHABLE_RULES = ("kubeControllerManager", "kubeSchedulerAlerting", "kubeSchedulerRecording", "etcd",
                         "kubeProxy")


def _secret_file(ref: SecretRef) -> str:
    return f"{ALERTMANAGER_SECRETS_DIR}/{ref.name}/{ref.key}"


def alertmanager_secrets(alerting: AlertingConfig) -> list[str]:
    """Secrets Alertmanager mounts for its receivers (each once)."""
    refs = [r.secret.name for r in (alerting.pagerduty, alerting.slack, alerting.webhook) if r is not None]
    return sorted(set(refs))


def alertmanager_config(alerting: AlertingConfig) -> dict[str, Any]:
    """Receivers and routes by severity; credentials stay in Secrets, read from files.

    critical -> PagerDuty and Slack (else the webhook), warning -> Slack (else the webhook),
    everything else -> the webhook. A missing receiver falls through to the default route, whose
    receiver is the webhook, else Slack, else "null" (dev: alerts only in the UI)."""
    receivers: list[dict[str, Any]] = [{"name": NULL_RECEIVER}]
    routes: list[dict[str, Any]] = [{"receiver": NULL_RECEIVER, "matchers": [f'alertname = "{a}"']}
                                    for a in SILENT_ALERTS]
    if alerting.pagerduty is not None:
        receivers.append({"name": "pagerduty", "pagerduty_configs": [
            {"routing_key_file": _secret_file(alerting.pagerduty.secret), "send_resolved": True}]})
        # continue: the page also goes to Slack below.
        routes.append({"receiver": "pagerduty", "matchers": ['severity = "critical"'],
                       "continue": alerting.slack is not None})
    if alerting.slack is not None:
        receivers.append({"name": "slack", "slack_configs": [
            {"api_url_file": _secret_file(alerting.slack.secret), "channel": alerting.slack.channel,
             "send_resolved": True}]})
        routes.append({"receiver": "slack", "matchers": ['severity =~ "critical|warning"']})
    if alerting.webhook is not None:
        receivers.append({"name": "webhook", "webhook_configs": [
            {"url_file": _secret_file(alerting.webhook.secret), "send_resolved": True}]})
    default = ("webhook" if alerting.webhook is not None else "slack" if alerting.slack is not None
               else NULL_RECEIVER)
    return {
        "route": {"receiver": default, "routes": routes},
        "receivers": receivers,
    }


def kube_prometheus_stack(mon: MonitoringConfig, system: dict[str, Any], storage_class: str) -> dict[str, Any]:
    place = _placement(system)
    return {
        "fullnameOverride": KPS_FULLNAME,
        # Helm installs CRDs once and never upgrades them; the chart's pre-upgrade hook job
        # applies the CRDs of the chart version being installed (production-facts §5, §9).
        "crds": {"upgradeJob": {"enabled": True, "image": {"busybox": {"tag": versions.KPS_CRD_UPGRADE_BUSYBOX_TAG}},
                                **place}},
        "prometheus": {
            "prometheusSpec": {
                # Select every ServiceMonitor/PodMonitor/PrometheusRule in every namespace,
                # not only those labelled with this release.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "retention": mon.retention,
                "retentionSize": mon.retention_size,
                "scrapeInterval": f"{mon.scrape_interval_seconds}s",
                "storageSpec": {"volumeClaimTemplate": {"spec": {
                    "storageClassName": storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{mon.storage_gib}Gi"}},
                }}},
                "resources": PROMETHEUS_RESOURCES,
                **place,
            },
            # No PodDisruptionBudget: with one replica, minAvailable 1 would refuse every eviction
            # and fail each system node group update (PodEvictionFailure) instead of pausing
            # metrics for the minute the pod takes to move. A PDB belongs with a second replica.
        },
        "alertmanager": {
            # Helm merges this over the chart's config: global and inhibit_rules stay its own,
            # route and receivers are ours (lists replace lists).
            "config": alertmanager_config(mon.alerting),
            "alertmanagerSpec": {"resources": ALERTMANAGER_RESOURCES,
                                 "secrets": alertmanager_secrets(mon.alerting), **place},
        },
        "prometheusOperator": {**place, "resources": OPERATOR_RESOURCES,
                               "prometheusConfigReloader": {"resources": CONFIG_RELOADER_RESOURCES},
                               "admissionWebhooks": {"patch": dict(place)}},
        "grafana": {
            "enabled": mon.grafana_enabled,
            "resources": GRAFANA_RESOURCES,
            # The sidecar loads every ConfigMap labelled grafana_dashboard=1, in all namespaces.
            "sidecar": {"resources": GRAFANA_SIDECAR_RESOURCES,
                        "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1",
                                       "searchNamespace": "ALL"}},
            **place,
        },
        "kube-state-metrics": {"resources": KUBE_STATE_METRICS_RESOURCES, **place},
        **{job: {"enabled": False} for job in EKS_UNREACHABLE_JOBS},
        "defaultRules": {"rules": {rule: False for rule in EKS_UNREACHABLE_RULES}},
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
        # It serves the custom metrics API every HPA on vLLM metrics reads: keep one up in drains.
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "resources": ADAPTER_RESOURCES,
        **_placement(system),
    }


def keda(config: KedaConfig, system: dict[str, Any]) -> dict[str, Any]:
    replicas = config.operator_replicas
    return {
        "operator": {"replicaCount": replicas},
        "metricsServer": {"replicaCount": replicas},
        "webhooks": {"enabled": True, "replicaCount": replicas},
        # With a single replica a minAvailable would block every drain; at 2 or more, keep one.
        "podDisruptionBudget": ({part: {"maxUnavailable": 1} for part in ("operator", "metricServer", "webhooks")}
                                if replicas > 1 else {}),
        # The operator's /metrics (scaler errors, empty upstream responses) on the Service port
        # "metrics"; Monitoring's ServiceMonitor scrapes it (the chart's own would be applied
        # before the ServiceMonitor CRD exists).
        "prometheus": {"operator": {"enabled": True}},
        **_placement(system),
    }


# kube-state-metrics names extended resources with '.' and '/' replaced by '_'.
KSM_GPU_RESOURCE = "nvidia_com_gpu"
PLATFORM_RULES = "gpu-platform-alerts"


def platform_monitors(karpenter_namespace: str, karpenter_release: str) -> list[dict[str, Any]]:
    """ServiceMonitors for Karpenter and the KEDA operator. Monitoring creates them after the
    kube-prometheus-stack release: the charts' own would be applied before the CRD exists."""
    def monitor(name: str, namespace: str, labels: dict[str, str], port: str, **endpoint: Any) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": MONITORING_NAMESPACE},
                "spec": {"namespaceSelector": {"matchNames": [namespace]}, "selector": {"matchLabels": labels},
                         "endpoints": [{"port": port, "path": "/metrics", **endpoint}]}}

    return [
        monitor("karpenter", karpenter_namespace,
                {"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": karpenter_release},
                karpenter_facts.METRICS_PORT),
        # honorLabels: KEDA's series carry the ScaledObject's namespace as "namespace"; without it
        # Prometheus would overwrite it with "keda" (the operator pod's) and keep the real one as
        # exported_namespace.
        monitor("keda-operator", KEDA_NAMESPACE, dict(keda_facts.OPERATOR_SERVICE_LABEL), keda_facts.METRICS_PORT,
                honorLabels=True),
    ]


def platform_rules() -> dict[str, Any]:
    """Alerts on the platform's own controllers: node launches, KEDA scalers, GPU nodes."""
    def alert(name: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
        return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
                "annotations": {"summary": summary}}

    errors, create = karpenter_facts.CLOUDPROVIDER_ERRORS, karpenter_facts.CREATE_METHOD
    ice = karpenter_facts.INSUFFICIENT_CAPACITY_ERROR
    rules = [
        alert("KarpenterLaunchFailures",
              f'sum(increase({errors}{{method="{create}",error!="{ice}"}}[10m])) > 0', "15m", "warning",
              "Karpenter's EC2 launches keep failing for a reason other than capacity (permissions, "
              "subnets, launch template, quotas)"),
        # Spot capacity comes and goes and Karpenter retries other types: only a long run of it matters.
        alert("KarpenterInsufficientCapacity",
              f'sum(increase({errors}{{method="{create}",error="{ice}"}}[10m])) > 0', "30m", "warning",
              "EC2 has had no capacity for Karpenter's launches for 30m; GPU pods may stay Pending"),
        alert("KedaScalerErrors",
              f"sum by (namespace, scaledObject) (increase({keda_facts.SCALER_ERRORS}[5m])) > 0", "10m", "warning",
              "A KEDA scaler keeps failing to read its metric; the workload scales on fallback or not at all"),
        # ignoreNullValues (the default) turns an empty result into 0: a scaler reading a lost
        # target scales to its minimum instead of failing.
        alert("KedaScalerEmptyResults",
              f"sum by (namespace, scaledResource, triggerName) (increase({keda_facts.EMPTY_UPSTREAM_RESPONSES}[5m])) > 0",
              "15m", "warning",
              "A KEDA trigger's query returns no data; it is read as 0 (metric renamed or target lost?)"),
        # The device plugin reports allocatable nvidia.com/gpu; 0 on a node that has the
        # resource means the plugin or the GPUs are gone (pods stay Pending, the node is billed).
        alert("GPUNodeNoAllocatableGPU",
              f'max by (node) (kube_node_status_allocatable{{resource="{KSM_GPU_RESOURCE}"}}) == 0', "10m", "warning",
              "A GPU node reports 0 allocatable nvidia.com/gpu (device plugin down or GPUs unhealthy)"),
    ]
    return {"metadata": {"name": PLATFORM_RULES, "namespace": MONITORING_NAMESPACE},
            "spec": {"groups": [{"name": "gpu-platform.rules", "rules": rules}]}}


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
                     "tolerations": system["tolerations"],
                     # The operator's own metrics (reconciliation status and failures, GPU nodes):
                     # v26.7.0 creates this ServiceMonitor whenever its CRD exists (disabling it is
                     # not supported), so it is declared here rather than left implicit. No
                     # interval: Prometheus's global scrape interval applies.
                     "metrics": {"serviceMonitor": {"enabled": True, "honorLabels": False}}},
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
