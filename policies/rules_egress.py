"""Rules about how the stack's nodes reach registries and S3: the pull-through cache it sets up
is the one its workloads pull through, and GPU serving reads its weights through an S3 gateway
endpoint rather than the NAT gateway. Facts: reference/production-facts.md section 10.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel

from platform_facts import registries

from .base import stack_rule
from .rules_stack import _by_type, workloads
from .workloads import containers, gpu_containers

CACHE_RULE = "aws:ecr/pullThroughCacheRule:PullThroughCacheRule"
VPC = "aws:ec2/vpc:Vpc"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
AREA = "Egress"


def _cached_upstreams(resources: Sequence[Any]) -> dict[str, str]:
    """upstream name -> the ecrRepositoryPrefix of the stack's rule for it."""
    by_url = {u.url: u.name for u in registries.UPSTREAMS}
    out = {}
    for r in _by_type(resources, CACHE_RULE):
        name = by_url.get(str(r.props.get("upstreamRegistryUrl") or ""))
        if name is not None:
            out[name] = str(r.props.get("ecrRepositoryPrefix") or "")
    return out


def images_bypass_cache(resources: Sequence[Any], config: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    cached = _cached_upstreams(resources)
    if not cached:
        return
    for w in workloads(resources):
        for c in containers(w.spec, init=True):
            image = str(c.get("image") or "")
            upstream = registries.upstream_of(image)
            if upstream is not None and upstream.name in cached:
                yield w.urn, (f"{w.kind} {w.namespace}/{w.name} container {c.get('name')} pulls {image} from "
                              f"{upstream.url} directly, though the stack caches {upstream.name} under "
                              f"{cached[upstream.name]}/.")


def _is_s3_gateway(endpoint: Any) -> bool:
    props = endpoint.props
    return (str(props.get("vpcEndpointType") or "Gateway") == "Gateway"
            and str(props.get("serviceName") or "").endswith(".s3") and bool(props.get("routeTableIds")))


def gpu_serving_without_s3_endpoint(resources: Sequence[Any], config: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    gpu = [w for w in workloads(resources) if gpu_containers(w.spec)]
    vpcs = _by_type(resources, VPC)
    if not gpu or not vpcs:  # an existing VPC's endpoints are its owner's
        return
    if any(_is_s3_gateway(e) for e in _by_type(resources, VPC_ENDPOINT)):
        return
    yield vpcs[0].urn, (f"the stack runs {len(gpu)} GPU workload(s) in a VPC it creates, with no S3 gateway endpoint "
                        "on its route tables: every model download and ECR image layer goes through the NAT gateway.")


RULES = [
    stack_rule("images-through-pull-through-cache", AREA,
        "When the stack creates an ECR pull-through cache rule for an upstream registry, no container or init "
        "container of its workloads pulls from that registry directly.",
        f"Anonymous Docker Hub pulls are limited to {registries.DOCKER_HUB_ANONYMOUS_PULLS_PER_HOUR} an hour per IPv4 "
        "address, shared by every node behind a NAT "
        "address: a scale-out or spot churn ends in ImagePullBackOff. A cache rule nothing pulls through fixes nothing.",
        "map the image through components.render.images.image_ref (<account>.dkr.ecr.<region>.amazonaws.com/"
        "<prefix>/<upstream path>), or drop the rule.", images_bypass_cache),
    stack_rule("gpu-stack-has-s3-gateway-endpoint", AREA,
        "A stack that creates its VPC and runs GPU workloads has an S3 gateway endpoint on the private route tables. "
        "Advisory: a cost rule.",
        "Model weights (a 70B model is ~130 GiB) and ECR image layers come from S3; through NAT each GB is billed "
        f"(${registries.NAT_GATEWAY_USD_PER_GB}/GB processed), through a gateway endpoint it is not.",
        "set cluster.egress.s3GatewayEndpoint: true (the default).", gpu_serving_without_s3_endpoint,
        enforcement=EnforcementLevel.ADVISORY),
]
