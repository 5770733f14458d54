"""Private egress, created as children of the Network: VPC endpoints (S3 gateway, ECR and STS
interface endpoints) and the ECR pull-through cache rules our images are pulled through.

Why: anonymous Docker Hub pulls are limited per NAT address (platform_facts.registries and the
README's egress section), and every model download and image layer through NAT is billed per GB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.config import EgressConfig, PullThroughCacheConfig
from components.naming import child
from components.render import network as render
from components.render.iam import pull_through_policy


@dataclass(frozen=True)
class EndpointArgs:
    """What the endpoints attach to: the created VPC, its private subnets and route tables."""

    vpc_id: pulumi.Input[str]
    """The VPC the endpoints belong to."""
    vpc_cidr: str
    """Its CIDR: the private subnets' blocks (render.network.subnet_plan) are derived from it."""
    region: str
    """Names the endpoint services (com.amazonaws.<region>.<service>)."""
    zones: int
    """Zones the VPC spans: one private subnet and route table each."""
    private_subnet_ids: Sequence[pulumi.Input[str]]
    """Where the interface endpoints put their network interfaces."""
    private_route_table_ids: Sequence[pulumi.Input[str]]
    """Where the S3 gateway endpoint adds its prefix-list route."""
    tags: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """AWS tags on every endpoint and the security group."""


def vpc_endpoints(parent: pulumi.Resource, name: str, egress: EgressConfig, args: EndpointArgs) -> list[pulumi.Resource]:
    """The S3 gateway endpoint on the private route tables, and the interface endpoints in the
    private subnets behind a security group that admits HTTPS from them; returns what it made."""
    p = pulumi.ResourceOptions(parent=parent)
    made: list[pulumi.Resource] = []
    if egress.s3_gateway_endpoint:
        made.append(aws.ec2.VpcEndpoint(
            child(name, "s3"), vpc_id=args.vpc_id, service_name=render.endpoint_service_name(args.region, "s3"),
            vpc_endpoint_type="Gateway", route_table_ids=list(args.private_route_table_ids),
            tags={**args.tags, "Name": f"{name}-s3"}, opts=p))
    if not egress.interface_endpoints:
        return made
    sg = aws.ec2.SecurityGroup(
        child(name, "endpoints"), vpc_id=args.vpc_id, description="VPC interface endpoints: HTTPS from the private subnets",
        ingress=[aws.ec2.SecurityGroupIngressArgs(
            protocol=r.protocol, from_port=r.port, to_port=r.port, cidr_blocks=list(r.cidrs), description=r.description)
            for r in render.endpoint_ingress(args.vpc_cidr, args.zones)],
        tags={**args.tags, "Name": f"{name}-endpoints"}, opts=p)
    made.append(sg)
    for service in egress.interface_endpoints:
        made.append(aws.ec2.VpcEndpoint(
            child(name, service.replace(".", "-")), vpc_id=args.vpc_id,
            service_name=render.endpoint_service_name(args.region, service), vpc_endpoint_type="Interface",
            subnet_ids=list(args.private_subnet_ids), security_group_ids=[sg.id],
            # The service's usual DNS name resolves to the endpoint: nothing in the cluster changes.
            private_dns_enabled=True, tags={**args.tags, "Name": f"{name}-{service}"}, opts=p))
    return made


def _secret_arn(secret: str | None) -> pulumi.Input[str] | None:
    """A secret given by ARN as it is; by name, its ARN (with the random suffix Secrets Manager adds)."""
    if secret is None or secret.startswith("arn:"):
        return secret
    return aws.secretsmanager.get_secret_output(name=secret).arn


def pull_through_cache_rules(parent: pulumi.Resource, name: str, cache: PullThroughCacheConfig) -> list[pulumi.Resource]:
    """One rule per upstream the stack mirrors (``PullThroughCacheConfig.upstreams``)."""
    p = pulumi.ResourceOptions(parent=parent)
    return [
        aws.ecr.PullThroughCacheRule(
            child(name, f"cache-{u.path}"), ecr_repository_prefix=cache.rule_prefix(u), upstream_registry_url=u.url,
            credential_arn=_secret_arn(cache.credential(u.name)), opts=p)
        for u in cache.upstreams()
    ]


def node_pull_through_policy(parent: pulumi.Resource, name: str, role: aws.iam.Role, cache: PullThroughCacheConfig,
                             region: str) -> aws.iam.RolePolicy | None:
    """The node role's right to pull through the cache rules (the kubelet pulls as the node):
    AmazonEC2ContainerRegistryReadOnly reads existing repositories, but the first pull of an
    image imports it and creates its repository."""
    if not cache.enabled:
        return None
    prefixes = tuple(cache.rule_prefix(u) for u in cache.upstreams())
    account = aws.get_caller_identity().account_id
    partition = aws.get_partition().partition
    document = pull_through_policy(partition=partition, region=region, account=account, prefixes=prefixes)
    return aws.iam.RolePolicy(child(name, "pull-through-cache"), role=role.id, policy=json.dumps(document),
                              opts=pulumi.ResourceOptions(parent=parent))
