"""KEDA: operator, metrics server (it owns the external metrics API) and admission webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import helm, versions
from components.cluster import SYSTEM_PLACEMENT
from components.config import KedaConfig
from components.naming import child
from components.render import addons as render
from components.render import chart_images
from components.render.images import Mirror


@dataclass(frozen=True)
class KedaArgs:
    config: KedaConfig
    """Operator replicas."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What the chart waits for: the nodes it is pinned to (the system node group)."""
    mirror: Mirror | None = None
    """The stack's ECR pull-through cache: chart images whose registry the chart lets us set go through it."""


class Keda(pulumi.ComponentResource):
    """KEDA on the system nodes; ScaledObjects and ScaledJobs depend on ``release``."""

    namespace: pulumi.Output[str]
    """The KEDA namespace."""
    release: k8s.helm.v3.Release
    """The KEDA release (its CRDs come with it)."""

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:addons:Keda", name, None, opts)
        ns = helm.namespace(child(name, "namespace"), render.KEDA_NAMESPACE, pulumi.ResourceOptions(parent=self))
        self.release = helm.release(child(name, "keda"), versions.KEDA, release_name="keda",
                                    namespace=render.KEDA_NAMESPACE, values=chart_images.merge(
                                        render.keda(args.config, SYSTEM_PLACEMENT),
                                        chart_images.overrides(chart_images.KEDA, args.mirror)),
                                    opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, *args.depends_on]))
        self.namespace = self.release.status.apply(lambda _: render.KEDA_NAMESPACE)
        self.register_outputs({"namespace": self.namespace, "release": self.release})
