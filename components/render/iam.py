"""IAM policy documents as plain dicts (serialized with json.dumps where AWS wants a string)."""

from __future__ import annotations

from typing import Any

from platform_facts import registries

MANAGED = "arn:aws:iam::aws:policy"
NODE_POLICIES = (
    f"{MANAGED}/AmazonEKSWorkerNodePolicy",
    f"{MANAGED}/AmazonEKS_CNI_Policy",
    f"{MANAGED}/AmazonEC2ContainerRegistryReadOnly",
    f"{MANAGED}/AmazonSSMManagedInstanceCore",
)
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def assume_role(service: str, *, actions: tuple[str, ...] = ("sts:AssumeRole",)) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions)}],
    }


def pod_identity_trust() -> dict[str, Any]:
    """Trust policy for EKS Pod Identity (the agent calls AssumeRole and TagSession)."""
    return assume_role("pods.eks.amazonaws.com", actions=("sts:AssumeRole", "sts:TagSession"))


def pull_through_policy(*, partition: str, region: str, account: str, prefixes: tuple[str, ...]) -> dict[str, Any]:
    """What a node needs to pull through the stack's cache rules, on their repositories only:
    import the upstream image, and create the cache repository on an image's first pull."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PullThroughCache",
            "Effect": "Allow",
            "Action": list(registries.PULL_THROUGH_ACTIONS),
            "Resource": [f"arn:{partition}:ecr:{region}:{account}:repository/{p}/*" for p in prefixes],
        }],
    }
