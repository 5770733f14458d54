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
