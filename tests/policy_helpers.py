"""Call policies the way CrossGuard does: props behind unknown_checking_proxy, camelCase keys."""

from __future__ import annotations

import copy
from typing import Any

from policies.offline import Resource, evaluate
from policies.rules import POLICIES


def policy(name: str):
    return next(p for p in POLICIES if p.name == name)


def violations(name: str, resource_type: str, props: dict[str, Any], environment: str = "prod") -> list[str]:
    report = evaluate([policy(name)], [Resource(resource_type, f"urn:pulumi:s::p::{resource_type}::x", "x", props, props)],
                      {name: {"environment": environment}})
    return [v["message"] for v in report["violations"]]


def gpu_deployment(**overrides: Any) -> dict[str, Any]:
    """A GPU Deployment that passes every workload rule; tests break one thing at a time."""
    container = {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.33.0",
        "resources": {"requests": {"nvidia.com/gpu": "1", "cpu": "4", "memory": "16Gi"},
                      "limits": {"nvidia.com/gpu": "1", "memory": "16Gi"}},
        "lifecycle": {"preStop": {"sleep": {"seconds": 15}}},
    }
    spec = {
        "containers": [container],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "terminationGracePeriodSeconds": 85,
    }
    obj = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "chat", "namespace": "inference"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "chat"}},
                 "template": {"metadata": {"labels": {"app": "chat"}}, "spec": spec}},
    }
    obj = copy.deepcopy(obj)
    for path, value in overrides.items():
        node = obj
        *head, last = path.split("__")
        for part in head:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is None:
            node.pop(last, None) if isinstance(node, dict) else None
        else:
            node[int(last) if last.isdigit() else last] = value
    return obj
