"""Cluster and GPU capacity: EKS, system nodes, Karpenter IAM and interruption handling,
EC2NodeClass and on-demand/spot NodePools."""

from __future__ import annotations

import json

import pytest

from components.render import karpenter as render
from tests.conftest import (
    STACKS,
    build,
    by_type,
    custom_resources,
    load,
    load_plain_prod,
    load_with,
    release,
)


@pytest.fixture(scope="module")
def prod():
    return build(load("prod"))


def test_eks_cluster_settings(prod):
    (cluster,) = by_type(prod, "eks:index:Cluster")
    i = cluster.inputs
    assert i["authenticationMode"] == "API"
    assert i["skipDefaultNodeGroup"] is True
    assert i["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    assert i["encryptionConfigKeyArn"].startswith("arn:aws:kms:us-east-1:")
    assert i["publicAccessCidrs"] == ["198.51.100.0/24"] and i["endpointPrivateAccess"] is True
    (addon,) = by_type(prod, "eks:index:Addon")
    assert addon.inputs["addonName"] == "eks-pod-identity-agent"


def test_network_per_az_nat_in_prod_single_in_dev(prod):
    assert len(by_type(prod, "aws:ec2/natGateway:NatGateway")) == 3
    assert len(by_type(prod, "aws:ec2/subnet:Subnet")) == 6
    dev = build(load("dev"))
    assert len(by_type(dev, "aws:ec2/natGateway:NatGateway")) == 1
    tags = [s.inputs["tags"] for s in by_type(prod, "aws:ec2/subnet:Subnet")]
    assert sum("kubernetes.io/role/elb" in t for t in tags) == 3
    assert sum(t.get("kubernetes.io/role/internal-elb") == "1" for t in tags) == 3


def test_existing_vpc_creates_no_network():
    cfg = load_with("dev", lambda v: v["cluster"]["network"].update(existing={
        "vpcId": "vpc-0abc", "privateSubnetIds": ["subnet-01", "subnet-02"], "publicSubnetIds": ["subnet-03"]}))
    result = build(cfg)
    assert by_type(result, "aws:ec2/vpc:Vpc") == [] and by_type(result, "aws:ec2/subnet:Subnet") == []
    (cluster,) = by_type(result, "eks:index:Cluster")
    assert cluster.inputs["vpcId"] == "vpc-0abc" and cluster.inputs["privateSubnetIds"] == ["subnet-01", "subnet-02"]
    (nc, *_) = custom_resources(result, "EC2NodeClass")
    assert nc["spec"]["subnetSelectorTerms"] == [{"id": "subnet-01"}, {"id": "subnet-02"}]


def test_system_node_group(prod):
    (mng,) = by_type(prod, "eks:index:ManagedNodeGroup")
    i = mng.inputs
    assert i["amiType"] == "AL2023_x86_64_STANDARD" and i["capacityType"] == "ON_DEMAND"
    assert i["taints"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    assert i["scalingConfig"]["minSize"] >= 2
    (cluster,) = by_type(prod, "eks:index:Cluster")
    assert i["subnetIds"] == cluster.inputs["privateSubnetIds"]


def test_node_roles_are_separate_and_karpenter_nodes_get_an_access_entry(prod):
    (entry,) = by_type(prod, "aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["type"] == "EC2_LINUX"
    roles = {r.name: r.outputs["arn"] for r in by_type(prod, "aws:iam/role:Role")}
    assert entry.inputs["principalArn"] == roles["llm-prod-karpenter-node"]
    assert roles["llm-prod-karpenter-node"] != roles["llm-prod-cluster-system-node"]
    attached = sorted(a.inputs["policyArn"].rsplit("/", 1)[1] for a in by_type(prod, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                      if a.name.startswith("llm-prod-karpenter-node-"))
    assert attached == sorted(render.NODE_ROLE_POLICIES)


def test_interruption_queue_and_the_five_rules(prod):
    (queue,) = by_type(prod, "aws:sqs/queue:Queue")
    assert queue.inputs["messageRetentionSeconds"] == 300 and queue.inputs["sqsManagedSseEnabled"] is True
    (qp,) = by_type(prod, "aws:sqs/queuePolicy:QueuePolicy")
    deny = [s for s in json.loads(qp.inputs["policy"])["Statement"] if s.get("Sid") == "DenyHTTP"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    patterns = sorted(json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in by_type(prod, "aws:cloudwatch/eventRule:EventRule"))
    assert patterns == sorted([
        "AWS Health Event", "EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification", "EC2 Capacity Reservation Instance Interruption Warning"])
    targets = by_type(prod, "aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == 5 and {t.inputs["arn"] for t in targets} == {queue.outputs["arn"]}
    values = release(prod, "karpenter")["values"]
    assert values["settings"] == {"clusterName": "llm-prod", "interruptionQueue": queue.outputs["name"]}


# The upstream v1.14.1 controller policy, statement by statement (Sid -> actions, condition keys),
# transcribed from the CloudFormation template's six managed policies (zonal shift left out:
# settings.enableZonalShift is off).
UPSTREAM_STATEMENTS = {
    "AllowScopedEC2InstanceAccessActions": ({"ec2:RunInstances", "ec2:CreateFleet"}, set()),
    "AllowScopedEC2LaunchTemplateAccessActions": ({"ec2:RunInstances", "ec2:CreateFleet"},
        {"aws:ResourceTag/kubernetes.io/cluster/llm-prod", "aws:ResourceTag/karpenter.sh/nodepool"}),
    "AllowScopedEC2InstanceActionsWithTags": ({"ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"},
        {"aws:RequestTag/kubernetes.io/cluster/llm-prod", "aws:RequestTag/eks:eks-cluster-name", "aws:RequestTag/karpenter.sh/nodepool"}),
    "AllowScopedResourceCreationTagging": ({"ec2:CreateTags"},
        {"aws:RequestTag/kubernetes.io/cluster/llm-prod", "aws:RequestTag/eks:eks-cluster-name", "aws:RequestTag/karpenter.sh/nodepool", "ec2:CreateAction"}),
    "AllowScopedResourceTagging": ({"ec2:CreateTags"},
        {"aws:ResourceTag/kubernetes.io/cluster/llm-prod", "aws:ResourceTag/karpenter.sh/nodepool", "aws:RequestTag/eks:eks-cluster-name", "aws:TagKeys"}),
    "AllowScopedDeletion": ({"ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"},
        {"aws:ResourceTag/kubernetes.io/cluster/llm-prod", "aws:ResourceTag/karpenter.sh/nodepool"}),
    "AllowPassingInstanceRole": ({"iam:PassRole"}, {"iam:PassedToService"}),
    "AllowScopedInstanceProfileCreationActions": ({"iam:CreateInstanceProfile"},
        {"aws:RequestTag/kubernetes.io/cluster/llm-prod", "aws:RequestTag/eks:eks-cluster-name",
         "aws:RequestTag/topology.kubernetes.io/region", "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass"}),
    "AllowScopedInstanceProfileTagActions": ({"iam:TagInstanceProfile"},
        {"aws:ResourceTag/kubernetes.io/cluster/llm-prod", "aws:ResourceTag/topology.kubernetes.io/region",
         "aws:RequestTag/kubernetes.io/cluster/llm-prod", "aws:RequestTag/eks:eks-cluster-name",
         "aws:RequestTag/topology.kubernetes.io/region", "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass",
         "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass"}),
    "AllowScopedInstanceProfileActions": ({"iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"},
        {"aws:ResourceTag/kubernetes.io/cluster/llm-prod", "aws:ResourceTag/topology.kubernetes.io/region",
         "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass"}),
    "AllowAPIServerEndpointDiscovery": ({"eks:DescribeCluster"}, set()),
    "AllowInterruptionQueueActions": ({"sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"}, set()),
    "AllowRegionalReadActions": ({"ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
        "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
        "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
        "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"}, {"aws:RequestedRegion"}),
    "AllowSSMReadActions": ({"ssm:GetParameter"}, set()),
    "AllowPricingReadActions": ({"pricing:GetProducts"}, set()),
    "AllowUnscopedInstanceProfileListAction": ({"iam:ListInstanceProfiles"}, set()),
    "AllowInstanceProfileReadActions": ({"iam:GetInstanceProfile"}, set()),
}


def _as_set(v) -> set:
    return set(v) if isinstance(v, list) else {v}


def test_controller_policy_matches_upstream_statement_by_statement(prod):
    statements = {}
    for p in by_type(prod, "aws:iam/policy:Policy"):
        for st in json.loads(p.inputs["policy"])["Statement"]:
            statements[st["Sid"]] = st
    assert set(statements) == set(UPSTREAM_STATEMENTS)
    for sid, (actions, condition_keys) in UPSTREAM_STATEMENTS.items():
        st = statements[sid]
        assert _as_set(st["Action"]) == actions, sid
        keys = {k for op in st.get("Condition", {}).values() for k in op}
        assert keys == condition_keys, sid
    (queue,) = by_type(prod, "aws:sqs/queue:Queue")
    assert statements["AllowInterruptionQueueActions"]["Resource"] == queue.outputs["arn"]
    node_role = next(r for r in by_type(prod, "aws:iam/role:Role") if r.name == "llm-prod-karpenter-node")
    assert statements["AllowPassingInstanceRole"]["Resource"] == node_role.outputs["arn"]
    assert statements["AllowAPIServerEndpointDiscovery"]["Resource"] == "arn:aws:eks:us-east-1:123456789012:cluster/llm-prod"
    # Five documents, each under IAM's 6,144-character managed policy limit.
    sizes = [len(json.dumps(json.loads(p.inputs["policy"]), separators=(",", ":"))) for p in by_type(prod, "aws:iam/policy:Policy")]
    assert len(sizes) == 5 and max(sizes) < 6144


def test_controller_identity_is_pod_identity(prod):
    (assoc,) = [a for a in by_type(prod, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
                if a.inputs["serviceAccount"] == "karpenter"]
    assert (assoc.inputs["namespace"], assoc.inputs["serviceAccount"]) == ("kube-system", "karpenter")
    role = next(r for r in by_type(prod, "aws:iam/role:Role") if r.name == "llm-prod-karpenter-controller")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"} and trust["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert assoc.inputs["roleArn"] == role.outputs["arn"]


def test_karpenter_charts_pinned_and_ordered(prod):
    crd, ctrl = release(prod, "karpenter-crd"), release(prod, "karpenter")
    assert crd["version"] == ctrl["version"] == "1.14.1"
    assert ctrl["skipCrds"] is True and not crd.get("skipCrds")
    rel = next(r for r in prod.resources if r.inputs.get("name") == "karpenter")
    crd_urn = next(r.urn for r in prod.resources if r.inputs.get("name") == "karpenter-crd")
    assoc_urn = by_type(prod, "aws:eks/podIdentityAssociation:PodIdentityAssociation")[0].urn
    assert crd_urn in rel.depends_on and assoc_urn in rel.depends_on
    for np in by_type(prod, "kubernetes:karpenter.sh/v1:NodePool"):
        assert rel.urn in np.depends_on


@pytest.mark.parametrize("stack", STACKS)
def test_two_pools_per_tier_with_on_demand_first(stack):
    cfg = load(stack)
    result = build(cfg)
    pools = {p["metadata"]["name"]: p["spec"] for p in custom_resources(result, "NodePool")}
    classes = {c["metadata"]["name"]: c["spec"] for c in custom_resources(result, "EC2NodeClass")}
    # Plus the general-purpose class of the routers' NodePool when a service is routed (test_router.py).
    general = {"general"} if any(s.routing.mode == "router" for s in cfg.model_services) else set()
    assert set(classes) == {t.name for t in cfg.gpu_tiers} | general
    for t in cfg.gpu_tiers:
        od = pools[f"{t.name}-on-demand"]
        # A tier with capacity reservations also takes reserved capacity (preferred by Karpenter).
        types = ["on-demand", "reserved"] if t.reservations is not None else ["on-demand"]
        assert od["template"]["spec"]["requirements"][0] == {"key": "karpenter.sh/capacity-type", "operator": "In", "values": types}
        assert {"key": "karpenter.k8s.aws/instance-local-nvme", "operator": "Gt", "values": ["0"]} in od["template"]["spec"]["requirements"]
        assert od["template"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
        assert od["limits"]["nvidia.com/gpu"] == str(cfg.on_demand_gpu_limit(t.name))
        if t.spot.enabled:
            spot = pools[f"{t.name}-spot"]
            assert od["weight"] > spot["weight"]
            assert spot["template"]["spec"]["requirements"][0]["values"] == ["spot"]
        else:
            assert f"{t.name}-spot" not in pools
        nc = classes[t.name]
        assert nc["instanceStorePolicy"] == "RAID0" and nc["metadataOptions"]["httpTokens"] == "required"
        assert nc["blockDeviceMappings"][0]["ebs"]["encrypted"] is True
        assert nc["amiSelectorTerms"] == [{"alias": t.ami_alias}]


def test_gpu_limits_are_derived_from_the_services():
    cfg = load_plain_prod()
    pools = {p["metadata"]["name"]: p["spec"] for p in custom_resources(build(cfg), "NodePool")}
    # 2 baseline + 6 fallback burst + 2 surge + 1 replacement node + 1 headroom
    assert pools["l40s-on-demand"]["limits"]["nvidia.com/gpu"] == "12"
    # (4 baseline + 1 burst + 2 surge) x 4 + one p5.48xlarge (8), in whole p5 nodes: five
    assert pools["h100-on-demand"]["limits"]["nvidia.com/gpu"] == "40"
    bigger = load_plain_prod(lambda v: v["modelServices"][0]["scaling"].update(maxReplicas=10))
    pools = {p["metadata"]["name"]: p["spec"] for p in custom_resources(build(bigger), "NodePool")}
    assert pools["l40s-on-demand"]["limits"]["nvidia.com/gpu"] == "14"
    # A capacity buffer of one chat-8b replica adds its whole warm g6e node (1 GPU).
    buffered = load_plain_prod(lambda v: v["gpuTiers"][0].update(capacityBuffer={"service": "chat-8b"}))
    pools = {p["metadata"]["name"]: p["spec"] for p in custom_resources(build(buffered), "NodePool")}
    assert pools["l40s-on-demand"]["limits"]["nvidia.com/gpu"] == "13"


def test_prod_budgets_disrupt_one_node_and_none_in_business_hours():
    pools = custom_resources(build(load("prod")), "NodePool")
    for p in pools:
        budgets = p["spec"]["disruption"]["budgets"]
        assert {"nodes": "1"} in budgets
        # The freeze names its reasons, so Empty nodes are still removed during business hours.
        assert {"nodes": "0", "reasons": ["Underutilized", "Drifted"], "schedule": "0 8 * * 1-5",
                "duration": "12h"} in budgets
        # Expiry ignores budgets; the node grace period bounds its drain.
        assert p["spec"]["template"]["spec"]["expireAfter"] == "720h"
        assert p["spec"]["template"]["spec"]["terminationGracePeriod"] == "1h"
        assert p["spec"]["disruption"]["consolidateAfter"] == "15m"
