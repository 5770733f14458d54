"""IAM identities for pods (EKS Pod Identity)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.config import ModelSpec
from components.naming import child
from components.render import cache
from components.render.iam import pod_identity_trust


def model_cache_reader(name: str, model: ModelSpec, *, cluster_name: pulumi.Input[str], namespace: str,
                       service_account: str, opts: pulumi.ResourceOptions) -> aws.eks.PodIdentityAssociation | None:
    """A role that may only read the model's S3 prefix, bound to a service account by EKS Pod
    Identity; returns the association. None for sources that are not on S3 (nothing to grant).

    Pods of the service account must depend on the association: EKS injects the credentials
    when a pod is admitted, never afterwards, so a pod created first runs without them (its
    model download crash-loops until the pod is recreated)."""
    if cache.s3_location(model) is None:
        return None
    # The KMS grant is scoped to S3 in this region (kms:ViaService); ARNs to this partition.
    policy = cache.reader_policy(model, region=aws.get_region().region, partition=aws.get_partition().partition)
    role = aws.iam.Role(child(name, "cache-reader"), assume_role_policy=json.dumps(pod_identity_trust()),
                        description=f"{namespace}/{service_account}: read {model.source}", opts=opts)
    role_policy = aws.iam.RolePolicy(child(name, "cache-reader"), role=role.id, policy=json.dumps(policy), opts=opts)
    # After the policy: a pod that gets credentials before the role may read would fail its download.
    return aws.eks.PodIdentityAssociation(child(name, "cache-reader"), cluster_name=cluster_name, namespace=namespace,
                                          service_account=service_account, role_arn=role.arn,
                                          opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
                                              depends_on=[role_policy])))
