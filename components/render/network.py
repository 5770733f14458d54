"""Subnet layout of a new VPC."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class SubnetPlan:
    zone_index: int
    public: bool
    cidr: str


def subnet_plan(vpc_cidr: str, zones: int) -> list[SubnetPlan]:
    """Private /19-sized blocks (an eighth of the VPC each) for nodes and pods, one per zone,
    and small public subnets carved from the last eighth for load balancers and NAT.

    The VPC CNI gives every pod a VPC address, so the private subnets get the space.
    """
    net = ipaddress.IPv4Network(vpc_cidr)
    eighths = list(net.subnets(prefixlen_diff=3))
    if zones > 7:
        raise ValueError(f"{zones} zones do not fit: at most 7")
    private = [SubnetPlan(i, False, str(eighths[i])) for i in range(zones)]
    public_blocks = list(eighths[7].subnets(prefixlen_diff=3))
    public = [SubnetPlan(i, True, str(public_blocks[i])) for i in range(zones)]
    return private + public


def endpoint_service_name(region: str, service: str) -> str:
    """The VPC endpoint service name of an AWS service in a region (``com.amazonaws.us-east-1.s3``)."""
    return f"com.amazonaws.{region}.{service}"


def private_cidrs(vpc_cidr: str, zones: int) -> list[str]:
    """The private subnets' CIDRs: what may reach the interface endpoints."""
    return [p.cidr for p in subnet_plan(vpc_cidr, zones) if not p.public]


@dataclass(frozen=True)
class IngressRule:
    protocol: str
    port: int
    cidrs: tuple[str, ...]
    description: str


def endpoint_ingress(vpc_cidr: str, zones: int) -> list[IngressRule]:
    """The interface endpoints' security group: HTTPS from the private subnets (nodes and pods),
    nothing else; the endpoints answer and never initiate, so the group has no egress rule."""
    return [IngressRule("tcp", 443, tuple(private_cidrs(vpc_cidr, zones)), "HTTPS from the private subnets")]
