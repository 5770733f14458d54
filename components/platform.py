"""Platform: every component of one environment, wired in dependency order."""

from __future__ import annotations

import pulumi

from components.cluster import GpuCluster
from components.config import StackConfig
from components.karpenter import Karpenter
from components.naming import child


class Platform(pulumi.ComponentResource):
    """The whole GPU inference platform for one stack."""

    cluster: GpuCluster
    """The EKS cluster, its network and system nodes."""
    karpenter: Karpenter
    """Karpenter and the GPU NodePools."""

    def __init__(self, name: str, args: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:index:Platform", name, None, opts)
        p = pulumi.ResourceOptions(parent=self)
        self.cluster = GpuCluster(child(name, "cluster"), args, opts=p)
        # Everything in the cluster inherits its Kubernetes provider through the parent.
        in_cluster = pulumi.ResourceOptions(parent=self, providers=[self.cluster.provider])
        self.karpenter = Karpenter(child(name, "karpenter"), args, self.cluster, opts=in_cluster)
        self.outputs: dict[str, pulumi.Input[object]] = {
            "clusterName": self.cluster.cluster_name,
            "kubeconfig": self.cluster.kubeconfig,
            "oidcIssuer": self.cluster.oidc_issuer,
            "nodePools": self.karpenter.node_pools,
            "gpuTiers": [t.name for t in args.gpu_tiers],
            "karpenterNodeRoleName": self.karpenter.node_role_name,
            "interruptionQueueName": self.karpenter.interruption_queue_name,
            "environment": args.environment,
            "region": args.region,
        }
        self.register_outputs(self.outputs)
