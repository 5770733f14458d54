"""Routing: a service behind the llm-d Router has no path around it.

The router is where the queue is bounded, priorities are applied and overload answers 429; a
client that reaches the vLLM pods directly skips all of it and, worse, lands on pods the router
believes idle. A routed service is found from its router release (the llm-d-router standalone
chart): its ``router.modelServers.matchLabels`` select the model-server pods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from platform_facts import llmd
from platform_facts.kubernetes import PROMETHEUS_POD_LABELS

from .base import stack_rule
from .rules_stack import _by_type, _name, _ns, workloads
from .workloads import dig, selector_matches

RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICE = "kubernetes:core/v1:Service"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _routed(resources: Sequence[Any]) -> list[tuple[str, dict[str, str], list[Mapping[str, Any]]]]:
    """(namespace, router pod selector, pod label sets of the routed workloads) per router release."""
    out = []
    ws = workloads(resources)
    for r in _by_type(resources, RELEASE):
        if not str(r.props.get("chart", "")).endswith(llmd.CHART_NAME):
            continue
        ns = str(r.props.get("namespace") or "default")
        match = dig(r.props, "values", "router", "modelServers", "matchLabels") or {}
        release = str(r.props.get("name") or "")
        router = {llmd.ROUTER_POD_LABEL: release[:llmd.RELEASE_NAME_TRUNCATE] + llmd.EPP_SUFFIX}
        pods = [w.pod_labels for w in ws if w.namespace == ns and match
                and selector_matches({"matchLabels": match}, w.pod_labels)]
        out.append((ns, router, pods))
    return out


def _selects(selector: Mapping[str, Any] | None, pods: list[Mapping[str, Any]]) -> bool:
    """A NetworkPolicy podSelector: the empty selector selects every pod of the namespace."""
    if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return bool(pods)
    return any(selector_matches(selector, p) for p in pods)


def _allowed_peer(peer: Mapping[str, Any], router: Mapping[str, str]) -> bool:
    """The router's pods (same namespace), or Prometheus pods (for /metrics)."""
    labels = dig(peer, "podSelector", "matchLabels") or {}
    if "ipBlock" in peer or not labels:
        return False
    if labels == router and "namespaceSelector" not in peer:
        return True
    return PROMETHEUS_POD_LABELS.items() <= labels.items()


def _policy_paths(p: Any, ns: str, router: Mapping[str, str], pods: list[Mapping[str, Any]]) -> Iterable[str]:
    if _ns(p.props) != ns or not _selects(dig(p.props, "spec", "podSelector"), pods):
        return
    for i, rule in enumerate(dig(p.props, "spec", "ingress") or ()):
        peers = rule.get("from") or ()
        if not peers:
            yield f"NetworkPolicy {_name(p.props)} ingress[{i}] admits every source to routed pods"
        for peer in peers:
            if not _allowed_peer(peer, router):
                yield f"NetworkPolicy {_name(p.props)} ingress[{i}] admits {dict(peer)} to routed pods, around the router"


def no_path_around_router(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for ns, router, pods in _routed(resources):
        if not pods:
            continue
        for p in _by_type(resources, NETWORK_POLICY):
            for message in _policy_paths(p, ns, router, pods):
                yield p.urn, message + "."
        for s in _by_type(resources, SERVICE):
            selector = dig(s.props, "spec", "selector") or {}
            if _ns(s.props) != ns or not selector or not any(selector_matches({"matchLabels": selector}, p) for p in pods):
                continue
            kind = dig(s.props, "spec", "type") or "ClusterIP"
            if kind != "ClusterIP" or dig(s.props, "spec", "clusterIP") != "None":
                yield s.urn, (f"Service {_name(s.props)} ({kind}, with a virtual IP) selects routed pods: "
                              "clients can call them without the router.")


RULES = [
    stack_rule("routing-no-path-around-router", "Routing",
               "Pods behind an llm-d Router are reachable only through it (and by Prometheus).",
               "The router bounds the queue, applies priorities and answers 429 under overload; a direct path to the "
               "pods skips all of it and overloads pods the router believes free.",
               "admit only the router's pods and Prometheus in the NetworkPolicies that select the model-server pods, "
               "and make any Service over them headless (clusterIP: None), for scraping only.",
               no_path_around_router),
]
