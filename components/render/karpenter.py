"""Karpenter v1.14: controller IAM policies, interruption queue, chart values, NodePools,
EC2NodeClass. Pure functions; sources in the comments (the upstream CloudFormation
``cloudformation.yaml`` of aws/karpenter-provider-aws v1.14.1 and the v1 CRDs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components import labels
from components.config import GpuTier
from components.render.addons import tier_node_labels
from components.render.node_levers import on_demand_types

SERVICE_ACCOUNT = "karpenter"
NAMESPACE = "kube-system"
NODE_CLASS_GROUP = "karpenter.k8s.aws"
NODE_ROLE_POLICIES = (
    "AmazonEKS_CNI_Policy",
    "AmazonEKSWorkerNodePolicy",
    # The v1 docs moved from ReadOnly to PullOnly.
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)

# source, detail-type of the five EventBridge rules feeding the interruption queue.
INTERRUPTION_RULES: dict[str, tuple[str, str]] = {
    "scheduled-change": ("aws.health", "AWS Health Event"),
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "capacity-reservation-interruption": ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
}


def event_pattern(rule: str) -> dict[str, list[str]]:
    source, detail_type = INTERRUPTION_RULES[rule]
    return {"source": [source], "detail-type": [detail_type]}


def queue_policy(queue_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Id": "EC2InterruptionPolicy",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyHTTP",
                "Effect": "Deny",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                "Principal": "*",
            },
        ],
    }


@dataclass(frozen=True)
class _Scope:
    """What the controller's permissions are scoped to."""

    partition: str
    region: str
    account: str
    cluster: str

    @property
    def ec2(self) -> str:
        return f"arn:{self.partition}:ec2:{self.region}:*"

    @property
    def owned(self) -> dict[str, str]:
        return {f"aws:ResourceTag/kubernetes.io/cluster/{self.cluster}": "owned"}

    @property
    def request_owned(self) -> dict[str, str]:
        return {f"aws:RequestTag/kubernetes.io/cluster/{self.cluster}": "owned",
                "aws:RequestTag/eks:eks-cluster-name": self.cluster}


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def controller_policies(
    *, partition: str, region: str, account: str, cluster: str, queue_arn: str, node_role_arn: str
) -> dict[str, dict[str, Any]]:
    """The v1 controller policy, split as upstream does (one document each, under IAM's size cap)."""
    scope = _Scope(partition, region, account, cluster)
    return {
        "node-lifecycle": _node_lifecycle(scope),
        "iam-integration": _iam_integration(scope, node_role_arn),
        "eks-integration": _doc(
            {"Sid": "AllowAPIServerEndpointDiscovery", "Effect": "Allow",
             "Resource": f"arn:{partition}:eks:{region}:{account}:cluster/{cluster}", "Action": "eks:DescribeCluster"},
        ),
        "interruption": _doc(
            {"Sid": "AllowInterruptionQueueActions", "Effect": "Allow", "Resource": queue_arn,
             "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"]},
        ),
        "resource-discovery": _resource_discovery(scope),
    }


def _node_lifecycle(scope: _Scope) -> dict[str, Any]:
    partition, region, cluster, arn = scope.partition, scope.region, scope.cluster, scope.ec2
    owned, request_owned = scope.owned, scope.request_owned
    tagged_types = [f"{arn}:{t}/*" for t in
                    ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")]
    return _doc(
        {"Sid": "AllowScopedEC2InstanceAccessActions", "Effect": "Allow",
         "Resource": [f"arn:{partition}:ec2:{region}::image/*", f"arn:{partition}:ec2:{region}::snapshot/*",
                      f"{arn}:security-group/*", f"{arn}:subnet/*", f"{arn}:capacity-reservation/*",
                      f"{arn}:placement-group/*"],
         "Action": ["ec2:RunInstances", "ec2:CreateFleet"]},
        {"Sid": "AllowScopedEC2LaunchTemplateAccessActions", "Effect": "Allow",
         "Resource": f"{arn}:launch-template/*",
         "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
         "Condition": {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedEC2InstanceActionsWithTags", "Effect": "Allow",
         "Resource": tagged_types,
         "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
         "Condition": {"StringEquals": request_owned,
                       "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedResourceCreationTagging", "Effect": "Allow",
         "Resource": tagged_types,
         "Action": "ec2:CreateTags",
         "Condition": {"StringEquals": {**request_owned,
                                        "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                       "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedResourceTagging", "Effect": "Allow",
         "Resource": f"{arn}:instance/*",
         "Action": "ec2:CreateTags",
         "Condition": {"StringEquals": owned,
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                       "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster},
                       "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}},
        {"Sid": "AllowScopedDeletion", "Effect": "Allow",
         "Resource": [f"{arn}:instance/*", f"{arn}:launch-template/*"],
         "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
         "Condition": {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
    )


def _iam_integration(scope: _Scope, node_role_arn: str) -> dict[str, Any]:
    partition, region, account = scope.partition, scope.region, scope.account
    owned, request_owned = scope.owned, scope.request_owned
    return _doc(
        {"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Resource": node_role_arn,
         "Action": "iam:PassRole",
         "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}},
        {"Sid": "AllowScopedInstanceProfileCreationActions", "Effect": "Allow",
         "Resource": f"arn:{partition}:iam::{account}:instance-profile/*",
         "Action": ["iam:CreateInstanceProfile"],
         "Condition": {"StringEquals": {**request_owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                       "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "AllowScopedInstanceProfileTagActions", "Effect": "Allow",
         "Resource": f"arn:{partition}:iam::{account}:instance-profile/*",
         "Action": ["iam:TagInstanceProfile"],
         "Condition": {"StringEquals": {**owned, "aws:ResourceTag/topology.kubernetes.io/region": region,
                                        **request_owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                       "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                      "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "AllowScopedInstanceProfileActions", "Effect": "Allow",
         "Resource": f"arn:{partition}:iam::{account}:instance-profile/*",
         "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
         "Condition": {"StringEquals": {**owned, "aws:ResourceTag/topology.kubernetes.io/region": region},
                       "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
    )


def _resource_discovery(scope: _Scope) -> dict[str, Any]:
    partition, region, account = scope.partition, scope.region, scope.account
    return _doc(
        {"Sid": "AllowRegionalReadActions", "Effect": "Allow", "Resource": "*",
         "Action": ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
         "Condition": {"StringEquals": {"aws:RequestedRegion": region}}},
        {"Sid": "AllowSSMReadActions", "Effect": "Allow",
         "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*", "Action": "ssm:GetParameter"},
        {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Resource": "*", "Action": "pricing:GetProducts"},
        {"Sid": "AllowUnscopedInstanceProfileListAction", "Effect": "Allow", "Resource": "*",
         "Action": "iam:ListInstanceProfiles"},
        {"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow",
         "Resource": f"arn:{partition}:iam::{account}:instance-profile/*", "Action": "iam:GetInstanceProfile"},
    )


def chart_values(*, cluster: str, region: str, queue_name: str, system_tolerations: list[dict],
                 system_selector: dict, feature_gates: Mapping[str, bool] | None = None) -> dict[str, Any]:
    """Controller chart values: identity by Pod Identity (no SA annotation), on the system nodes.

    The region comes from AWS_REGION: the system nodes' IMDS hop limit 1 keeps pods from
    looking it up."""
    return {
        "settings": {"clusterName": cluster, "interruptionQueue": queue_name,
                     **({"featureGates": dict(feature_gates)} if feature_gates else {})},
        # The Pod Identity association names this service account; keep it fixed.
        "serviceAccount": {"name": SERVICE_ACCOUNT},
        "controller": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                                     "limits": {"cpu": "1", "memory": "1Gi"}},
                       "env": [{"name": "AWS_REGION", "value": region}]},
        "replicas": 2,
        "nodeSelector": {"kubernetes.io/os": "linux", **system_selector},
        "tolerations": system_tolerations,
    }


def node_class_name(tier: GpuTier) -> str:
    return tier.name


def node_pool_name(tier: GpuTier, capacity: str) -> str:
    return f"{tier.name}-{capacity}"


def ec2_node_class(tier: GpuTier, *, node_role: Any, subnet_ids: Any, security_group_id: Any,
                   tags: Mapping[str, Any]) -> dict[str, Any]:
    """EC2NodeClass spec: pinned AL2023 alias (the NVIDIA variant is picked for GPU types),
    NVMe instance store as RAID0 under /mnt/k8s-disks/0, IMDSv2 only, encrypted gp3 root."""
    return {
        "role": node_role,
        "amiSelectorTerms": [{"alias": tier.ami_alias}],
        "subnetSelectorTerms": subnet_ids,
        "securityGroupSelectorTerms": [{"id": security_group_id}],
        "instanceStorePolicy": "RAID0",
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": tier.metadata_hop_limit,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [{
            "deviceName": "/dev/xvda",
            "rootVolume": True,
            "ebs": {"volumeSize": f"{tier.root_volume_gib}Gi", "volumeType": "gp3", "encrypted": True,
                    "deleteOnTermination": True},
        }],
        "tags": {**tags, labels.TIER: tier.name},
    }


def mig_config_name(tier: GpuTier) -> str | None:
    """The mig-parted config a tier's nodes select through the nvidia.com/mig.config label."""
    if tier.mig is None:
        return None
    return "custom-" + "-".join(f"{n}x{p.replace('.', '-')}" for p, n in sorted(tier.mig.profiles.items()))


def node_pools(tier: GpuTier, on_demand_gpu_limit: int) -> list[tuple[str, dict[str, Any]]]:
    """The tier's on-demand (baseline) and spot (burst) NodePools: (name, spec).

    ``on_demand_gpu_limit`` is the on-demand pool's ``nvidia.com/gpu`` limit, which depends on
    the services placed on the tier (``StackConfig.on_demand_gpu_limit``).
    """
    pools = []
    node_labels = {labels.TIER: tier.name, labels.GPU_PRESENT: "true", **tier_node_labels(tier)}
    if (mig := mig_config_name(tier)) is not None:
        node_labels[labels.MIG_CONFIG] = mig
    capacities = [
        ("on-demand", tier.on_demand.enabled, tier.on_demand.weight, on_demand_gpu_limit),
        ("spot", tier.spot.enabled, tier.spot.weight, tier.spot.gpu_limit),
    ]
    for capacity, enabled, weight, gpu_limit in capacities:
        if not enabled:
            continue
        budgets = [
            {k: v for k, v in {"nodes": b.nodes, "reasons": list(b.reasons) or None,
                               "schedule": b.schedule, "duration": b.duration}.items() if v is not None}
            for b in tier.disruption_budgets
        ]
        spec = {
            "weight": weight,
            "limits": {labels.GPU_RESOURCE: str(gpu_limit)},
            "disruption": {
                "consolidationPolicy": tier.consolidation_policy,
                "consolidateAfter": tier.consolidate_after,
                "budgets": budgets,
            },
            "template": {
                "metadata": {"labels": node_labels},
                "spec": {
                    "nodeClassRef": {"group": NODE_CLASS_GROUP, "kind": "EC2NodeClass", "name": node_class_name(tier)},
                    # Expiry is forceful: budgets do not hold it back and no replacement is launched
                    # first; terminationGracePeriod bounds how long the drain may take (a node lives
                    # at most expireAfter + terminationGracePeriod).
                    "expireAfter": tier.expire_after,
                    "terminationGracePeriod": tier.termination_grace_period,
                    "taints": [{"key": labels.GPU_TAINT_KEY, "value": "true", "effect": "NoSchedule"}],
                    "requirements": [
                        {"key": labels.CAPACITY_TYPE, "operator": "In",
                         "values": on_demand_types(tier) if capacity == "on-demand" else [capacity]},
                        {"key": labels.INSTANCE_TYPE, "operator": "In", "values": list(tier.instance_types)},
                        {"key": labels.GPU_NAME, "operator": "In", "values": [tier.gpu]},
                        # The model cache lives on instance-store NVMe: never launch without it.
                        {"key": labels.INSTANCE_LOCAL_NVME, "operator": "Gt", "values": ["0"]},
                        {"key": labels.ARCH, "operator": "In", "values": ["amd64"]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    ],
                },
            },
        }
        pools.append((node_pool_name(tier, capacity), spec))
    return pools
