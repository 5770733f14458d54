"""Namespaces a workload of ours must never be deployed into.

The platform creates a Namespace object for every service and batch-worker namespace, so a
workload namespace that is a system namespace or one of the platform's own would be
created twice (the apply fails) or, worse, adopted and deleted with the stack. Render's
namespace constants (``render.addons``, ``render.karpenter``) are guarded against this list
by a test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Kubernetes' own: created by the API server, never by us.
KUBERNETES_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
# The platform's add-ons: kube-prometheus-stack, KEDA, the GPU Operator (Karpenter runs in
# kube-system).
PLATFORM_NAMESPACES = ("gpu-operator", "keda", "monitoring")
RESERVED_NAMESPACES = KUBERNETES_NAMESPACES + PLATFORM_NAMESPACES


# --- rolling updates: how many batches a controller replaces pods in (Deployment and
# StatefulSet semantics, kubernetes/kubernetes pkg/controller/deployment/util and statefulset).

def pods_of(value: object, replicas: int, default: str, round_up: bool) -> int:
    """maxSurge/maxUnavailable as pods: an int, or a percentage of replicas (surge rounds up,
    unavailable rounds down, as the Deployment controller does)."""
    text = str(default if value is None else value)
    if text.endswith("%"):
        exact = replicas * float(text[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def rollout_steps(kind: str, spec: Mapping[str, Any], replicas: int) -> int:
    """Batches in which a rolling update replaces ``replicas`` pods, each waiting for readiness."""
    if replicas <= 0:
        return 0
    if kind == "StatefulSet":
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return 0
        unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable")
        return math.ceil(replicas / max(1, pods_of(unavailable, replicas, "1", False)))
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 1
    rolling = strategy.get("rollingUpdate") or {}
    per_step = (pods_of(rolling.get("maxSurge"), replicas, "25%", True)
                + pods_of(rolling.get("maxUnavailable"), replicas, "25%", False))
    return math.ceil(replicas / max(1, per_step))


# --- kube-prometheus-stack: the label the operator puts on Prometheus pods (NetworkPolicies
# admit scrapes by it; render/network_policy and the routing policy read it).
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}
