"""The rules of the field, as CrossGuard policy objects.

Each rule is a pure check ``(resource_type, props, config) -> messages`` wrapped into a
``ResourceValidationPolicy`` (or a stack check into a ``StackValidationPolicy``). The same
objects run in ``pulumi preview --policy-pack policies`` and inside ``synth`` (offline).
Importing this module starts nothing: only ``policies/__main__.py`` builds the PolicyPack.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.workloads import GPU, containers, dig, gpu_containers, gpu_quantity, pod_spec, workload_name

ENVIRONMENTS = ["dev", "staging", "prod"]
ENVIRONMENT_PROPERTY = {
    "environment": {
        "type": "string",
        "enum": ENVIRONMENTS,
        "default": "prod",
        "description": "The stack's environment; prod-only rules key off it.",
    }
}

Check = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Iterable[str]]


@dataclass(frozen=True)
class Rule:
    """A rule's metadata and its pure check; ``policy`` builds the CrossGuard object."""

    name: str
    description: str
    fix: str
    enforcement: EnforcementLevel
    check: Check
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    stack: bool = False

    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.config.items() if "default" in v}

    def policy(self) -> ResourceValidationPolicy | StackValidationPolicy:
        schema = PolicyConfigSchema(properties=dict(self.config)) if self.config else None
        if self.stack:
            def validate_stack(args: StackValidationArgs, report) -> None:
                config = {**self.defaults(), **dict(args.get_config())}
                for urn, message in self.check("", args.resources, config):  # type: ignore[arg-type]
                    report(f"{message} Fix: {self.fix}", urn)

            return StackValidationPolicy(
                name=self.name, description=self.description, validate=validate_stack,
                enforcement_level=self.enforcement, config_schema=schema,
            )

        def validate(args: ResourceValidationArgs, report) -> None:
            config = {**self.defaults(), **dict(args.get_config())}
            for message in self.check(args.resource_type, args.props, config):
                report(f"{message} Fix: {self.fix}")

        return ResourceValidationPolicy(
            name=self.name, description=self.description, validate=validate,
            enforcement_level=self.enforcement, config_schema=schema,
        )


# --------------------------------------------------------------------------- GPU workloads


def _gpu_requests_equal_limits(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = pod_spec(rtype, props)
    for c in gpu_containers(spec) if spec else ():
        req, lim = gpu_quantity(c, "requests"), gpu_quantity(c, "limits")
        if lim is None or (req is not None and req != lim):
            yield (f"{workload_name(props)}/{c.get('name')}: {GPU} requests {req} and limits {lim} differ "
                   "(extended resources are never overcommitted; the limit is what the scheduler counts).")


def _image_pinned(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = pod_spec(rtype, props)
    for c in containers(spec, init=True) if spec else ():
        image = str(c.get("image") or "")
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        if ":" not in last or last.endswith(":latest"):
            yield f"{workload_name(props)}/{c.get('name')}: image {image!r} is untagged or :latest."


def _gpu_toleration(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = pod_spec(rtype, props)
    if not spec or not gpu_containers(spec):
        return
    for t in spec.get("tolerations") or ():
        if t.get("key") == GPU and t.get("operator", "Equal") == "Exists" and t.get("effect") in (None, "NoSchedule"):
            return
        if t.get("operator") == "Exists" and not t.get("key"):
            return
    yield f"{workload_name(props)}: a GPU pod does not tolerate the {GPU}:NoSchedule taint of GPU nodes."


def _gpu_prestop(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"):
        return
    spec = pod_spec(rtype, props)
    for c in gpu_containers(spec) if spec else ():
        if dig(c, "lifecycle", "preStop") is None:
            yield f"{workload_name(props)}/{c.get('name')}: a serving GPU container has no preStop hook."


# --------------------------------------------------------------------------- metrics

REMOVED_VLLM_METRICS = {
    "vllm:gpu_cache_usage_perc": "vllm:kv_cache_usage_perc",
    "vllm:time_per_output_token_seconds": "vllm:inter_token_latency_seconds",
}
QUERY_CARRIERS = (
    "kubernetes:keda.sh/v1alpha1:ScaledObject",
    "kubernetes:keda.sh/v1alpha1:ScaledJob",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:helm.sh/v3:Release",
)


def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, Sequence):
        for v in obj:
            yield from _strings(v)


def _current_vllm_metrics(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in QUERY_CARRIERS:
        return
    seen: set[str] = set()
    for s in _strings(props):
        for old, new in REMOVED_VLLM_METRICS.items():
            if old in s and old not in seen:
                seen.add(old)
                yield f"{workload_name(props)}: {old} was removed from vLLM (0.12); use {new}."


# --------------------------------------------------------------------------- AWS


def _eks_secrets_encryption(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype == "eks:index:Cluster" and not props.get("encryptionConfigKeyArn"):
        yield "the EKS cluster does not encrypt Kubernetes secrets with a KMS key."
    if rtype == "aws:eks/cluster:Cluster" and not props.get("encryptionConfig"):
        yield "the EKS cluster does not encrypt Kubernetes secrets with a KMS key."


def _eks_audit_logs(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    key = {"eks:index:Cluster": "enabledClusterLogTypes", "aws:eks/cluster:Cluster": "enabledClusterLogTypes"}.get(rtype)
    if key is None:
        return
    enabled = set(props.get(key) or ())
    missing = sorted({"api", "audit", "authenticator"} - enabled)
    if missing:
        yield f"control-plane logs {', '.join(missing)} are off."


IAM_DOCUMENT_PROPS = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str) or isinstance(value, Mapping):
        return [value]
    return list(value)


def _iam_star(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    key = IAM_DOCUMENT_PROPS.get(rtype)
    raw = props.get(key) if key else None
    if raw is None:
        return
    doc = json.loads(raw) if isinstance(raw, str) else raw
    for i, st in enumerate(_as_list(doc.get("Statement"))):
        if st.get("Effect") != "Allow":
            continue
        if "*" in _as_list(st.get("Action")) and "*" in _as_list(st.get("Resource")):
            yield f"statement {st.get('Sid') or i} allows every action on every resource."


RULES: list[Rule] = [
    Rule(
        "gpu-requests-equal-limits",
        f"GPU containers request exactly the {GPU} they are limited to.",
        f"set resources.requests[{GPU}] equal to resources.limits[{GPU}] (or omit the request).",
        EnforcementLevel.MANDATORY,
        _gpu_requests_equal_limits,
    ),
    Rule(
        "image-tag-pinned",
        "Every container image has an explicit tag or digest, never :latest.",
        "pin the image to a version tag or a @sha256 digest.",
        EnforcementLevel.MANDATORY,
        _image_pinned,
    ),
    Rule(
        "gpu-taint-toleration",
        f"GPU pods tolerate the {GPU}:NoSchedule taint that GPU NodePools carry.",
        f"add a toleration {{key: {GPU}, operator: Exists, effect: NoSchedule}}.",
        EnforcementLevel.MANDATORY,
        _gpu_toleration,
    ),
    Rule(
        "gpu-prestop-hook",
        "Serving GPU containers have a preStop hook so endpoints drain before SIGTERM.",
        "add lifecycle.preStop {sleep: {seconds: 15}} and a matching terminationGracePeriodSeconds.",
        EnforcementLevel.MANDATORY,
        _gpu_prestop,
    ),
    Rule(
        "vllm-current-metric-names",
        "Scaling triggers, alerts and dashboards use metric names vLLM 0.12+ still emits.",
        "replace the removed metric with its current name.",
        EnforcementLevel.MANDATORY,
        _current_vllm_metrics,
    ),
    Rule(
        "eks-secrets-encryption",
        "EKS encrypts Kubernetes secrets with a KMS key (envelope encryption).",
        "pass a KMS key ARN as encryption_config_key_arn.",
        EnforcementLevel.MANDATORY,
        _eks_secrets_encryption,
    ),
    Rule(
        "eks-control-plane-logs",
        "EKS sends api, audit and authenticator logs to CloudWatch.",
        "set enabled_cluster_log_types to include api, audit and authenticator.",
        EnforcementLevel.MANDATORY,
        _eks_audit_logs,
    ),
    Rule(
        "iam-no-star-on-star",
        "No IAM statement allows every action on every resource.",
        "list the actions the principal needs and scope them by resource ARN or condition.",
        EnforcementLevel.MANDATORY,
        _iam_star,
    ),
]

POLICIES = [rule.policy() for rule in RULES]
