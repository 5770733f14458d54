"""What the pods pinned to the system nodes request, read from the resources a program makes.

One place for that knowledge, so a test (and later a policy) can check that the system node
group holds its controllers. It reads resources as the recording engine and CrossGuard see
them (``{"type", "inputs"}`` with camelCase inputs) and imports only the facts
(``platform_facts``), so the policy pack can use it as it is.

Counted, replicas included: Deployments and StatefulSets whose pod template selects the
system nodes; the workloads of the Helm charts and EKS add-ons we install there, from the
values we set or, where we set none, the chart's or add-on's default (``CHART_WORKLOADS``,
read from the vendored values.yaml files). A pod requests the larger of its containers'
sum and its largest init container. Not counted: DaemonSets (kube-proxy, VPC CNI, Pod
Identity agent, EBS CSI node, node exporter), which ``components.sizing`` takes out of every
node's allocatable with the kubelet's reservation; Helm hook Jobs, which run and go.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from platform_facts.catalog import GENERAL_PURPOSE

Path = tuple[str, ...]


@dataclass(frozen=True)
class PodLoad:
    """One workload on the system nodes: what each replica requests, and how many run."""

    workload: str
    replicas: int
    cpu_millis: int
    memory_mib: int

    @property
    def total_cpu_millis(self) -> int:
        return self.replicas * self.cpu_millis

    @property
    def total_memory_mib(self) -> int:
        return self.replicas * self.memory_mib


@dataclass(frozen=True)
class ChartWorkload:
    """A Deployment or StatefulSet a chart (or add-on) renders, located in its values."""

    name: str
    node_selector: Path
    """Where its nodeSelector is set: pinned when it selects the system nodes."""
    containers: tuple[tuple[Path, Mapping[str, Any]], ...]
    """Per container: where its resources are set, and the default when we set none."""
    replicas: Path | None = None
    default_replicas: int = 1
    enabled: Path | None = None
    """A switch that turns the workload off (default on)."""


def _requests(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}}


NONE: Mapping[str, Any] = {}
# Defaults read from tests/upstream/charts/*/values.yaml and ../shared/upstream/charts (the
# subcharts). Empty defaults are BestEffort pods: the scheduler counts them as 0, so we set
# requests for each of them (render/addons.py).
CHART_WORKLOADS: dict[str, tuple[ChartWorkload, ...]] = {
    "karpenter": (
        ChartWorkload("karpenter", ("nodeSelector",), ((("controller", "resources"), NONE),),
                      replicas=("replicas",), default_replicas=2),
    ),
    "keda": (
        ChartWorkload("keda-operator", ("nodeSelector",),
                      ((("resources", "operator"), _requests("100m", "100Mi")),),
                      replicas=("operator", "replicaCount")),
        ChartWorkload("keda-metrics-apiserver", ("nodeSelector",),
                      ((("resources", "metricServer"), _requests("100m", "100Mi")),),
                      replicas=("metricsServer", "replicaCount")),
        ChartWorkload("keda-admission-webhooks", ("nodeSelector",),
                      ((("resources", "webhooks"), _requests("100m", "100Mi")),),
                      replicas=("webhooks", "replicaCount"), enabled=("webhooks", "enabled")),
    ),
    "kube-prometheus-stack": (
        ChartWorkload("prometheus", ("prometheus", "prometheusSpec", "nodeSelector"),
                      ((("prometheus", "prometheusSpec", "resources"), NONE),
                       # The operator adds its config reloader to every Prometheus and Alertmanager.
                       (("prometheusOperator", "prometheusConfigReloader", "resources"), NONE)),
                      replicas=("prometheus", "prometheusSpec", "replicas")),
        ChartWorkload("alertmanager", ("alertmanager", "alertmanagerSpec", "nodeSelector"),
                      ((("alertmanager", "alertmanagerSpec", "resources"), NONE),
                       (("prometheusOperator", "prometheusConfigReloader", "resources"), NONE)),
                      replicas=("alertmanager", "alertmanagerSpec", "replicas"), enabled=("alertmanager", "enabled")),
        ChartWorkload("prometheus-operator", ("prometheusOperator", "nodeSelector"),
                      ((("prometheusOperator", "resources"), NONE),)),
        ChartWorkload("grafana", ("grafana", "nodeSelector"),
                      ((("grafana", "resources"), NONE), (("grafana", "sidecar", "resources"), NONE)),
                      replicas=("grafana", "replicas"), enabled=("grafana", "enabled")),
        ChartWorkload("kube-state-metrics", ("kube-state-metrics", "nodeSelector"),
                      ((("kube-state-metrics", "resources"), NONE),),
                      replicas=("kube-state-metrics", "replicas"), enabled=("kubeStateMetrics", "enabled")),
    ),
    "prometheus-adapter": (
        ChartWorkload("prometheus-adapter", ("nodeSelector",), ((("resources",), NONE),), replicas=("replicas",)),
    ),
    "gpu-operator": (
        ChartWorkload("gpu-operator", ("operator", "nodeSelector"),
                      ((("operator", "resources"), _requests("200m", "100Mi")),)),
        ChartWorkload("nfd-master", ("node-feature-discovery", "master", "nodeSelector"),
                      ((("node-feature-discovery", "master", "resources"), _requests("100m", "128Mi")),),
                      replicas=("node-feature-discovery", "master", "replicaCount")),
        ChartWorkload("nfd-gc", ("node-feature-discovery", "gc", "nodeSelector"),
                      ((("node-feature-discovery", "gc", "resources"), _requests("10m", "128Mi")),),
                      replicas=("node-feature-discovery", "gc", "replicaCount")),
    ),
}
# EKS add-ons, from their configuration values (the add-on's defaults where we set none).
ADDON_WORKLOADS: dict[str, tuple[ChartWorkload, ...]] = {
    # EKS runs two CoreDNS replicas, 100m / 70Mi each (the add-on's default resources).
    "coredns": (
        ChartWorkload("coredns", ("nodeSelector",), ((("resources",), _requests("100m", "70Mi")),),
                      replicas=("replicaCount",), default_replicas=2),
    ),
    # The controller pod: the driver and five sidecars (provisioner, attacher, snapshotter,
    # resizer, liveness probe), each taking controller.resources when no sidecar value is set.
    "aws-ebs-csi-driver": (
        ChartWorkload("ebs-csi-controller", ("controller", "nodeSelector"),
                      tuple((("controller", "resources"), _requests("10m", "40Mi")) for _ in range(6)),
                      replicas=("controller", "replicaCount"), default_replicas=2),
    ),
}


# Shapes of the general-purpose types a system node group may use: name -> (vCPU, memory GiB),
# from the catalog's general-purpose table.
NODE_SHAPES: dict[str, tuple[int, int]] = {n: (t.vcpu, t.memory_gib) for n, t in GENERAL_PURPOSE.items()}


def cpu_millis(quantity: Any) -> int:
    """A Kubernetes CPU quantity ("250m", "1", 0.5) in millicores."""
    text = str(quantity)
    if text.endswith("m"):
        return int(float(text[:-1]))
    return round(float(text) * 1000)


_MEMORY_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024,
                 "k": 1000 / 1024 ** 2, "M": 1000 ** 2 / 1024 ** 2, "G": 1000 ** 3 / 1024 ** 2}


def memory_mib(quantity: Any) -> int:
    """A Kubernetes memory quantity ("512Mi", "1Gi", "100M", bytes) in MiB, rounded up."""
    text = str(quantity)
    for suffix in sorted(_MEMORY_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return -(-int(float(text[: -len(suffix)]) * _MEMORY_UNITS[suffix] * 1024) // 1024)
    return -(-int(float(text)) // (1024 * 1024))


def _get(values: Mapping[str, Any], path: Path) -> Any:
    node: Any = values
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _container_requests(resources: Mapping[str, Any] | None) -> tuple[int, int]:
    requests = (resources or {}).get("requests") or {}
    return cpu_millis(requests.get("cpu", 0)), memory_mib(requests.get("memory", 0))


def _selects(node_selector: Any, system_selector: Mapping[str, str]) -> bool:
    return isinstance(node_selector, Mapping) and all(node_selector.get(k) == v for k, v in system_selector.items())


def _chart_loads(workloads: Iterable[ChartWorkload], values: Mapping[str, Any],
                 system_selector: Mapping[str, str]) -> list[PodLoad]:
    loads = []
    for w in workloads:
        if w.enabled is not None and _get(values, w.enabled) is False:
            continue
        if not _selects(_get(values, w.node_selector), system_selector):
            continue
        cpu = mem = 0
        for path, default in w.containers:
            set_here = _get(values, path)
            c, m = _container_requests(set_here if set_here else default)
            cpu, mem = cpu + c, mem + m
        replicas = _get(values, w.replicas) if w.replicas is not None else None
        loads.append(PodLoad(w.name, int(replicas if replicas is not None else w.default_replicas), cpu, mem))
    return loads


def _pod_requests(pod_spec: Mapping[str, Any]) -> tuple[int, int]:
    containers = [_container_requests(c.get("resources")) for c in pod_spec.get("containers", [])]
    inits = [_container_requests(c.get("resources")) for c in pod_spec.get("initContainers", [])]
    cpu = max([sum(c for c, _ in containers), *(c for c, _ in inits)])
    mem = max([sum(m for _, m in containers), *(m for _, m in inits)])
    return cpu, mem


def _chart_name(chart: str) -> str:
    return chart.rstrip("/").rsplit("/", 1)[-1]


def system_pod_loads(resources: Iterable[Mapping[str, Any]], system_selector: Mapping[str, str]) -> list[PodLoad]:
    """Every workload pinned to the nodes ``system_selector`` selects, with its requests."""
    loads: list[PodLoad] = []
    for r in resources:
        typ, inputs = r["type"], r.get("inputs") or {}
        if typ in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"):
            spec = inputs.get("spec") or {}
            pod = (spec.get("template") or {}).get("spec") or {}
            if _selects(pod.get("nodeSelector"), system_selector):
                cpu, mem = _pod_requests(pod)
                name = f"{inputs['metadata'].get('namespace', 'default')}/{inputs['metadata']['name']}"
                loads.append(PodLoad(name, int(spec.get("replicas", 1)), cpu, mem))
        elif typ == "kubernetes:helm.sh/v3:Release":
            workloads = CHART_WORKLOADS.get(_chart_name(inputs.get("chart", "")), ())
            loads += _chart_loads(workloads, inputs.get("values") or {}, system_selector)
        elif typ == "aws:eks/addon:Addon":
            config = json.loads(inputs.get("configurationValues") or "{}")
            loads += _chart_loads(ADDON_WORKLOADS.get(inputs.get("addonName", ""), ()), config, system_selector)
    return loads
