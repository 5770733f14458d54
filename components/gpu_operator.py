"""NVIDIA GPU Operator: device plugin, GFD/NFD, DCGM exporter with its ServiceMonitor, and
the optional time-slicing and MIG profiles of the GPU tiers."""

from __future__ import annotations

import pulumi

from components import helm, versions
from components.cluster import SYSTEM_PLACEMENT
from components.config import StackConfig
from components.naming import child
from components.render import addons as render
from components.render.karpenter import mig_config_name


class GpuOperator(pulumi.ComponentResource):
    """Installed after Monitoring so the ServiceMonitor CRD exists for the DCGM exporter."""

    namespace: pulumi.Output[str]
    """The GPU Operator namespace."""

    def __init__(self, name: str, args: StackConfig, depends_on: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:addons:GpuOperator", name, None, opts)
        ns = helm.namespace(child(name, "namespace"), render.GPU_OPERATOR_NAMESPACE, pulumi.ResourceOptions(parent=self),
                            # The operator's operands need privileged pods (device plugin, DCGM).
                            labels={"pod-security.kubernetes.io/enforce": "privileged"})
        mig_names = {t.name: mig_config_name(t) for t in args.gpu_tiers if t.mig is not None}
        release = helm.release(child(name, "gpu-operator"), versions.GPU_OPERATOR, release_name="gpu-operator",
                               namespace=render.GPU_OPERATOR_NAMESPACE,
                               values=render.gpu_operator(args, SYSTEM_PLACEMENT, mig_names),
                               opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *depends_on]))
        self.namespace = release.status.apply(lambda _: render.GPU_OPERATOR_NAMESPACE)
        self.register_outputs({"namespace": self.namespace})
