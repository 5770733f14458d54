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
from components.config import GpuTier
from components.naming import child
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
    create_spot_service_linked_role: bool = False
    """Create AWSServiceRoleForEC2Spot (exists once per account)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """AWS tags on every taggable resource."""


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

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:capacity:Karpenter", name, None, opts)
        p = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster
        cluster_name = cluster.name
        tags = dict(args.tags)
        identity = aws.get_caller_identity()
        partition = aws.get_partition().partition

        node_role = aws.iam.Role(child(name, "node"), assume_role_policy=json.dumps(assume_role("ec2.amazonaws.com")),
                                 description=f"{cluster_name} Karpenter nodes", tags=tags, opts=p)
        for policy in render.NODE_ROLE_POLICIES:
            aws.iam.RolePolicyAttachment(child(name, f"node-{policy}"), role=node_role.name,
                                         policy_arn=f"{MANAGED}/{policy}", opts=p)
        # A separate role from the system node group's: one principal, one access entry.
        node_access = aws.eks.AccessEntry(child(name, "node"), cluster_name=cluster.ready_name,
                                          principal_arn=node_role.arn, type="EC2_LINUX", opts=p)

        queue = aws.sqs.Queue(child(name, "interruption"), name=f"{cluster_name}-karpenter",
                              message_retention_seconds=300, sqs_managed_sse_enabled=True, tags=tags, opts=p)
        aws.sqs.QueuePolicy(child(name, "interruption"), queue_url=queue.url,
                            policy=queue.arn.apply(lambda arn: json.dumps(render.queue_policy(arn))), opts=p)
        for rule in render.INTERRUPTION_RULES:
            event_rule = aws.cloudwatch.EventRule(child(name, rule), event_pattern=json.dumps(render.event_pattern(rule)),
                                                  description=f"Karpenter interruption: {rule}", tags=tags, opts=p)
            aws.cloudwatch.EventTarget(child(name, rule), rule=event_rule.name, arn=queue.arn,
                                       target_id="KarpenterInterruptionQueueTarget", opts=p)
        if args.create_spot_service_linked_role:
            aws.iam.ServiceLinkedRole(child(name, "spot"), aws_service_name="spot.amazonaws.com", opts=p)

        controller_role = aws.iam.Role(child(name, "controller"), assume_role_policy=json.dumps(pod_identity_trust()),
                                       description=f"{cluster_name} Karpenter controller", tags=tags, opts=p)
        documents = pulumi.Output.all(queue.arn, node_role.arn).apply(
            lambda a: render.controller_policies(partition=partition, region=args.region, account=identity.account_id,
                                                 cluster=cluster_name, queue_arn=a[0], node_role_arn=a[1]))
        for key in ("node-lifecycle", "iam-integration", "eks-integration", "interruption", "resource-discovery"):
            policy = aws.iam.Policy(child(name, f"controller-{key}"), description=f"Karpenter controller: {key}",
                                    policy=documents.apply(lambda d, k=key: json.dumps(d[k])), tags=tags, opts=p)
            aws.iam.RolePolicyAttachment(child(name, f"controller-{key}"), role=controller_role.name,
                                         policy_arn=policy.arn, opts=p)
        association = aws.eks.PodIdentityAssociation(
            child(name, "controller"), cluster_name=cluster.ready_name, namespace=render.NAMESPACE,
            service_account=render.SERVICE_ACCOUNT, role_arn=controller_role.arn, tags=tags, opts=p)

        crds = helm.release(child(name, "crd"), versions.KARPENTER_CRD, release_name="karpenter-crd",
                            namespace=render.NAMESPACE, opts=p)
        self.release = helm.release(
            child(name, "controller"), versions.KARPENTER, release_name="karpenter", namespace=render.NAMESPACE,
            values=queue.name.apply(lambda q: render.chart_values(
                cluster=cluster_name, queue_name=q, system_tolerations=SYSTEM_TOLERATIONS,
                system_selector=SYSTEM_NODE_SELECTOR)),
            # CRDs come from the karpenter-crd chart, which upgrades them; Helm never does.
            skip_crds=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[crds, association, *cluster.system_nodes, node_access]),
        )

        after = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        self.node_pools = {}
        for tier in args.tiers:
            node_class = k8s.apiextensions.CustomResource(
                child(name, f"{tier.name}-nodeclass"), api_version="karpenter.k8s.aws/v1", kind="EC2NodeClass",
                metadata={"name": render.node_class_name(tier)},
                spec=render.ec2_node_class(
                    tier, node_role=node_role.name,
                    subnet_ids=pulumi.Output.from_input(cluster.private_subnet_ids).apply(lambda ids: [{"id": i} for i in ids]),
                    security_group_id=cluster.node_security_group_id, tags=tags),
                opts=after)
            self.node_pools[tier.name] = {}
            for pool_name, spec in render.node_pools(tier, args.on_demand_gpu_limits[tier.name]):
                k8s.apiextensions.CustomResource(
                    child(name, pool_name), api_version="karpenter.sh/v1", kind="NodePool",
                    metadata={"name": pool_name}, spec=spec,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, node_class]))
                self.node_pools[tier.name][pool_name.removeprefix(f"{tier.name}-")] = pool_name

        self.node_role_name = node_role.name
        self.interruption_queue_name = queue.name
        self.register_outputs({"node_role_name": self.node_role_name,
                               "interruption_queue_name": self.interruption_queue_name,
                               "node_pools": self.node_pools, "release": self.release})
