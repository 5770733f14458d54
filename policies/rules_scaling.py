"""Scaling rules that one resource can answer: bounds, trigger queries, metric names."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from platform_facts.vllm import REMOVED_METRICS as REMOVED_VLLM_METRICS

from .base import resource_rule
from .workloads import dig, strings, workload_name

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
QUERY_CARRIERS = (SCALED_OBJECT, SCALED_JOB, "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
                  "kubernetes:core/v1:ConfigMap", "kubernetes:helm.sh/v3:Release")
# A KEDA Prometheus query must return one element: an aggregation over everything.
# predict_linear of an aggregated subquery (the predictive trigger) is one series too.
ONE_SERIES = re.compile(r"^\s*(clamp_(min|max)\(\s*)?(predict_linear\(\s*)?(sum|max|min|avg|count|scalar)\s*\(|"
                        r"^\s*histogram_quantile\(\s*[0-9.]+\s*,\s*sum\s+by\s*\(\s*le\s*\)")


def replica_bounds(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = props.get("spec") or {}
    if rtype in (SCALED_OBJECT, SCALED_JOB):
        lo, hi = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    elif rtype == HPA:
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas")
    else:
        return
    if hi is not None and int(lo) > int(hi):
        yield f"{workload_name(props)}: min replicas {lo} > max replicas {hi}."
    idle = spec.get("idleReplicaCount")
    if rtype == SCALED_OBJECT and idle is not None and int(idle) >= int(lo):
        yield f"{workload_name(props)}: idleReplicaCount {idle} must be below minReplicaCount {lo}."


def _prometheus_triggers(props: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    return [t for t in dig(props, "spec", "triggers") or () if t.get("type") == "prometheus"]


def single_series(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in (SCALED_OBJECT, SCALED_JOB):
        return
    for t in _prometheus_triggers(props):
        query = str(dig(t, "metadata", "query") or "")
        if not ONE_SERIES.match(query) or re.search(r"\)\s*by\s*\(|\bby\s*\((?!\s*le\s*\))", query):
            yield (f"{workload_name(props)}: trigger {t.get('name', '?')} query may return several series "
                   f"(KEDA errors on more than one): {query!r}.")


def current_metric_names(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in QUERY_CARRIERS:
        return
    seen: set[str] = set()
    for s in strings(props):
        for old, new in REMOVED_VLLM_METRICS.items():
            if old in s and old not in seen:
                seen.add(old)
                yield f"{workload_name(props)}: {old} was removed from vLLM (0.12); use {new}."


def prometheus_address(rtype: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in (SCALED_OBJECT, SCALED_JOB):
        return
    for t in _prometheus_triggers(props):
        address = dig(t, "metadata", "serverAddress")
        if address != config["prometheusUrl"]:
            yield (f"{workload_name(props)}: trigger {t.get('name', '?')} reads {address!r}, not the platform's "
                   f"Prometheus {config['prometheusUrl']!r}.")


RULES = [
    resource_rule("scaling-replica-bounds", "Scaling", "Autoscalers have min <= max (and KEDA's idleReplicaCount < minReplicaCount).",
        "KEDA's webhook and the HPA controller reject inverted bounds; the service never scales.",
        "set the minimum at or below the maximum.", replica_bounds),
    resource_rule("keda-prometheus-single-series", "Scaling", "KEDA Prometheus triggers aggregate to exactly one series.",
        "The KEDA Prometheus scaler errors when a query returns more than one element, and the service stops scaling.",
        "wrap the query in sum(...), max(...) or histogram_quantile(q, sum by (le) (...)).", single_series),
    resource_rule("vllm-current-metric-names", "Scaling", "Triggers, alerts and dashboards use metric names vLLM 0.12+ still emits.",
        "vllm:gpu_cache_usage_perc was removed in 0.12; a query on it returns nothing and never scales.",
        "replace the removed metric with its current name.", current_metric_names),
    resource_rule("keda-platform-prometheus", "Scaling", "KEDA Prometheus triggers read the platform's Prometheus.",
        "A trigger pointed at another or a mistyped server returns nothing; KEDA then treats demand as zero.",
        "use the Monitoring component's prometheus_url output instead of a typed URL.", prometheus_address,
        {"prometheusUrl": {"type": "string", "default": "http://kps-prometheus.monitoring.svc:9090",
                             "description": "The platform's in-cluster Prometheus URL."}}),
]
