"""Models of the cluster: network, API endpoint, system nodes."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import DNS_LABEL, ConfigModel
from components.config.egress import EgressConfig
from components.config.errors import rule_error
from components.config.levers import FastImagePull
from platform_facts import cidrs
from platform_facts.aws import KUBERNETES_VERSIONS

# The retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)


class ExistingVpc(ConfigModel):
    """Use a VPC you already have instead of creating one."""

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]+$", description="ID of the VPC.")
    private_subnet_ids: tuple[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")], ...] = Field(
        min_length=2, description="Private subnets for nodes, in at least two zones."
    )
    public_subnet_ids: tuple[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")], ...] = Field(
        default=(), description="Public subnets for internet-facing load balancers (optional)."
    )


class NetworkConfig(ConfigModel):
    cidr: str = Field(default="10.0.0.0/16", description="VPC CIDR block (/16 to /20).")
    availability_zones: int = Field(default=3, ge=2, le=6, description="Zones to span.")
    nat_gateways: Literal["single", "perAz"] = Field(
        default="single",
        description="One shared NAT gateway (cheap, one zone's outage cuts egress) or one per zone.",
    )
    existing: ExistingVpc | None = Field(
        default=None, description="Use this VPC and its subnets instead of creating a VPC."
    )

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v)
        except ValueError:
            raise rule_error((), f"{v!r} is not an IPv4 CIDR such as 10.0.0.0/16") from None
        if not 16 <= net.prefixlen <= 20:
            raise rule_error((), f"{v!r}: the prefix must be /16 to /20 to fit the node subnets")
        return v


class EndpointConfig(ConfigModel):
    private_access: bool = Field(default=True, description="Reach the API server from inside the VPC.")
    public_access: bool = Field(default=True, description="Expose the API server publicly.")
    public_access_cidrs: tuple[str, ...] = Field(
        default=(), description="CIDRs allowed on the public endpoint; empty means 0.0.0.0/0."
    )
    allow_public_from_anywhere: bool = Field(
        default=False,
        description="Allow a public endpoint open to the internet in prod (refused unless true): no CIDRs, or CIDRs "
        "covering more than one IPv4 /8 or IPv6 /16 in total.",
    )

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, cidr in enumerate(v):
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise rule_error((i,), f"{cidr!r} is not a CIDR") from None
        return v

    @property
    def open_ranges(self) -> list[str]:
        """Why the public endpoint admits the internet, one line per IP version; empty when it
        does not. Read as address ranges: 0.0.0.0/00, 0.0.0.0/1 + 128.0.0.0/1 and ::/0 are all
        open, as is anything wider than one /8 of IPv4 or one /16 of IPv6."""
        if not self.public_access:
            return []
        if not self.public_access_cidrs:
            return ["no publicAccessCidrs means 0.0.0.0/0"]
        return cidrs.too_wide(cidrs.parse(self.public_access_cidrs))

    @property
    def open_to_world(self) -> bool:
        return bool(self.open_ranges)

    @model_validator(mode="after")
    def _consistent(self) -> EndpointConfig:
        if not self.public_access and not self.private_access:
            raise rule_error(("publicAccess",), "false with privateAccess false leaves no way to reach the API server")
        if self.public_access_cidrs and not self.public_access:
            raise rule_error(("publicAccessCidrs",), "set only when publicAccess is true")
        return self


class SystemNodesConfig(ConfigModel):
    """The managed node group that runs the controllers (tainted CriticalAddonsOnly)."""

    instance_types: tuple[str, ...] = Field(
        default=("m7i.xlarge",), min_length=1, description="Instance types of the system node group."
    )
    min_size: int = Field(default=2, ge=2, le=20, description="At least 2 (Karpenter runs 2 replicas).")
    desired_size: int = Field(default=2, ge=2, le=20, description="Nodes at creation, between minSize and maxSize.")
    max_size: int = Field(default=4, ge=2, le=20, description="Upper bound of the node group.")
    disk_size_gib: int = Field(default=50, ge=20, le=1000, description="Root volume of each system node.")

    @model_validator(mode="after")
    def _sizes(self) -> SystemNodesConfig:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise rule_error(
                ("desiredSize",),
                f"{self.desired_size} must lie between minSize {self.min_size} and maxSize {self.max_size}",
            )
        return self


class ClusterConfig(ConfigModel):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=32)] = Field(
        description="EKS cluster name; also prefixes IAM roles and the interruption queue (<= 32)."
    )
    kubernetes_version: Literal[KUBERNETES_VERSIONS] = Field(  # type: ignore[valid-type]
        default="1.35", description="EKS control-plane version."
    )
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig, description="Who may reach the API server.")
    admin_role_arns: tuple[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")], ...] = (
        Field(default=(), description="Extra IAM roles given cluster-admin through access entries.")
    )
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="The VPC: created, or an existing one.")
    system_nodes: SystemNodesConfig = Field(
        default_factory=SystemNodesConfig, description="The managed node group that runs the controllers."
    )
    egress: EgressConfig = Field(
        default_factory=EgressConfig, description="VPC endpoints and the ECR pull-through cache for image pulls."
    )
    log_retention_days: int = Field(
        default=90,
        description="Retention of the control-plane log group /aws/eks/<name>/cluster, in days "
        f"(one of CloudWatch's values: {', '.join(map(str, LOG_RETENTION_DAYS))}).",
    )
    fast_image_pull: FastImagePull = Field(default_factory=FastImagePull,
                                           description="AL2023 FastImagePull (SOCI parallel pull) on GPU nodes.")
    spot_service_linked_role: Literal["auto", "skip"] = Field(
        default="auto",
        description="AWSServiceRoleForEC2Spot, which spot launches need once per account: auto looks it up "
        "and creates it only when the account has none; skip leaves it to the account's administrators.",
    )

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, v: int) -> int:
        if v not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise rule_error((), f"{v} is not a CloudWatch retention; use one of {allowed}")
        return v

    @model_validator(mode="after")
    def _egress_needs_our_vpc(self) -> ClusterConfig:
        if self.network.existing is not None and self.egress.interface_endpoints:
            raise rule_error(("egress", "interfaceEndpoints"), "set only for a VPC this stack creates: an existing VPC's "
                             "endpoints are its owner's (their private DNS names would clash with ours)")
        return self
