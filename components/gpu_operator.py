"""NVIDIA GPU Operator: device plugin, GFD/NFD, DCGM exporter with its ServiceMonitor, and
the optional time-slicing and MIG profiles of the GPU tiers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import helm, versions
from components.cluster import SYSTEM_PLACEMENT
from components.config import GpuOperatorConfig, GpuTier
from components.naming import child
from components.render import addons as render
from components.render import chart_images
from components.render.images import Mirror
from components.render.karpenter import mig_config_name


@dataclass(frozen=True)
class GpuOperatorArgs:
    config: GpuOperatorConfig
    """DCGM exporter on or off."""
    tiers: tuple[GpuTier, ...]
    """GPU tiers: their time-slicing and MIG profiles become device-plugin and mig-parted configs."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What the chart waits for: the system nodes, and the prometheus-operator CRDs for the
    DCGM exporter's ServiceMonitor (the kube-prometheus-stack release)."""
    mirror: Mirror | None = None
    """The stack's ECR pull-through cache: chart images whose registry the chart lets us set go through it."""


class GpuOperator(pulumi.ComponentResource):
    """Installed after Monitoring so the ServiceMonitor CRD exists for the DCGM exporter."""

    namespace: pulumi.Output[str]
    """The GPU Operator namespace."""
    release: k8s.helm.v3.Release
    """The operator release: GPU workloads need its device plugin to schedule."""

    def __init__(self, name: str, args: GpuOperatorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:addons:GpuOperator", name, None, opts)
        ns = helm.namespace(child(name, "namespace"), render.GPU_OPERATOR_NAMESPACE, pulumi.ResourceOptions(parent=self),
                            # The operator's operands need privileged pods (device plugin, DCGM).
                            enforce="privileged")
        mig_names = {t.name: mig for t in args.tiers if (mig := mig_config_name(t)) is not None}
        self.release = helm.release(
            child(name, "gpu-operator"), versions.GPU_OPERATOR, release_name="gpu-operator",
            namespace=render.GPU_OPERATOR_NAMESPACE,
            # The operator and its operands stay on nvcr.io (no cache rule can mirror it); the NFD
            # subchart's image moves.
            values=chart_images.merge(render.gpu_operator(args.config, args.tiers, SYSTEM_PLACEMENT, mig_names),
                                      chart_images.overrides(chart_images.GPU_OPERATOR_SUBCHARTS, args.mirror)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *args.depends_on]))
        self.namespace = self.release.status.apply(lambda _: render.GPU_OPERATOR_NAMESPACE)
        self.register_outputs({"namespace": self.namespace, "release": self.release})
