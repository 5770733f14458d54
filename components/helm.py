"""Helm releases, namespaces and Prometheus-operator objects, the way every component creates them."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.render import addons, pod_security
from components.render.pod_security import PodSecurityLevel

# Pod Security levels of the add-on namespaces whose charts cannot run at ``restricted``; every
# other namespace this program creates enforces ``restricted`` unless its creator says why not.
ADDON_POD_SECURITY: dict[str, PodSecurityLevel] = {
    # kube-prometheus-stack's node-exporter DaemonSet uses hostNetwork, hostPID and hostPath
    # mounts of /proc, /sys and /: only ``privileged`` admits them.
    addons.MONITORING_NAMESPACE: "privileged",
    # The GPU Operator's operands (device plugin, DCGM, validators, MIG manager) are privileged
    # containers with hostPath mounts.
    addons.GPU_OPERATOR_NAMESPACE: "privileged",
}


def namespace(name: str, ns: str, opts: pulumi.ResourceOptions, labels: dict[str, str] | None = None,
              *, enforce: PodSecurityLevel | None = None) -> k8s.core.v1.Namespace:
    """A Namespace with Pod Security Admission labels: ``enforce`` (default: the add-on table,
    else ``restricted``), warn and audit at ``restricted``."""
    level = enforce or ADDON_POD_SECURITY.get(ns, "restricted")
    return k8s.core.v1.Namespace(
        name, metadata={"name": ns, "labels": {**(labels or {}), **pod_security.namespace_labels(level)}}, opts=opts)


def monitoring_object(name: str, kind: str, obj: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    """A rendered ``monitoring.coreos.com/v1`` object (ServiceMonitor, PrometheusRule); ``opts``
    should wait for the prometheus-operator CRDs."""
    return k8s.apiextensions.CustomResource(name, api_version="monitoring.coreos.com/v1", kind=kind,
                                            metadata=obj["metadata"], spec=obj["spec"], opts=opts)


def release(name: str, chart: versions.Chart, *, release_name: str, namespace: str,
            values: pulumi.Input[dict[str, Any]] | None = None, skip_crds: bool = False,
            opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    """A real Helm release (hooks run) with an explicit name (no random suffix), pinned."""
    return k8s.helm.v3.Release(
        name,
        name=release_name,
        chart=chart.chart,
        version=chart.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository) if chart.repository else None,
        namespace=namespace,
        values=values or {},
        skip_crds=skip_crds,
        atomic=True,
        timeout=900,
        opts=opts,
    )
