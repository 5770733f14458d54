"""The llm-d Router in front of a ModelService: config, render, CRD conformance, placement."""

from __future__ import annotations

import pytest
import yaml

from components.render import general_pool, router, router_monitoring
from components.render.pod_security import workload_namespace_level
from tests.conformance import check_custom_resource, values_errors
from tests.conftest import assert_config_rejected, build, by_type, custom_resources, load, load_plain_prod, load_with, release
from tests.test_config import _set

# --------------------------------------------------------------------------- config


def _routed(values: dict) -> None:
    """dev (a scale-to-zero service) behind the router, without activeHours."""
    for svc in values["modelServices"]:
        svc["routing"] = {"mode": "router"}
        svc["scaling"].pop("activeHours", None)

BAD = [
    ("mode-enum", _set("modelServices.0.routing.mode", "gateway"),
     ["modelServices[0].routing.mode:", "'service' or 'router'", "'gateway'"]),
    ("replicas-not-configurable", _set("modelServices.0.routing.replicas", 2),
     ["modelServices[0].routing.replicas: unknown key"]),
    ("weight-negative", _set("modelServices.0.routing.queueWeight", -1),
     ["modelServices[0].routing.queueWeight:", "greater than or equal to 0"]),
    ("all-weights-zero", _set("modelServices.0.routing", {"prefixCacheWeight": 0, "queueWeight": 0, "kvCacheWeight": 0}),
     ["modelServices[0].routing.prefixCacheWeight: 0 with the other weights 0"]),
    ("queue-over-band-default", _set("modelServices.0.routing.maxQueuedRequests", 6000),
     ["modelServices[0].routing.maxQueuedRequests:", "less than or equal to 5000"]),
    ("duplicate-class", _set("modelServices.0.routing.priorityClasses", [{"name": "a", "priority": 1},
                                                                        {"name": "a", "priority": 2}]),
     ["modelServices[0].routing.priorityClasses[1].name: 'a' appears twice"]),
    ("priority-int32", _set("modelServices.0.routing.priorityClasses", [{"name": "a", "priority": 2**31}]),
     ["modelServices[0].routing.priorityClasses[0].priority:", "less than or equal to 2147483647"]),
]


@pytest.mark.parametrize("mutate,expected", [(m, e) for _, m, e in BAD], ids=[b[0] for b in BAD])
def test_bad_routing_config_names_key_value_and_what_is_allowed(mutate, expected):
    assert_config_rejected("prod", mutate, expected)


def test_stacks_route_in_staging_and_prod_only():
    assert {s.routing.mode for s in load("dev").model_services} == {"service"}
    assert {s.routing.mode for s in load("staging").model_services} == {"router"}
    assert {s.routing.mode for s in load("prod").model_services} == {"router"}


# --------------------------------------------------------------------------- render


def test_queue_limits_come_from_the_slo_and_the_batch():
    chat = load_plain_prod().model_services[0]  # maxReplicas 8, maxNumSeqs 256, p99 generation 30 s
    fc = router.epp_config(chat)["flowControl"]
    assert fc["defaultRequestTTL"] == "30s"
    assert fc["maxRequests"] == "2048"  # 8 replicas x 256 sequences
    bands = {b["priority"]: b["maxRequests"] for b in fc["priorityBands"]}
    assert bands == {-1: "512", 0: "2048", 10: "2048"}  # sheddable: 25 % of the bound
    assert fc["defaultNegativePriorityBand"]["maxRequests"] == "512"
    assert fc["maxBytes"] == "1024Mi"  # half the EPP's 2 GiB request


def test_epp_config_turns_flow_control_on_with_the_weights():
    chat = load("prod").model_services[0]
    cfg = router.epp_config(chat)
    assert cfg["featureGates"] == ["flowControl"]
    assert cfg["schedulingProfiles"][0]["plugins"] == [
        {"pluginRef": "prefix-cache-scorer", "weight": 2}, {"pluginRef": "queue-scorer", "weight": 2},
        {"pluginRef": "kv-cache-utilization-scorer", "weight": 1}]
    values = router.chart_values(chat)["router"]
    assert yaml.safe_load(values["epp"]["pluginsCustomConfig"][values["epp"]["pluginsConfigFile"]]) == cfg


def test_router_is_sized_from_the_request_rate_not_the_chart_defaults():
    chat, reason = load_plain_prod().model_services
    # chat-8b: 0.5 CPU/(req/s) x 10 req/s x 16384/100k + 0.075 x 8 pods = 1.42 -> 1500m.
    assert router.sizing(chat)["epp"] == {"requests": {"cpu": "1500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    assert router.sizing(chat)["proxy"] == {"requests": {"cpu": "1200m", "memory": "2Gi"}, "limits": {"memory": "3Gi"}}
    # reason-70b: 32k context, 5 pods: 0.5 x 10 x 0.328 + 0.375 = 2.01 -> 2100m.
    assert router.sizing(reason)["epp"]["requests"]["cpu"] == "2100m"
    assert router.cpu_millicores(chat) == 1500 + 1200


def test_values_fit_the_vendored_chart_defaults():
    chat = load("prod").model_services[0]
    assert list(values_errors("llm-d-router-standalone", router.chart_values(chat))) == []
    assert list(values_errors("llm-d-router-standalone", {"router": {"epp": {"replica": 2}}})) == [
        "llm-d-router-standalone: values key 'router.epp.replica' is not in the chart's defaults (the chart ignores it)"]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_pool_and_objectives_conform_to_the_vendored_crds(stack):
    for svc in load(stack).model_services:
        pool = router.inference_pool(svc, svc.namespace)
        assert check_custom_resource(pool, set()) == []
        assert pool["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "vllm",
                                                           "app.kubernetes.io/instance": svc.name}
        for obj in router.inference_objectives(svc, svc.namespace):
            full = {"apiVersion": "llm-d.ai/v1alpha2", "kind": "InferenceObjective", **obj}
            assert check_custom_resource(full, set()) == []
            assert obj["spec"]["poolRef"]["name"] == pool["metadata"]["name"]


def test_the_crd_check_rejects_a_bad_pool():
    svc = load("prod").model_services[0]
    pool = router.inference_pool(svc, svc.namespace)
    pool["spec"]["targetPorts"] = [{"number": 8000}] * 9  # the CRD allows at most 8
    assert check_custom_resource(pool, set())


def test_router_mode_objects(prod_result):
    chat = release(prod_result, "chat-8b-router")
    assert chat["chart"] == "oci://ghcr.io/llm-d/charts/llm-d-router-standalone" and chat["version"] == "v0.10.0"
    assert chat["values"]["router"]["epp"]["replicas"] == 1
    objectives = {o["metadata"]["name"]: o["spec"]["priority"] for o in custom_resources(prod_result, "InferenceObjective")}
    assert objectives == {"chat-8b-interactive": 10, "chat-8b-best-effort": -1,
                          "reason-70b-interactive": 10, "reason-70b-best-effort": -1}
    pdbs = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in by_type(prod_result, "kubernetes:policy/v1:PodDisruptionBudget")}
    assert pdbs["chat-8b-router"]["maxUnavailable"] == 1
    assert pdbs["chat-8b-router"]["selector"] == {"matchLabels": {"llm-d-router-gateway": "chat-8b-router-epp"}}
    crds = {c.inputs["metadata"]["name"] for c in by_type(prod_result, "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition")}
    assert crds == {"inferencepools.inference.networking.k8s.io", "inferenceobjectives.llm-d.ai"}


def test_router_alerts_and_monitor(prod_result):
    rules = {r["alert"] for pr in custom_resources(prod_result, "PrometheusRule") for g in pr["spec"]["groups"]
             for r in g["rules"] if r.get("labels", {}).get("service") == "chat-8b"}
    assert {"Chat8bRouterDown", "Chat8bRouterSaturated", "Chat8bRouterShedding"} <= rules
    mon = next(m for m in custom_resources(prod_result, "ServiceMonitor") if m["metadata"]["name"] == "chat-8b-router")
    assert mon["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "chat-8b-router-epp"}}
    assert mon["spec"]["endpoints"][0]["port"] == "http-metrics"


def test_router_triggers_replace_active_hours_and_wake_query():
    chat = load("prod").model_services[0]  # a baseline of 2: no wake trigger
    assert [t["name"] for t in router_monitoring.triggers(chat, "inference", "http://p")] == ["router-queue"]
    (dev,) = load_with("dev", _routed).model_services  # minReplicas 0
    assert [t["name"] for t in router_monitoring.triggers(dev, "inference", "http://p")] == ["router-queue", "router-wake"]
    q = router_monitoring.queries(chat, "inference")
    assert q["queue"] == ('sum(llm_d_epp_flow_control_queue_size{namespace="inference",service="chat-8b-router-epp"})'
                          " or vector(0)")


# --------------------------------------------------------------------------- placement


def test_general_pool_holds_the_routers(prod_result):
    pools = {p["metadata"]["name"]: p["spec"] for p in custom_resources(prod_result, "NodePool")}
    general = pools["general"]
    # Routers: (1500m + 1200m) + (2100m + 1200m) = 6.0 cores, plus one 8-vCPU node.
    assert general["limits"] == {"cpu": "14"}
    reqs = {r["key"]: r["values"] for r in general["template"]["spec"]["requirements"]}
    assert reqs["karpenter.sh/capacity-type"] == ["on-demand"]
    assert set(reqs["node.kubernetes.io/instance-type"]) == set(general_pool.POOL_INSTANCE_TYPES)
    assert general["template"]["spec"]["taints"] == [{"key": "platform.gpu/general", "value": "true",
                                                      "effect": "NoSchedule"}]
    epp = release(prod_result, "chat-8b-router")["values"]["router"]["epp"]
    assert epp["tolerations"] == general_pool.placement()["tolerations"]
    assert epp["affinity"] == general_pool.placement()["affinity"]


def test_dev_without_routers_has_no_general_pool():
    result = build(load("dev"))
    assert "general" not in {p["metadata"]["name"] for p in custom_resources(result, "NodePool")}


def test_router_namespace_is_at_most_baseline():
    assert workload_namespace_level(False, routed=True) == "baseline"
    assert workload_namespace_level(True, routed=True) == "privileged"
    assert workload_namespace_level(False) == "restricted"


@pytest.fixture(scope="module")
def prod_result():
    return build(load("prod"))


def test_redis_moves_to_the_general_pool_and_counts_in_its_limit():
    result = build(load("staging"))
    (redis,) = [r.inputs for r in by_type(result, "kubernetes:apps/v1:StatefulSet")
                if r.inputs["metadata"]["name"] == "embed-redis"]
    assert redis["spec"]["template"]["spec"]["nodeSelector"] == {"platform.gpu/pool": "general"}
    assert redis["spec"]["template"]["spec"]["tolerations"] == general_pool.placement()["tolerations"]
    pool = next(p["spec"] for p in custom_resources(result, "NodePool") if p["metadata"]["name"] == "general")
    # chat's router (1100m + 1200m) + Redis 250m = 2.55 cores -> 3, plus one 8-vCPU node.
    assert pool["limits"] == {"cpu": "11"}
