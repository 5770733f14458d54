"""Namespaces a workload of ours must never be deployed into.

The platform creates a Namespace object for every service and batch-worker namespace, so a
workload namespace that is a system namespace or one of the platform's own would be
created twice (the apply fails) or, worse, adopted and deleted with the stack. Render's
namespace constants (``render.addons``, ``render.karpenter``) are guarded against this list
by a test.
"""

from __future__ import annotations

# Kubernetes' own: created by the API server, never by us.
KUBERNETES_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
# The platform's add-ons: kube-prometheus-stack, KEDA, the GPU Operator (Karpenter runs in
# kube-system).
PLATFORM_NAMESPACES = ("gpu-operator", "keda", "monitoring")
RESERVED_NAMESPACES = KUBERNETES_NAMESPACES + PLATFORM_NAMESPACES
