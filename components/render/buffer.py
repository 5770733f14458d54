"""Warm GPU capacity per tier: spare nodes Karpenter keeps ready for burst replicas.

Two ways, one shape (``gpuTiers[].capacityBuffer``): each chunk is one pod requesting one
replica's GPUs, CPU and memory, required on the tier's on-demand pool.

- ``capacityBuffer``: Karpenter 1.14's ``CapacityBuffer`` (``autoscaling.x-k8s.io/v1beta1``, the
  only version its CRD serves; alpha gate ``capacityBuffer`` in the chart). Its pods are virtual:
  they exist only in Karpenter's scheduling simulation, so kube-scheduler sees the warm node as
  empty and binds a burst replica there at once; Karpenter refills the buffer within ~30 s.
  Buffer pods count against the NodePool limit, and empty consolidation spares a node holding
  them (Karpenter ``concepts/capacitybuffers.md``).
- ``placeholderPods``: real pause pods of a negative-priority class (no alpha feature): a burst
  replica (priority 0) preempts one, which turns Pending and makes Karpenter launch the next
  warm node.

Either way the warm node is a node of the tier: the pre-pull DaemonSet (if on) warms its image
and model cache too, so a burst replica there skips node launch, image pull and download.
"""

from __future__ import annotations

from typing import Any

from components import labels, versions
from components.config import GpuTier
from components.config.levers import BufferChunk
from components.naming import k8s_name
from components.render import node_levers, pod_security

NAMESPACE = "capacity-buffers"
PRIORITY_CLASS = "gpu-capacity-placeholder"
# Below every workload's default of 0, so any real pod preempts a placeholder; never preempts.
PLACEHOLDER_PRIORITY = -10
ROLE = "platform.gpu/role"


def name(tier: GpuTier) -> str:
    return k8s_name(tier.name, "buffer")


def pod_labels(tier: GpuTier) -> dict[str, str]:
    return {labels.APP_NAME: "gpu-capacity-buffer", labels.APP_INSTANCE: tier.name, ROLE: "buffer"}


def pod_spec(tier: GpuTier, chunk: BufferChunk, *, placeholder: bool) -> dict[str, Any]:
    """One chunk: a pause container requesting one replica's resources on the tier's on-demand pool."""
    gpus, memory = str(chunk.gpus), f"{chunk.memory_gib}Gi"
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_security.pod_security_context(),
        "terminationGracePeriodSeconds": 0,
        "containers": [{
            "name": "pause", "image": versions.PAUSE_IMAGE,
            "resources": {"requests": {"cpu": str(chunk.vcpu), "memory": memory, labels.GPU_RESOURCE: gpus},
                          "limits": {"memory": memory, labels.GPU_RESOURCE: gpus}},
            "securityContext": pod_security.container_security_context(),
        }],
        "tolerations": [{"key": labels.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [
                {"key": labels.TIER, "operator": "In", "values": [tier.name]},
                {"key": labels.CAPACITY_TYPE, "operator": "In", "values": node_levers.on_demand_types(tier)}]}]}}},
    }
    if placeholder:
        spec["priorityClassName"] = PRIORITY_CLASS
    return spec


def pod_template(tier: GpuTier, chunk: BufferChunk) -> dict[str, Any]:
    """The PodTemplate a CapacityBuffer's ``podTemplateRef`` names (same namespace)."""
    return {"metadata": {"name": name(tier), "namespace": NAMESPACE, "labels": pod_labels(tier)},
            "template": {"metadata": {"labels": pod_labels(tier)}, "spec": pod_spec(tier, chunk, placeholder=False)}}


def capacity_buffer(tier: GpuTier, chunk: BufferChunk) -> dict[str, Any]:
    """The CapacityBuffer: ``replicas`` chunks of the PodTemplate (the CRD's CEL rule: a
    podTemplateRef needs replicas or limits)."""
    return {"metadata": {"name": name(tier), "namespace": NAMESPACE, "labels": pod_labels(tier)},
            "spec": {"podTemplateRef": {"name": name(tier)}, "replicas": chunk.replicas}}


def priority_class() -> dict[str, Any]:
    """The placeholders' class: negative, never the default, and it preempts nothing itself."""
    return {"metadata": {"name": PRIORITY_CLASS}, "value": PLACEHOLDER_PRIORITY, "globalDefault": False,
            "preemptionPolicy": "Never",
            "description": "Placeholder pods that keep warm GPU nodes; any real pod preempts them."}


def placeholder_deployment(tier: GpuTier, chunk: BufferChunk) -> dict[str, Any]:
    """``replicas`` pause pods of the placeholder class. Not awaited: a placeholder that was just
    preempted is Pending until Karpenter's next node is up, which is the point."""
    sel = pod_labels(tier)
    return {
        "metadata": {"name": name(tier), "namespace": NAMESPACE, "labels": sel,
                     "annotations": {"pulumi.com/skipAwait": "true"}},
        "spec": {"replicas": chunk.replicas, "selector": {"matchLabels": sel},
                 "template": {"metadata": {"labels": sel}, "spec": pod_spec(tier, chunk, placeholder=True)}},
    }
