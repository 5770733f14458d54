"""WarmCapacity: spare GPU nodes per tier for burst replicas (``gpuTiers[].capacityBuffer``).

A CapacityBuffer (Karpenter's alpha API, virtual pods) or, where alpha features are off, a
Deployment of negative-priority pause pods; details in ``render/buffer.py``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.config import GpuTier
from components.config.levers import BufferChunk
from components.helm import namespace
from components.naming import child
from components.render import buffer as render
from components.render import images
from components.render.images import Mirror


@dataclass(frozen=True)
class WarmCapacityArgs:
    chunks: Mapping[str, tuple[GpuTier, BufferChunk]]
    """tier name -> the tier and its buffer chunk (only tiers with a capacityBuffer)."""
    node_pools: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    """tier -> its EC2NodeClass and NodePools (``Karpenter.tier_capacity``); the CapacityBuffer CRD
    ships with them (karpenter-crd chart), and a buffer before its pool would only wait."""
    mirror: Mirror | None = None
    """The stack's ECR pull-through cache (``images.mirror_for``): the pause image is pulled through it."""


class WarmCapacity(pulumi.ComponentResource):
    """Warm GPU capacity: a CapacityBuffer or placeholder pods per tier."""

    buffers: dict[str, str]
    """tier -> the name of its CapacityBuffer or placeholder Deployment."""

    def __init__(self, name: str, args: WarmCapacityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:capacity:WarmCapacity", name, None, opts)
        ns = namespace(child(name, "ns"), render.NAMESPACE, pulumi.ResourceOptions(parent=self))
        placeholder_class: k8s.scheduling.v1.PriorityClass | None = None
        self.buffers = {}
        for tier_name, (tier, chunk) in sorted(args.chunks.items()):
            needs = pulumi.ResourceOptions(parent=self, depends_on=[ns, *args.node_pools.get(tier_name, ())])
            mode = tier.capacity_buffer.mode if tier.capacity_buffer else "capacityBuffer"
            if mode == "placeholderPods":
                if placeholder_class is None:
                    pc = render.priority_class()
                    placeholder_class = k8s.scheduling.v1.PriorityClass(
                        child(name, "placeholder-priority"), metadata=pc["metadata"], value=pc["value"],
                        global_default=pc["globalDefault"], preemption_policy=pc["preemptionPolicy"],
                        description=pc["description"], opts=pulumi.ResourceOptions(parent=self))
                dep = render.placeholder_deployment(tier, chunk)
                k8s.apps.v1.Deployment(child(name, f"{tier_name}-placeholders"), metadata=dep["metadata"],
                                       spec=images.mirror_images(dep["spec"], args.mirror), opts=pulumi.ResourceOptions.merge(
                                           needs, pulumi.ResourceOptions(depends_on=[placeholder_class])))
            else:
                tpl = render.pod_template(tier, chunk)
                template = k8s.core.v1.PodTemplate(child(name, f"{tier_name}-template"), metadata=tpl["metadata"],
                                                   template=images.mirror_images(tpl["template"], args.mirror), opts=needs)
                buf = render.capacity_buffer(tier, chunk)
                k8s.apiextensions.CustomResource(
                    child(name, f"{tier_name}-buffer"), api_version="autoscaling.x-k8s.io/v1beta1",
                    kind="CapacityBuffer", metadata=buf["metadata"], spec=buf["spec"],
                    opts=pulumi.ResourceOptions.merge(needs, pulumi.ResourceOptions(depends_on=[template])))
            self.buffers[tier_name] = render.name(tier)
        self.register_outputs({"buffers": self.buffers})
