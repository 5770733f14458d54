"""A ModelService's scaling objects and alerts: pure functions from config to dicts.

The burst Deployment is scaled by KEDA (or an HPA in ``hpa`` mode) from 0 to
``maxReplicas - minReplicas``; its triggers subtract the baseline's capacity, so baseline +
burst together track demand. Alerts watch the queue, the KV cache, TTFT and a burst pinned
at its maximum.
"""

from __future__ import annotations

from typing import Any

from components.config import ModelServiceConfig
from components.render.vllm import BASELINE_ANNOTATION, cold_start_seconds, names
from platform_facts import vllm as metrics

# --------------------------------------------------------------------------- scaling


def _m(metric: str, svc: ModelServiceConfig, namespace: str, **extra: str) -> str:
    """A selector on this service's series only: its namespace and Service (set by the monitor)."""
    parts = [f'namespace="{namespace}"', f'service="{svc.name}"'] + [f'{k}=~"{v}"' for k, v in extra.items()]
    return metric + "{" + ",".join(parts) + "}"


def queries(svc: ModelServiceConfig, namespace: str) -> dict[str, str]:
    """PromQL for the triggers; each returns exactly one series (aggregated)."""
    base = svc.scaling.min_replicas
    target = svc.scaling.target_waiting_per_replica
    burst_pods = f"{names(svc)['burst']}-.*"
    return {
        # Waiting requests beyond what the baseline replicas absorb at their target.
        "waiting": f"clamp_min(sum({_m(metrics.NUM_REQUESTS_WAITING, svc, namespace)}) - {base * target:g}, 0)",
        "kv_cache": f"max({_m(metrics.KV_CACHE_USAGE, svc, namespace)}) or vector(0)",
        "ttft_p95": ("histogram_quantile(0.95, sum by (le) "
                     f"(rate({_m(metrics.TTFT_BUCKET, svc, namespace)}[2m])))"),
        # Keep-alive: running requests on burst pods keep them up until they finish.
        "running": f"sum({_m(metrics.NUM_REQUESTS_RUNNING, svc, namespace, pod=burst_pods)}) or vector(0)",
    }


def hpa_behavior(svc: ModelServiceConfig) -> dict[str, Any]:
    sc = svc.scaling
    return {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": sc.scale_up_pods_per_minute, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": sc.scale_down_stabilization_seconds, "selectPolicy": "Min",
                      "policies": [{"type": "Pods", "value": sc.scale_down_pods_per_period,
                                    "periodSeconds": sc.scale_down_period_seconds}]},
    }


def burst_max(svc: ModelServiceConfig) -> int:
    return svc.scaling.max_replicas - svc.scaling.min_replicas


def scaled_object(svc: ModelServiceConfig, namespace: str, prometheus_url: str) -> dict[str, Any]:
    sc, q, n = svc.scaling, queries(svc, namespace), names(svc)

    def trigger(name: str, query: str, threshold: float, activation: float, metric_type: str) -> dict[str, Any]:
        return {"type": "prometheus", "name": name, "metricType": metric_type, "metadata": {
            "serverAddress": prometheus_url, "query": query,
            "threshold": f"{threshold:g}", "activationThreshold": f"{activation:g}"}}

    triggers = [
        # Queue depth is per replica: AverageValue gives ceil(waiting / target) burst replicas.
        trigger("waiting", q["waiting"], sc.target_waiting_per_replica, 0, "AverageValue"),
        # KV-cache usage is a ratio: Value scales current replicas by usage / target.
        trigger("kv-cache", q["kv_cache"], sc.kv_cache_target, sc.kv_cache_target, "Value"),
    ]
    if sc.ttft_trigger:
        triggers.append(trigger("ttft-p95", q["ttft_p95"], svc.slo.ttft_p95_seconds, svc.slo.ttft_p95_seconds, "Value"))
    if sc.active_hours is not None:
        ah = sc.active_hours
        triggers.append({"type": "cron", "name": "active-hours", "metadata": {
            "timezone": ah.timezone, "start": ah.start, "end": ah.end, "desiredReplicas": "1"}})
    if sc.wake_query is not None:
        # Demand seen before vLLM (at the gateway): the only signal that exists at zero replicas.
        triggers.append(trigger("wake", sc.wake_query, sc.target_waiting_per_replica, 0, "AverageValue"))
    if sc.keep_alive:
        # Threshold at a full batch per replica: it adds replicas only when batches saturate,
        # and keeps burst replicas active while any request runs on them.
        triggers.append(trigger("keep-alive", q["running"], svc.max_num_seqs, 0, "AverageValue"))
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": n["burst"]},
        "pollingInterval": sc.polling_interval_seconds,
        "cooldownPeriod": sc.cooldown_seconds,
        # No scaling decisions until a new replica could have loaded its model.
        "initialCooldownPeriod": cold_start_seconds(svc.model),
        "maxReplicaCount": burst_max(svc),
        # If Prometheus cannot answer 3 times, hold half the burst capacity instead of guessing.
        "fallback": {"failureThreshold": 3, "replicas": max(1, burst_max(svc) // 2)},
        "advanced": {"horizontalPodAutoscalerConfig": {"name": n["hpa"], "behavior": hpa_behavior(svc)}},
        "triggers": triggers,
    }
    if sc.scale_to_zero:
        # Idle -> 0; active -> at least 1 (KEDA requires idleReplicaCount < minReplicaCount).
        spec["minReplicaCount"], spec["idleReplicaCount"] = 1, 0
    else:
        # The baseline Deployment holds the minimum; burst replicas come and go from 0.
        spec["minReplicaCount"] = 0
    meta: dict[str, Any] = {"name": n["scaled_object"], "namespace": namespace}
    if sc.min_replicas:
        # Policies read this: the minimum lives in the baseline Deployment, not here.
        meta["annotations"] = {BASELINE_ANNOTATION: n["baseline"]}
    return {"metadata": meta, "spec": spec}


def hpa(svc: ModelServiceConfig, namespace: str) -> dict[str, Any]:
    """hpa mode: autoscaling/v2 on the adapter's per-pod queue metric (never with KEDA)."""
    return {
        "metadata": {"name": names(svc)["hpa"], "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": names(svc)["burst"]},
            "minReplicas": 1,
            "maxReplicas": burst_max(svc),
            "metrics": [{"type": "Pods", "pods": {"metric": {"name": "vllm_num_requests_waiting"},
                                                  "target": {"type": "AverageValue",
                                                             "averageValue": f"{svc.scaling.target_waiting_per_replica:g}"}}}],
            "behavior": hpa_behavior(svc),
        },
    }


# --------------------------------------------------------------------------- alerts


def prometheus_rule(svc: ModelServiceConfig, namespace: str) -> dict[str, Any]:
    n = names(svc)
    title = "".join(p.capitalize() for p in svc.name.split("-"))
    pod_re = f"{svc.name}-(baseline|burst|canary)-.*"
    common = {"service": svc.name, "namespace": namespace}

    def alert(name: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
        return {"alert": f"{title}{name}", "expr": expr, "for": for_,
                "labels": {**common, "severity": severity}, "annotations": {"summary": summary}}

    waiting = _m(metrics.NUM_REQUESTS_WAITING, svc, namespace)
    running = _m(metrics.NUM_REQUESTS_RUNNING, svc, namespace)
    kv = _m(metrics.KV_CACHE_USAGE, svc, namespace)
    ttft = _m(metrics.TTFT_BUCKET, svc, namespace)
    rules = [
        alert("QueueBacklog", f"sum({waiting}) / clamp_min(count({running}), 1) > {svc.scaling.target_waiting_per_replica:g}",
              "10m", "warning", f"{svc.name}: more than {svc.scaling.target_waiting_per_replica:g} requests waiting per replica for 10m"),
        alert("TTFTAboveSLO", f"histogram_quantile(0.95, sum by (le) (rate({ttft}[5m]))) > {svc.slo.ttft_p95_seconds:g}",
              "10m", "critical", f"{svc.name}: TTFT p95 above the {svc.slo.ttft_p95_seconds:g}s SLO for 10m"),
        alert("KVCacheNearFull", f"max({kv}) > 0.95", "10m", "warning",
              f"{svc.name}: KV cache above 95% (preemptions likely)"),
        alert("GPUPodsPending", f'sum(kube_pod_status_phase{{namespace="{namespace}",pod=~"{pod_re}",phase="Pending"}}) > 0',
              f"{svc.pending_alert_minutes}m", "warning",
              f"{svc.name}: GPU pods Pending for {svc.pending_alert_minutes}m (node autoscaling not keeping up)"),
    ]
    if burst_max(svc) > 0:
        rules.append(alert(
            "PinnedAtMax",
            f'max(kube_horizontalpodautoscaler_status_current_replicas{{namespace="{namespace}",'
            f'horizontalpodautoscaler="{n["hpa"]}"}}) >= {burst_max(svc)}',
            "15m", "warning", f"{svc.name}: at maxReplicas {svc.scaling.max_replicas} for 15m; raise it or the GPU limits"))
    return {"metadata": {"name": n["rules"], "namespace": namespace},
            "spec": {"groups": [{"name": f"{svc.name}.rules", "rules": rules}]}}
