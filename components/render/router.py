"""The llm-d Router in front of a ModelService (``routing.mode: router``): pure functions.

Standalone mode (no Gateway controller): one Helm release of the llm-d-router standalone chart per
service runs the Endpoint Picker (EPP) with an Envoy sidecar; the chart also creates the
``InferencePool`` that selects the service's vLLM pods (baseline, burst and canary share the
``selector`` labels). We add the InferenceObjectives (priority classes), the public Service, which
keeps the service's name and port but now selects the router pods, a headless Service over the vLLM
pods for scraping only, NetworkPolicies, a PDB, a ServiceMonitor and alerts
(``render/router_monitoring.py``).
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from components import labels, versions
from components.config import ModelServiceConfig
from components.naming import k8s_name
from components.render import general_pool, images, vllm
from components.render.images import Mirror
from components.render.network_policy import PROMETHEUS_POD, _namespaces
from platform_facts import llmd

POOL_GROUP = "inference.networking.k8s.io"
# One router pod. Only the leader of several EPP replicas is Ready (cmd/epp/runner/health.go: with
# leader election, readiness needs isLeader), and the chart's EPP Deployment uses Recreate, so:
# Helm's wait (Recreate: every replica Ready) could never finish for 2, and a PDB could never let
# the leader go (the standby never counts as healthy), which deadlocks drains. Active-active
# (several Ready EPPs) would split the prefix-cache index (docs/operations.md, llm-d-router#1290).
# One pod keeps a single index; its loss is short (the EPP rebuilds its view from the pods'
# metrics) and is alerted (RouterDown); the general pool's disruption budgets bound when it moves.
REPLICAS = 1
PLUGINS_FILE = "routing.yaml"


def routed(svc: ModelServiceConfig) -> bool:
    return svc.routing.mode == "router"


def release_name(svc: ModelServiceConfig) -> str:
    """The Helm release; the chart names the InferencePool after it and the EPP ``<release>-epp``."""
    return k8s_name(svc.name, "router")


def epp_name(svc: ModelServiceConfig) -> str:
    # routerlib _helpers.tpl "llm-d-router.name": the release name truncated to 40, then "-epp".
    return release_name(svc)[:llmd.RELEASE_NAME_TRUNCATE] + llmd.EPP_SUFFIX


def epp_pod_selector(svc: ModelServiceConfig) -> dict[str, str]:
    """The router pods' labels (routerlib "llm-d-router.selectorLabels" with inferencePool.create)."""
    return {llmd.ROUTER_POD_LABEL: epp_name(svc)}


def pods_service_name(svc: ModelServiceConfig) -> str:
    return k8s_name(svc.name, "pods")


# --------------------------------------------------------------------------- sizing


def _cpu(cores: float) -> str:
    return f"{math.ceil(cores * 10) * 100}m"


def _epp_memory_gib(svc: ModelServiceConfig) -> int:
    return max(2, math.ceil(llmd.EPP_MEMORY_GIB_AT_50_RPS * svc.routing.peak_requests_per_second / 100))


def sizing(svc: ModelServiceConfig) -> dict[str, dict[str, Any]]:
    """Requests of the EPP and Envoy containers at ``routing.peakRequestsPerSecond``.

    EPP CPU: 0.5 CPU per req/s for 100k-token prompts, scaled by our longest prompt
    (maxModelLen / 100k: prefix hashing grows with prompt length), plus the idle cost of scraping
    every pod the pool can reach (7.5 cores per 100 pods). EPP memory: 4 GiB serves 50-100 req/s, so
    2 GiB below 50 req/s, limit twice that. Envoy: 1.2 cores below 10 req/s, scaled linearly above;
    2 GiB (measured peak 1.3-1.4 GiB). The chart's defaults (8 CPU + 4 CPU) fit no general node.
    """
    r = svc.routing
    pods = svc.scaling.max_replicas + (svc.canary.replicas if svc.canary else 0)
    prompt_share = svc.max_model_len / llmd.EPP_SIZING_PROMPT_TOKENS
    epp_cpu = llmd.EPP_CPU_PER_RPS_AT_100K_TOKENS * r.peak_requests_per_second * prompt_share
    epp_cpu += llmd.EPP_IDLE_CPU_PER_POD * pods
    epp_gib = _epp_memory_gib(svc)
    envoy_cpu = llmd.ENVOY_CPU_BELOW_10_RPS * max(1.0, r.peak_requests_per_second / 10)
    return {
        "epp": {"requests": {"cpu": _cpu(max(epp_cpu, 0.25)), "memory": f"{epp_gib}Gi"},
                "limits": {"memory": f"{2 * epp_gib}Gi"}},
        "proxy": {"requests": {"cpu": _cpu(envoy_cpu), "memory": f"{llmd.ENVOY_MEMORY_GIB}Gi"},
                  "limits": {"memory": f"{llmd.ENVOY_MEMORY_GIB + 1}Gi"}},
    }


def cpu_millicores(svc: ModelServiceConfig) -> int:
    """CPU all the router's pods request (EPP + Envoy, times replicas): the general pool's budget."""
    s = sizing(svc)
    return REPLICAS * sum(int(s[c]["requests"]["cpu"].removesuffix("m")) for c in ("epp", "proxy"))


# --------------------------------------------------------------------------- EPP config


def objective_name(svc: ModelServiceConfig, cls: str) -> str:
    return k8s_name(svc.name, cls)


def epp_config(svc: ModelServiceConfig) -> dict[str, Any]:
    """EndpointPickerConfig: the three scorers with our weights and flow control on.

    Flow control holds requests in the EPP while the pool is saturated (or empty) and dispatches
    them by priority; a full band answers 429, a request older than defaultRequestTTL is shed.
    Bands: priority 0 (no header) and every non-negative class get the whole bound; sheddable
    classes (priority < 0) a share of it, so they are refused first."""
    r = svc.routing
    bound = r.queue_bound(svc.scaling.max_replicas, svc.max_num_seqs)
    sheddable = max(1, bound * r.sheddable_queue_percent // 100)
    priorities = sorted({0, *(c.priority for c in r.priority_classes)})
    weights = [(llmd.PREFIX_CACHE_SCORER, r.prefix_cache_weight), (llmd.QUEUE_SCORER, r.queue_weight),
               (llmd.KV_CACHE_SCORER, r.kv_cache_weight)]
    return {
        "apiVersion": "llm-d.ai/v1alpha1",
        "kind": "EndpointPickerConfig",
        "featureGates": [llmd.FLOW_CONTROL_GATE],
        "plugins": [{"type": t} for t, _ in weights],
        "schedulingProfiles": [{"name": "default", "plugins": [
            {"pluginRef": t, "weight": int(w) if w == int(w) else w} for t, w in weights if w > 0]}],
        "flowControl": {
            "maxRequests": str(bound),
            # Queued bodies live in EPP memory: the global cap stays at half the container's request
            # (the per-band default, 1G each, would pass the limit with a few bands).
            "maxBytes": f"{_epp_memory_gib(svc) * 512}Mi",
            "defaultRequestTTL": f"{r.timeout_seconds(svc.slo.p99_generation_seconds)}s",
            "defaultNegativePriorityBand": {"priority": -1, "maxRequests": str(sheddable)},
            "priorityBands": [{"priority": p, "maxRequests": str(sheddable if p < 0 else bound)} for p in priorities],
        },
    }


def chart_values(svc: ModelServiceConfig, mirror: Mirror | None = None) -> dict[str, Any]:
    """Values of the llm-d-router standalone chart (checked key by key against its defaults); both
    images through the stack's pull-through cache where a rule covers their registry."""
    s = sizing(svc)
    epp_registry, epp_repository = images.chart_image(versions.LLMD_EPP_IMAGE["registry"],
                                                      versions.LLMD_EPP_IMAGE["repository"], mirror)
    placement = general_pool.placement()
    return {"router": {
        "modelServers": {"matchLabels": vllm.selector(svc), "type": "vllm", "protocol": "http",
                         "targetPorts": [{"number": vllm.PORT}]},
        "proxy": {"resources": s["proxy"], "image": images.image_ref(versions.LLMD_ENVOY_IMAGE, mirror)},
        "epp": {
            "replicas": REPLICAS,
            "image": {**versions.LLMD_EPP_IMAGE, "registry": epp_registry, "repository": epp_repository},
            "resources": s["epp"],
            "pluginsConfigFile": PLUGINS_FILE,
            "pluginsCustomConfig": {PLUGINS_FILE: yaml.safe_dump(epp_config(svc), sort_keys=False)},
            "affinity": placement["affinity"],
            "tolerations": placement["tolerations"],
        },
        # Our own ServiceMonitor; /metrics without a bearer token, the NetworkPolicy admits only Prometheus.
        "monitoring": {"prometheus": {"enabled": False, "auth": {"enabled": False}}},
        # The chart creates the InferencePool (and would create objectives from this list; ours are
        # our own objects, validated against the CRD).
        "inferencePool": {"create": True},
        "inferenceObjectives": [],
    }}


def inference_pool(svc: ModelServiceConfig, namespace: str) -> dict[str, Any]:
    """The InferencePool the chart renders from ``chart_values`` (routerlib _inferencepool.yaml),
    spelled out so conformance checks it against the CRD."""
    values = chart_values(svc)["router"]
    return {
        "apiVersion": f"{POOL_GROUP}/v1", "kind": "InferencePool",
        "metadata": {"name": release_name(svc), "namespace": namespace},
        "spec": {"targetPorts": values["modelServers"]["targetPorts"], "appProtocol": "http",
                 "selector": {"matchLabels": values["modelServers"]["matchLabels"]},
                 "endpointPickerRef": {"name": epp_name(svc), "port": {"number": llmd.EXT_PROC_PORT},
                                       "failureMode": "FailOpen"}},
    }


def inference_objectives(svc: ModelServiceConfig, namespace: str) -> list[dict[str, Any]]:
    return [{
        "metadata": {"name": objective_name(svc, c.name), "namespace": namespace,
                     "labels": {labels.APP_INSTANCE: svc.name, labels.MANAGED_BY: labels.MANAGED_BY_VALUE}},
        "spec": {"priority": c.priority, "poolRef": {"group": POOL_GROUP, "name": release_name(svc)}},
    } for c in svc.routing.priority_classes]


# --------------------------------------------------------------------------- Services


def public_service(svc: ModelServiceConfig, namespace: str) -> dict[str, Any]:
    """The name and port clients already use, now in front of the router's Envoy listener."""
    return {
        "metadata": {"name": vllm.names(svc)["service"], "namespace": namespace,
                     "labels": {labels.APP_INSTANCE: svc.name, labels.APP_COMPONENT: "router",
                                labels.MANAGED_BY: labels.MANAGED_BY_VALUE},
                     "annotations": {vllm.SKIP_AWAIT: "true"}},
        "spec": {"type": "ClusterIP", "selector": epp_pod_selector(svc),
                 "ports": [{"name": vllm.PORT_NAME, "port": vllm.PORT, "targetPort": llmd.PROXY_PORT,
                            "protocol": "TCP"}]},
    }


def pods_service(svc: ModelServiceConfig, namespace: str) -> dict[str, Any]:
    """Headless Service over the vLLM pods, kept for the ServiceMonitor only (prometheus-operator
    discovers scrape targets through Services); no virtual IP that could bypass the router."""
    base = vllm.service(svc, namespace)
    return {"metadata": {**base["metadata"], "name": pods_service_name(svc)},
            "spec": {**base["spec"], "clusterIP": "None"}}


def vllm_service_monitor(svc: ModelServiceConfig, namespace: str, interval_seconds: int) -> dict[str, Any]:
    """The vLLM ServiceMonitor, its ``service`` label kept as the service's name so every query and
    alert keyed on it reads the same series in both modes."""
    base = vllm.service_monitor(svc, namespace, interval_seconds)
    endpoint = {**base["spec"]["endpoints"][0],
                "relabelings": [{"action": "replace", "targetLabel": "service", "replacement": svc.name}]}
    return {"metadata": base["metadata"], "spec": {**base["spec"], "endpoints": [endpoint]}}


# --------------------------------------------------------------------------- policies


def vllm_ingress(svc: ModelServiceConfig, namespace: str, monitoring_namespace: str) -> dict[str, Any]:
    """The vLLM port from the router pods (requests and the EPP's metric scrapes) and Prometheus;
    consumers have no path around the router."""
    port = [{"protocol": "TCP", "port": vllm.PORT}]
    prometheus = {**_namespaces([monitoring_namespace]), "podSelector": {"matchLabels": dict(PROMETHEUS_POD)}}
    router = {"podSelector": {"matchLabels": epp_pod_selector(svc)}}
    return {
        "metadata": {"name": k8s_name(svc.name, "ingress"), "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": vllm.selector(svc)}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [router, prometheus], "ports": port}]},
    }


def router_ingress(svc: ModelServiceConfig, namespace: str, monitoring_namespace: str) -> dict[str, Any]:
    """The router's listener from the consumer namespaces; its metrics port from Prometheus."""
    prometheus = {**_namespaces([monitoring_namespace]), "podSelector": {"matchLabels": dict(PROMETHEUS_POD)}}
    rules: list[dict[str, Any]] = [{"from": [prometheus], "ports": [{"protocol": "TCP", "port": llmd.METRICS_PORT}]}]
    if svc.consumer_namespaces:
        rules.append({"from": [_namespaces(sorted(svc.consumer_namespaces))],
                      "ports": [{"protocol": "TCP", "port": llmd.PROXY_PORT}]})
    return {
        "metadata": {"name": k8s_name(svc.name, "router-ingress"), "namespace": namespace},
        "spec": {"podSelector": {"matchLabels": epp_pod_selector(svc)}, "policyTypes": ["Ingress"], "ingress": rules},
    }


def pod_disruption_budget(svc: ModelServiceConfig, namespace: str) -> dict[str, Any]:
    """Evictable (maxUnavailable 1 of the one pod): a PDB that kept the only router pod would block
    every drain of its node; the pod is rescheduled at once and RouterDown fires if it stays down."""
    return {"metadata": {"name": release_name(svc), "namespace": namespace},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": epp_pod_selector(svc)},
                     "unhealthyPodEvictionPolicy": "AlwaysAllow"}}
