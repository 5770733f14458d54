"""IAM policy documents as plain dicts (serialized with json.dumps where AWS wants a string)."""

from __future__ import annotations

from typing import Any

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
