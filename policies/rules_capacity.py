"""Karpenter capacity rules (NodePool, EC2NodeClass) and AWS rules (EKS, SQS, IAM)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel

from platform_facts import cidrs

from .base import ENVIRONMENT, as_list, resource_rule
from .instance_types import GPU_KEYS, launchable, requires_gpu
from .workloads import GPU, dig, workload_name

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def karpenter_seconds(duration: str) -> float:
    if duration == "Never":
        return float("inf")
    unit = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * unit[u] for n, u in re.findall(r"([0-9]+)(s|m|h)", duration))


def gpu_pool_reason(props: Mapping[str, Any]) -> str | None:
    """Why a NodePool is a GPU pool (None when it is not): the GPU instance types its
    requirements admit, a GPU label it requires, the GPU label it sets, or a GPU limit."""
    template = dig(props, "spec", "template") or {}
    reqs = list(dig(template, "spec", "requirements") or ())
    types = launchable(reqs)
    if types:
        shown = ", ".join(types[:3]) + (f" and {len(types) - 3} more" if len(types) > 3 else "")
        return f"its requirements admit GPU instance types {shown}"
    if requires_gpu(reqs):
        keys = sorted({str(r.get("key")) for r in reqs if str(r.get("key")) in GPU_KEYS})
        return f"it requires {', '.join(keys)}"
    if dig(template, "metadata", "labels", "nvidia.com/gpu.present") == "true":
        return "it labels its nodes nvidia.com/gpu.present=true"
    if dig(props, "spec", "limits", GPU) is not None:
        return f"it sets limits[{GPU}]"
    return None


def is_gpu_pool(props: Mapping[str, Any]) -> bool:
    return gpu_pool_reason(props) is not None


def gpu_pool(rtype: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    reason = gpu_pool_reason(props) if rtype == NODEPOOL else None
    if reason is None:
        return
    name = f"{workload_name(props)} (a GPU pool: {reason})"
    spec = props.get("spec") or {}
    taints = dig(spec, "template", "spec", "taints") or ()
    if not any(t.get("key") == GPU and t.get("effect") == "NoSchedule" for t in taints):
        yield f"{name}: no {GPU}:NoSchedule taint; any pod can fill its GPU nodes."
    if dig(spec, "limits", GPU) is None:
        yield f"{name}: no limits[{GPU}]; a runaway scale-out buys GPUs without bound."
    consolidate = dig(spec, "disruption", "consolidateAfter")
    if consolidate is None or karpenter_seconds(str(consolidate)) < config["minConsolidateAfterSeconds"]:
        yield (f"{name}: consolidateAfter {consolidate or '0s (default)'} is under "
               f"{config['minConsolidateAfterSeconds']}s; GPU nodes churn between bursts.")
    if not dig(spec, "disruption", "budgets"):
        yield f"{name}: no disruption budget; the default lets 10% of GPU nodes go at once."
    if dig(spec, "template", "spec", "expireAfter") is None:
        yield f"{name}: expireAfter is not set explicitly (nodes never rotate for patches, or rotate unplanned)."


def node_class(rtype: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if rtype != NODECLASS:
        return
    name, spec = workload_name(props), props.get("spec") or {}
    if dig(spec, "metadataOptions", "httpTokens") == "optional":
        yield f"{name}: IMDSv1 allowed (httpTokens optional); pods can steal node credentials."
    for bdm in spec.get("blockDeviceMappings") or ():
        if dig(bdm, "ebs", "encrypted") is not True and dig(bdm, "ebs", "snapshotID") is None:
            yield f"{name}: EBS volume {bdm.get('deviceName')} is not encrypted."
    if config["environment"] == "prod":
        for term in spec.get("amiSelectorTerms") or ():
            if str(term.get("alias", "")).endswith("@latest"):
                yield f"{name}: AMI alias {term['alias']} in prod; every AMI release drifts every node."


def eks_encryption(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype == "eks:index:Cluster" and not props.get("encryptionConfigKeyArn"):
        yield "the EKS cluster does not encrypt Kubernetes secrets with a KMS key."
    if rtype == "aws:eks/cluster:Cluster" and not props.get("encryptionConfig"):
        yield "the EKS cluster does not encrypt Kubernetes secrets with a KMS key."


def eks_logs(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in ("eks:index:Cluster", "aws:eks/cluster:Cluster"):
        return
    missing = sorted({"api", "audit", "authenticator"} - set(props.get("enabledClusterLogTypes") or ()))
    if missing:
        yield f"control-plane logs {', '.join(missing)} are off."


def _endpoint(rtype: str, props: Mapping[str, Any]) -> tuple[bool, list[Any]] | None:
    """(public, publicAccessCidrs) of an EKS cluster resource; None for other types."""
    if rtype == "eks:index:Cluster":
        return props.get("endpointPublicAccess", True) is not False, list(props.get("publicAccessCidrs") or ())
    if rtype == "aws:eks/cluster:Cluster":
        vpc = props.get("vpcConfig") or {}
        return vpc.get("endpointPublicAccess", True) is not False, list(vpc.get("publicAccessCidrs") or ())
    return None


def eks_endpoint(rtype: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    endpoint = _endpoint(rtype, props)
    if config["environment"] != "prod" or endpoint is None or not endpoint[0]:
        return
    if not endpoint[1]:
        yield "the prod API endpoint is public to 0.0.0.0/0 (no publicAccessCidrs: EKS defaults to 0.0.0.0/0)."
        return
    allow = cidrs.parse(endpoint[1])
    for bad in allow.malformed:
        yield f"publicAccessCidrs entry {bad!r} is not a CIDR; nobody can tell what it admits."
    for finding in cidrs.too_wide(allow, {4: config["widestIpv4Prefix"], 6: config["widestIpv6Prefix"]}):
        yield f"the prod API endpoint is public to {finding}: that is the internet, not your networks."


def eks_endpoint_documentation(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    endpoint = _endpoint(rtype, props)
    if endpoint is None or not endpoint[0] or not endpoint[1]:
        return
    if cidrs.documentation_only(cidrs.parse(endpoint[1])):
        yield (f"publicAccessCidrs {', '.join(map(str, endpoint[1]))} are documentation-only ranges (RFC 5737/3849): "
               "a real deploy admits nobody to the public API endpoint.")


def sqs_encrypted(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype == "aws:sqs/queue:Queue" and not props.get("sqsManagedSseEnabled") and not props.get("kmsMasterKeyId"):
        yield f"queue {props.get('name', '?')} is not encrypted at rest."


IAM_DOCUMENTS = {"aws:iam/policy:Policy": "policy", "aws:iam/rolePolicy:RolePolicy": "policy",
                 "aws:iam/userPolicy:UserPolicy": "policy", "aws:iam/groupPolicy:GroupPolicy": "policy",
                 "aws:sqs/queuePolicy:QueuePolicy": "policy"}


def iam_star(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    key = IAM_DOCUMENTS.get(rtype)
    raw = props.get(key) if key else None
    if raw is None:
        return
    doc = json.loads(raw) if isinstance(raw, str) else raw
    for i, st in enumerate(as_list(doc.get("Statement"))):
        if st.get("Effect") == "Allow" and "*" in as_list(st.get("Action")) and "*" in as_list(st.get("Resource")):
            yield f"statement {st.get('Sid') or i} allows every action on every resource."


WIDEST = {
    "widestIpv4Prefix": {"type": "integer", "default": 8, "minimum": 0, "maximum": 32,
                         "description": "Allowed IPv4 ranges covering more addresses than one network of this prefix are open."},
    "widestIpv6Prefix": {"type": "integer", "default": 16, "minimum": 0, "maximum": 128,
                         "description": "Allowed IPv6 ranges covering more addresses than one network of this prefix are open."},
}

RULES = [
    resource_rule("karpenter-gpu-nodepool", "Capacity (Karpenter)",
        "GPU NodePools carry the GPU taint, a GPU limit, consolidateAfter >= 5m, a disruption budget and expireAfter. "
        "A pool is a GPU pool when its requirements admit a GPU instance type of the catalog (by type, family, "
        "category, generation, size, GPU name or count...), require a GPU label, or it labels or limits GPUs.",
        "These bound spend, keep non-GPU pods off GPU nodes, and stop consolidation from churning nodes that take minutes to warm. "
        "A pool with no instance requirements can launch any GPU type, without bound.",
        "set template.spec.taints, limits[nvidia.com/gpu], disruption.consolidateAfter/budgets and template.spec.expireAfter; "
        "or, for a CPU pool, exclude GPU instances (e.g. karpenter.k8s.aws/instance-category In [c, m, r]).",
        gpu_pool, {"minConsolidateAfterSeconds": {"type": "integer", "default": 300, "minimum": 0,
                                                                   "description": "Smallest consolidateAfter for GPU pools."}}),
    resource_rule("karpenter-nodeclass-hardening", "Capacity (Karpenter)",
        "EC2NodeClasses require IMDSv2, encrypt EBS, and pin the AMI in prod.",
        "IMDSv1 leaks node credentials to pods; an @latest alias rolls every node on each AMI release.",
        "set metadataOptions.httpTokens required, ebs.encrypted true, and an alias like al2023@v20261020 in prod.",
        node_class, dict(ENVIRONMENT)),
    resource_rule("eks-secrets-encryption", "AWS", "EKS encrypts Kubernetes secrets with a KMS key (envelope encryption).",
        "Secrets (tokens, Redis passwords) are otherwise only encrypted by EBS at rest in etcd.",
        "pass a KMS key ARN as encryption_config_key_arn.", eks_encryption),
    resource_rule("eks-control-plane-logs", "AWS", "EKS sends api, audit and authenticator logs to CloudWatch.",
        "Without audit logs nobody can tell who changed what in the cluster.",
        "set enabled_cluster_log_types to include api, audit and authenticator.", eks_logs),
    resource_rule("eks-no-open-public-endpoint", "AWS", "The prod API endpoint is private or restricted to listed CIDRs.",
        "A public endpoint open to the world exposes the API server to credential stuffing and CVEs. CIDRs are parsed and "
        "merged, so 0.0.0.0/00, 0.0.0.0/1 + 128.0.0.0/1 and ::/0 count as open, as does any list wider than a /8 "
        "(IPv4) or a /16 (IPv6) in total: no organisation's own networks are wider.",
        "set endpoint_public_access false, or public_access_cidrs to your networks.", eks_endpoint,
        {**ENVIRONMENT, **WIDEST}),
    resource_rule("eks-endpoint-cidrs-not-documentation", "AWS",
        "A public endpoint's allow-list is not made only of documentation ranges (192.0.2.0/24, 198.51.100.0/24, "
        "203.0.113.0/24, 2001:db8::/32).",
        "Those ranges are reserved for examples and route nowhere: the list is a placeholder, and kubectl, CI and "
        "the Kubernetes provider cannot reach the API from outside the VPC.",
        "replace the placeholders with your office, VPN or CI egress CIDRs (or turn the public endpoint off).",
        eks_endpoint_documentation, enforcement=EnforcementLevel.ADVISORY),
    resource_rule("sqs-encrypted", "AWS", "SQS queues are encrypted at rest (SSE-SQS or KMS).",
        "Interruption events name instances and accounts; keep them encrypted.",
        "set sqs_managed_sse_enabled true (or kms_master_key_id).", sqs_encrypted),
    resource_rule("iam-no-star-on-star", "AWS", "No IAM statement allows every action on every resource.",
        "Admin-equivalent grants turn any compromised pod or controller into an account takeover.",
        "list the actions the principal needs and scope them by resource ARN or condition.", iam_star),
]
