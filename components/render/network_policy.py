"""NetworkPolicies of the namespaces that serve models: pure functions from config to dicts.

The VPC CNI enforces them (its policy agent is on, see ``GpuCluster._eks``). Shape:

- every namespace that serves a model denies all ingress by default;
- each service's pods accept its port only from the namespaces the stack names as its
  consumers and from Prometheus (``/metrics`` is on the same port);
- each service's pods (and its pre-pull pods) may only resolve names through CoreDNS, reach the
  EKS Pod Identity agent on the node for credentials, and open HTTPS to addresses outside the
  private ranges: S3 (through the gateway endpoint or NAT) and, for ``hf://`` models, the
  Hugging Face Hub. A NetworkPolicy cannot name S3, so the HTTPS rule is "anything public";
  excluding the private ranges keeps the pods off the API server, other pods and every other
  in-VPC service, without knowing the VPC CIDR (which an existing VPC does not tell us).
"""

from __future__ import annotations

from typing import Any

from components import labels
from components.config import ModelServiceConfig
from components.naming import k8s_name
from components.render import vllm
from platform_facts.kubernetes import PROMETHEUS_POD_LABELS

DEFAULT_DENY = "default-deny-ingress"
# Kubernetes sets this label on every namespace (1.22+): select namespaces by name.
NAMESPACE_NAME = "kubernetes.io/metadata.name"
# kube-prometheus-stack's Prometheus pods carry this label (set by the operator).
PROMETHEUS_POD = dict(PROMETHEUS_POD_LABELS)
COREDNS_POD = {"k8s-app": "kube-dns"}
# EKS Pod Identity agent: a host-network daemon on every node, at this link-local address.
POD_IDENTITY_AGENT = "169.254.170.23/32"
POD_IDENTITY_PORT = 80
# RFC 1918 and the shared address space (VPC secondary CIDRs for pods often come from it):
# every in-VPC and in-cluster address (nodes, pods, Services, API server ENIs, interface endpoints).
PRIVATE_RANGES = ("10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16")


def default_deny_ingress(namespace: str) -> dict[str, Any]:
    """No pod of the namespace accepts a connection unless another policy allows it."""
    return {
        "metadata": {"name": DEFAULT_DENY, "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def _namespaces(names: list[str]) -> dict[str, Any]:
    return {"namespaceSelector": {"matchExpressions": [{"key": NAMESPACE_NAME, "operator": "In", "values": names}]}}


def serving_ingress(svc: ModelServiceConfig, namespace: str, monitoring_namespace: str) -> dict[str, Any]:
    """The service's port, from its consumer namespaces and from Prometheus (for /metrics).

    Prometheus is allowed the whole port: NetworkPolicy works at L4 and cannot tell /metrics from
    /v1; an API key (``apiKeySecret``) is what keeps /v1 closed to it."""
    port = [{"protocol": "TCP", "port": vllm.PORT}]
    prometheus = {**_namespaces([monitoring_namespace]), "podSelector": {"matchLabels": dict(PROMETHEUS_POD)}}
    rules: list[dict[str, Any]] = [{"from": [prometheus], "ports": port}]
    if svc.consumer_namespaces:
        rules.append({"from": [_namespaces(sorted(svc.consumer_namespaces))], "ports": port})
    return {
        "metadata": {"name": k8s_name(svc.name, "ingress"), "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": vllm.selector(svc)}, "policyTypes": ["Ingress"], "ingress": rules},
    }


def serving_egress(svc: ModelServiceConfig, namespace: str) -> dict[str, Any]:
    """DNS, the Pod Identity agent, and HTTPS to public addresses; nothing else (no API server)."""
    pods = {"matchLabels": {labels.APP_INSTANCE: svc.name},
            "matchExpressions": [{"key": labels.APP_NAME, "operator": "In",
                                  "values": sorted({vllm.selector(svc)[labels.APP_NAME],
                                                    vllm.pre_pull_labels(svc)[labels.APP_NAME]})}]}
    dns = {**_namespaces(["kube-system"]), "podSelector": {"matchLabels": dict(COREDNS_POD)}}
    return {
        "metadata": {"name": k8s_name(svc.name, "egress"), "namespace": namespace},
        "spec": {
            "podSelector": pods,
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [dns], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}],
                 "ports": [{"protocol": "TCP", "port": POD_IDENTITY_PORT}]},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                 "ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }
