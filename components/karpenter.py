"""Karpenter: controller identity (Pod Identity), node role, interruption queue and rules,
both charts at one pinned version, and per GPU tier one EC2NodeClass plus an on-demand
(baseline) and a spot (burst) NodePool."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import helm, versions
from components.cluster import SYSTEM_NODE_SELECTOR, SYSTEM_TOLERATIONS, ClusterRef
from components.config import GpuTier, PullThroughCacheConfig
from components.config.levers import FastImagePull
from components.egress import node_pull_through_policy
from components.naming import child
from components.render import general_pool, node_levers
from components.render import karpenter as render
from components.render.iam import MANAGED, assume_role, pod_identity_trust


@dataclass(frozen=True)
class KarpenterArgs:
    cluster: ClusterRef
    """The cluster Karpenter provisions nodes for (``GpuCluster.ref()``)."""
    region: str
    """AWS region of the cluster (the controller's IAM policy is scoped to it)."""
    tiers: tuple[GpuTier, ...]
    """GPU tiers: one EC2NodeClass and an on-demand and a spot NodePool each."""
    on_demand_gpu_limits: Mapping[str, int]
    """tier name -> the on-demand NodePool's nvidia.com/gpu limit (``StackConfig.on_demand_gpu_limit``)."""
    tags: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """AWS tags on every taggable resource."""
    pull_through_cache: PullThroughCacheConfig = field(default_factory=PullThroughCacheConfig)
    """The stack's ECR pull-through cache: when on, the node role may pull through its rules."""
    fast_image_pull: FastImagePull = field(default_factory=FastImagePull)
    """``cluster.fastImagePull``: the GPU node classes' nodeadm feature gate and root-volume performance."""
    general_cpu_millicores: int = 0
    """CPU the non-GPU workloads (routers) request; above 0, a general-purpose on-demand NodePool
    sized for it is created (``render/general_pool.py``)."""


class Karpenter(pulumi.ComponentResource):
    """Karpenter v1 with GPU NodePools: an on-demand baseline pool and a spot burst pool per tier."""

    node_role_name: pulumi.Output[str]
    """IAM role of Karpenter-launched nodes (an EC2_LINUX access entry)."""
    interruption_queue_name: pulumi.Output[str]
    """SQS queue receiving spot interruption, rebalance, health and state-change events."""
    node_pools: dict[str, dict[str, str]]
    """tier -> capacity type (on-demand | spot) -> NodePool name."""
    release: k8s.helm.v3.Release
    """The controller release; custom resources that need Karpenter depend on it."""
    general_capacity: tuple[pulumi.Resource, ...]
    """The general-purpose EC2NodeClass and NodePool (empty when no workload needs them)."""
    tier_capacity: dict[str, tuple[pulumi.Resource, ...]]
    """tier -> its EC2NodeClass and NodePools: GPU workloads of the tier depend on them, so their
    pods are never created before Karpenter can launch a node for them."""

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:capacity:Karpenter", name, None, opts)
        node_role, node_access = self._node_identity(name, args)
        queue = self._interruption_queue(name, args)
        association = self._controller_identity(name, args, queue, node_role)
        crds = helm.release(child(name, "crd"), versions.KARPENTER_CRD, release_name="karpenter-crd",
                            namespace=render.NAMESPACE, opts=pulumi.ResourceOptions(parent=self))
        self.release = helm.release(
            child(name, "controller"), versions.KARPENTER, release_name="karpenter", namespace=render.NAMESPACE,
            values=queue.name.apply(lambda q: render.chart_values(
                cluster=args.cluster.name, region=args.region, queue_name=q, system_tolerations=SYSTEM_TOLERATIONS,
                system_selector=SYSTEM_NODE_SELECTOR, feature_gates=node_levers.feature_gates(args.tiers))),
            # CRDs come from the karpenter-crd chart, which upgrades them; Helm never does.
            skip_crds=True,
            # The Pod Identity agent too: a controller pod started before it runs without credentials.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[crds, association, *args.cluster.system_nodes,
                                                                 *args.cluster.pod_identity, node_access]),
        )
        capacity = {tier.name: self._tier_capacity(name, args, tier, node_role) for tier in args.tiers}
        self.node_pools = {tier: pools for tier, (pools, _) in capacity.items()}
        self.tier_capacity = {tier: resources for tier, (_, resources) in capacity.items()}
        self.general_capacity = self._general_capacity(name, args, node_role) if args.general_cpu_millicores else ()
        self.node_role_name = node_role.name
        self.interruption_queue_name = queue.name
        self.register_outputs({"node_role_name": self.node_role_name,
                               "interruption_queue_name": self.interruption_queue_name,
                               "node_pools": self.node_pools, "release": self.release,
                               "tier_capacity": self.tier_capacity, "general_capacity": self.general_capacity})

    def _node_identity(self, name: str, args: KarpenterArgs) -> tuple[aws.iam.Role, aws.eks.AccessEntry]:
        """The role Karpenter's nodes run as, and its access entry to the cluster."""
        p = pulumi.ResourceOptions(parent=self)
        node_role = aws.iam.Role(child(name, "node"), assume_role_policy=json.dumps(assume_role("ec2.amazonaws.com")),
                                 description=f"{args.cluster.name} Karpenter nodes", tags=dict(args.tags), opts=p)
        for managed in render.NODE_ROLE_POLICIES:
            aws.iam.RolePolicyAttachment(child(name, f"node-{managed}"), role=node_role.name,
                                         policy_arn=f"{MANAGED}/{managed}", opts=p)
        self._pull_policy = node_pull_through_policy(self, child(name, "node"), node_role, args.pull_through_cache,
                                                     args.region)
        # A separate role from the system node group's: one principal, one access entry.
        node_access = aws.eks.AccessEntry(child(name, "node"), cluster_name=args.cluster.ready_name,
                                          principal_arn=node_role.arn, type="EC2_LINUX", opts=p)
        return node_role, node_access

    def _interruption_queue(self, name: str, args: KarpenterArgs) -> aws.sqs.Queue:
        """The SQS queue and the EventBridge rules that feed it (spot notices, rebalance, health)."""
        p, tags = pulumi.ResourceOptions(parent=self), dict(args.tags)
        queue = aws.sqs.Queue(child(name, "interruption"), name=f"{args.cluster.name}-karpenter",
                              message_retention_seconds=300, sqs_managed_sse_enabled=True, tags=tags, opts=p)
        aws.sqs.QueuePolicy(child(name, "interruption"), queue_url=queue.url,
                            policy=queue.arn.apply(lambda arn: json.dumps(render.queue_policy(arn))), opts=p)
        for rule in render.INTERRUPTION_RULES:
            event_rule = aws.cloudwatch.EventRule(child(name, rule), event_pattern=json.dumps(render.event_pattern(rule)),
                                                  description=f"Karpenter interruption: {rule}", tags=tags, opts=p)
            aws.cloudwatch.EventTarget(child(name, rule), rule=event_rule.name, arn=queue.arn,
                                       target_id="KarpenterInterruptionQueueTarget", opts=p)
        return queue

    def _controller_identity(self, name: str, args: KarpenterArgs, queue: aws.sqs.Queue,
                             node_role: aws.iam.Role) -> aws.eks.PodIdentityAssociation:
        """The controller's IAM role and policies, bound to its service account by Pod Identity."""
        p, tags, cluster_name = pulumi.ResourceOptions(parent=self), dict(args.tags), args.cluster.name
        identity = aws.get_caller_identity()
        partition = aws.get_partition().partition
        controller_role = aws.iam.Role(child(name, "controller"), assume_role_policy=json.dumps(pod_identity_trust()),
                                       description=f"{cluster_name} Karpenter controller", tags=tags, opts=p)
        documents = pulumi.Output.all(queue.arn, node_role.arn).apply(
            lambda a: render.controller_policies(partition=partition, region=args.region, account=identity.account_id,
                                                 cluster=cluster_name, queue_arn=a[0], node_role_arn=a[1]))
        for key in ("node-lifecycle", "iam-integration", "eks-integration", "interruption", "resource-discovery"):
            policy = aws.iam.Policy(child(name, f"controller-{key}"), description=f"Karpenter controller: {key}",
                                    policy=documents.apply(lambda d, k=key: json.dumps(d[k])),  # type: ignore[misc]
                                    tags=tags, opts=p)
            aws.iam.RolePolicyAttachment(child(name, f"controller-{key}"), role=controller_role.name,
                                         policy_arn=policy.arn, opts=p)
        return aws.eks.PodIdentityAssociation(
            child(name, "controller"), cluster_name=args.cluster.ready_name, namespace=render.NAMESPACE,
            service_account=render.SERVICE_ACCOUNT, role_arn=controller_role.arn, tags=tags, opts=p)

    def _general_capacity(self, name: str, args: KarpenterArgs,
                          node_role: aws.iam.Role) -> tuple[pulumi.Resource, ...]:
        """EC2NodeClass and NodePool for the routers, on the first tier's pinned AMI alias."""
        subnets = pulumi.Output.from_input(args.cluster.private_subnet_ids).apply(lambda ids: [{"id": i} for i in ids])
        node_class = k8s.apiextensions.CustomResource(
            child(name, "general-nodeclass"), api_version="karpenter.k8s.aws/v1", kind="EC2NodeClass",
            metadata={"name": general_pool.NAME},
            spec=general_pool.ec2_node_class(ami_alias=args.tiers[0].ami_alias, node_role=node_role.name,
                                             subnet_ids=subnets, security_group_id=args.cluster.node_security_group_id,
                                             tags=dict(args.tags)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]))
        pool = k8s.apiextensions.CustomResource(
            child(name, "general"), api_version="karpenter.sh/v1", kind="NodePool", metadata={"name": general_pool.NAME},
            spec=general_pool.node_pool(general_pool.cpu_limit(args.general_cpu_millicores), args.tiers[0]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, node_class]))
        return node_class, pool

    def _tier_capacity(self, name: str, args: KarpenterArgs, tier: GpuTier,
                       node_role: aws.iam.Role) -> tuple[dict[str, str], tuple[pulumi.Resource, ...]]:
        """The tier's EC2NodeClass and NodePools; returns capacity type -> NodePool name, and the
        resources (node class first)."""
        subnets = pulumi.Output.from_input(args.cluster.private_subnet_ids).apply(lambda ids: [{"id": i} for i in ids])
        node_class = k8s.apiextensions.CustomResource(
            child(name, f"{tier.name}-nodeclass"), api_version="karpenter.k8s.aws/v1", kind="EC2NodeClass",
            metadata={"name": render.node_class_name(tier)},
            spec=node_levers.apply_node_class(
                render.ec2_node_class(tier, node_role=node_role.name, subnet_ids=subnets,
                                      security_group_id=args.cluster.node_security_group_id, tags=dict(args.tags)),
                tier, args.fast_image_pull),
            # Nodes of the class pull through the cache: the node role's right to comes first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, *filter(None, [self._pull_policy])]))
        pools = {}
        resources: list[pulumi.Resource] = [node_class]
        for pool_name, spec in render.node_pools(tier, args.on_demand_gpu_limits[tier.name]):
            resources.append(k8s.apiextensions.CustomResource(
                child(name, pool_name), api_version="karpenter.sh/v1", kind="NodePool",
                metadata={"name": pool_name}, spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, node_class])))
            pools[pool_name.removeprefix(f"{tier.name}-")] = pool_name
        return pools, tuple(resources)
