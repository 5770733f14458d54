"""Cases for the routing policy (policies/rules_routing.py), in tests/test_policies.py's CASES shape:
(rule, passing resources, failing resources, message fragment, environment)."""

from __future__ import annotations

import copy

RELEASE = "kubernetes:helm.sh/v3:Release"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
VLLM = {"app.kubernetes.io/name": "vllm", "app.kubernetes.io/instance": "chat"}
ROUTER = {"llm-d-router-gateway": "chat-router-epp"}
PROMETHEUS = {"namespaceSelector": {"matchExpressions": [
    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
CONSUMERS = {"namespaceSelector": {"matchExpressions": [
    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["gateway"]}]}}

ROUTER_RELEASE = (RELEASE, {"name": "chat-router", "chart": "oci://ghcr.io/llm-d/charts/llm-d-router-standalone",
                            "namespace": "inference",
                            "values": {"router": {"modelServers": {"matchLabels": VLLM}}}})
PODS = (DEPLOYMENT, {"metadata": {"name": "chat-baseline", "namespace": "inference"}, "spec": {
    "replicas": 1, "selector": {"matchLabels": {**VLLM, "platform.gpu/role": "baseline"}},
    "template": {"metadata": {"labels": {**VLLM, "platform.gpu/role": "baseline"}},
                 "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.33.0"}]}}}})


def _ingress(*peers: dict) -> tuple[str, dict]:
    return (NETWORK_POLICY, {"metadata": {"name": "chat-ingress", "namespace": "inference"}, "spec": {
        "podSelector": {"matchLabels": VLLM}, "policyTypes": ["Ingress"],
        "ingress": [{"from": list(peers), "ports": [{"protocol": "TCP", "port": 8000}]}]}})


def _service(name: str, selector: dict, headless: bool) -> tuple[str, dict]:
    spec = {"selector": selector, "ports": [{"name": "http", "port": 8000}]}
    return (SERVICE, {"metadata": {"name": name, "namespace": "inference"},
                      "spec": {**spec, "clusterIP": "None"} if headless else spec})


GOOD = [ROUTER_RELEASE, PODS, _ingress({"podSelector": {"matchLabels": ROUTER}}, PROMETHEUS),
        _service("chat", ROUTER, headless=False), _service("chat-pods", VLLM, headless=True),
        (NETWORK_POLICY, {"metadata": {"name": "default-deny-ingress", "namespace": "inference"},
                          "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})]


def _replace(resources: list, index: int, new: tuple) -> list:
    out = copy.deepcopy(resources)
    out[index] = new
    return out


ROUTING_CASES = [
    ("routing-no-path-around-router", GOOD,
     _replace(GOOD, 2, _ingress({"podSelector": {"matchLabels": ROUTER}}, PROMETHEUS, CONSUMERS)),
     "to routed pods, around the router", "prod"),
    ("routing-no-path-around-router", GOOD, _replace(GOOD, 4, _service("chat-pods", VLLM, headless=False)),
     "Service chat-pods (ClusterIP, with a virtual IP) selects routed pods", "prod"),
    # A Service on a subset of the pods (the canary's role label) is still a path around the router.
    ("routing-no-path-around-router", GOOD,
     [*GOOD, _service("chat-lb", {**VLLM, "platform.gpu/role": "baseline"}, headless=False)],
     "Service chat-lb", "prod"),
    # The router pods' label is only the router's in its own namespace.
    ("routing-no-path-around-router", GOOD,
     _replace(GOOD, 2, _ingress({"podSelector": {"matchLabels": ROUTER}, **CONSUMERS})), "around the router", "prod"),
]
