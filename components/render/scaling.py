"""A ModelService's scaling objects and alerts: pure functions from config to dicts.

The burst Deployment is scaled by KEDA (or an HPA in ``hpa`` mode) from 0 to
``maxReplicas - minReplicas``; its triggers subtract the baseline's capacity, so baseline +
burst together track demand. Alerts watch the queue, the KV cache, TTFT and a burst pinned
at its maximum.
"""

from __future__ import annotations

import math
import re
from typing import Any

from components import sizing
from components.config import ModelServiceConfig
from components.render import router_monitoring
from components.render.vllm import BASELINE_ANNOTATION, ROLE, cold_start_seconds, names
from platform_facts import catalog, coldstart
from platform_facts import vllm as metrics

# --------------------------------------------------------------------------- scaling


def _m(metric: str, svc: ModelServiceConfig, namespace: str, **extra: str) -> str:
    """A selector on this service's series only: its namespace and Service (set by the monitor).
    ``extra`` adds exact matchers; a value starting with ``!`` negates it."""
    parts = [f'namespace="{namespace}"', f'service="{svc.name}"']
    parts += [f'{k}!="{v[1:]}"' if v.startswith("!") else f'{k}="{v}"' for k, v in extra.items()]
    return metric + "{" + ",".join(parts) + "}"


# The pod label the ServiceMonitor copies onto every series (podTargetLabels), spelled as
# prometheus-operator sanitizes a label key into a Prometheus label name.
ROLE_LABEL = re.sub(r"[^a-zA-Z0-9_]", "_", ROLE)


def _fixed_pods(svc: ModelServiceConfig, namespace: str) -> str:
    """How many non-burst pods (baseline and canary) Prometheus scrapes now: one vLLM gauge
    series per pod that serves metrics, so a lost or still-loading baseline pod is not counted.
    ``count`` of nothing is empty, hence the guard."""
    return f"(count({_m(metrics.NUM_REQUESTS_WAITING, svc, namespace, **{ROLE_LABEL: '!burst'})}) or vector(0))"


def _beyond_fixed(total: str, per_pod: float, svc: ModelServiceConfig, namespace: str) -> str:
    """``total`` minus what the fixed pods carry at ``per_pod`` each, floored at 0: demand left
    for the burst in units of ``per_pod`` x replicas. One series; 0 with no series at all."""
    return f"clamp_min({total} - {per_pod:g} * {_fixed_pods(svc, namespace)}, 0) or vector(0)"


def queries(svc: ModelServiceConfig, namespace: str) -> dict[str, str]:
    """PromQL for the triggers; each returns exactly one series (aggregated), also with no
    series at all. Every query is a demand that adding burst replicas does not raise (see
    ``scaled_object`` for why each one is typed as it is)."""
    sc = svc.scaling
    return {
        # Waiting requests beyond what the live fixed pods absorb at their target.
        "waiting": _beyond_fixed(f"sum({_m(metrics.NUM_REQUESTS_WAITING, svc, namespace)})",
                                 sc.target_waiting_per_replica, svc, namespace),
        # KV-cache in use, in full caches (sum of 0-1 per pod), beyond the fixed pods' share.
        "kv_cache": _beyond_fixed(f"sum({_m(metrics.KV_CACHE_USAGE, svc, namespace)})",
                                  sc.kv_cache_target, svc, namespace),
        # 1 while TTFT p95 is above the SLO, else 0 (NaN, no traffic, compares false).
        # 1 while TTFT p95 is above the SLO, else 0 (a NaN p95, no first token in the window,
        # compares false); max() of the one sample keeps the result guarded with vector(0).
        "ttft_p95": ("max(histogram_quantile(0.95, sum by (le) "
                     f"(rate({_m(metrics.TTFT_BUCKET, svc, namespace)}[2m]))) > bool {svc.slo.ttft_p95_seconds:g})"
                     " or vector(0)"),
        # Running requests beyond what the fixed pods' batches hold: all of them without a baseline.
        # 1 while the burst Deployment asks for more than one replica (kube-state-metrics).
        "burst_above_one": (f'max(kube_deployment_spec_replicas{{namespace="{namespace}",'
                            f'deployment="{names(svc)["burst"]}"}} > bool 1) or vector(0)'),
        "running": _beyond_fixed(f"sum({_m(metrics.NUM_REQUESTS_RUNNING, svc, namespace)})",
                                 svc.max_num_seqs, svc, namespace),
    }


COLD_START_ANNOTATION = "platform.gpu/modelled-cold-start-seconds"


def modelled_cold_start_seconds(svc: ModelServiceConfig, instance_types: tuple[str, ...], *,
                                fast_image_pull: bool = False) -> int:
    """The expected cold start of a replica on a new node of the tier (its slowest instance type),
    with the service's loader and, where nodeadm enables it for the size, the cluster's FastImagePull
    (``platform_facts.coldstart.expected_phases``, which the simulator replays)."""
    layers = sizing.model_architecture(svc.model.id, svc.model.parameters_billion).layers

    def one(name: str) -> float:
        it = catalog.INSTANCE_TYPES[name]
        return coldstart.expected_cold_start_seconds(
            svc.model.weights_gib, layers, it.family, loader=svc.loader.format,
            fast_image_pull=coldstart.fast_image_pull_applies(fast_image_pull, it.vcpu, it.memory_gib))

    return math.ceil(max(one(it) for it in instance_types))


def lookahead_seconds(svc: ModelServiceConfig, instance_types: tuple[str, ...], *, fast_image_pull: bool = False) -> int:
    """How far the predictive trigger looks: the configured figure, else the modelled cold start."""
    if svc.predictive_scaling.lookahead_seconds is not None:
        return svc.predictive_scaling.lookahead_seconds
    return modelled_cold_start_seconds(svc, instance_types, fast_image_pull=fast_image_pull)


def predictive_query(svc: ModelServiceConfig, namespace: str, lookahead: int) -> str:
    """The request rate ``lookahead`` seconds ahead by linear regression over a window of the rate
    (a subquery turns the instant rate into the range predict_linear needs), less what the fixed
    pods serve at the per-replica rate, floored at 0; guarded to 0 when vLLM reports nothing."""
    p = svc.predictive_scaling
    rate = f"sum(rate({_m(metrics.REQUEST_SUCCESS, svc, namespace)}[1m]))"
    predicted = f"predict_linear({rate}[{p.range_seconds}s:{p.resolution_seconds}s], {lookahead})"
    return _beyond_fixed(predicted, p.requests_per_second_per_replica or 1, svc, namespace)


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


def _triggers(svc: ModelServiceConfig, namespace: str, prometheus_url: str,
              lookahead: int | None = None) -> list[dict[str, Any]]:
    sc, q = svc.scaling, queries(svc, namespace)

    def trigger(name: str, query: str, threshold: float, activation: float, metric_type: str) -> dict[str, Any]:
        return {"type": "prometheus", "name": name, "metricType": metric_type, "metadata": {
            "serverAddress": prometheus_url, "query": query,
            "threshold": f"{threshold:g}", "activationThreshold": f"{activation:g}"}}

    # Why no trigger is `Value`: the HPA turns a Value metric into ceil(readyBurstPods x value /
    # threshold), so a signal that adding burst pods does not lower (the fullest KV cache, a p95
    # over every pod, both dominated by long prompts rather than by the replica count) multiplies
    # the burst on every sync up to its maximum, where it stays with an empty queue. Each trigger
    # below is either an AverageValue demand (ceil(value / threshold) burst replicas; the value is
    # what the load asks for, which more burst pods do not raise, so the loop settles) or
    # activation-only (a 0/1 value on threshold 1: wakes and holds one burst replica, never more).
    triggers = [
        # Queue depth beyond what the live fixed pods absorb: ceil(excess / target) burst
        # replicas. Subtracting the pods that report, not minReplicas, keeps the burst covering
        # a lost or restarting baseline pod.
        trigger("waiting", q["waiting"], sc.target_waiting_per_replica, 0, "AverageValue"),
        # KV cache in use adds up across pods (tokens held by running sequences): its sum over
        # the target, less the fixed pods, is the replicas the load needs. More burst pods spread
        # the same sum, so it settles instead of feeding on itself like Value on max() did.
        trigger("kv-cache", q["kv_cache"], sc.kv_cache_target, 0, "AverageValue"),
    ]
    if sc.ttft_trigger:
        # Activation-only: a latency percentile does not divide by replicas (a long prompt's
        # prefill takes as long on any pod), so it only wakes and holds the first burst replica;
        # the waiting and KV triggers size the rest.
        triggers.append(trigger("ttft-p95", q["ttft_p95"], 1, 0, "AverageValue"))
    if svc.predictive_scaling.enabled and lookahead is not None:
        # The arrival rate one cold start ahead, beyond the fixed pods, in replicas' worth: an
        # AverageValue demand like the queue's (more burst pods do not raise a predicted rate).
        triggers.append(trigger("predicted-rate", predictive_query(svc, namespace, lookahead),
                                svc.predictive_scaling.requests_per_second_per_replica or 1, 0, "AverageValue"))
    if sc.active_hours is not None:
        ah = sc.active_hours
        triggers.append({"type": "cron", "name": "active-hours", "metadata": {
            "timezone": ah.timezone, "start": ah.start, "end": ah.end, "desiredReplicas": "1"}})
    if sc.wake_query is not None:
        # Demand seen before vLLM (at the gateway): the only signal that exists at zero replicas.
        triggers.append(trigger("wake", sc.wake_query, sc.target_waiting_per_replica, 0, "AverageValue"))
    if sc.keep_alive:
        # Running requests beyond what the fixed pods' full batches hold (all of them without a
        # baseline), at a full batch per replica. Activation 0 keeps a scale-to-zero service up
        # while any request runs. It counts every pod, not the burst's own: requests routed to a
        # burst pod would keep that pod active forever under steady traffic, pinning the burst
        # above 0 although the baseline could carry the load (its drain covers in-flight work).
        triggers.append(trigger("keep-alive", q["running"], svc.max_num_seqs, 0, "AverageValue"))
    if burst_max(svc) > 1:
        # Activation-only on the burst's own size: while it runs more than 1 replica, KEDA stays
        # active, so its cooldown (which sets replicas straight to 0, bypassing the HPA) never
        # cuts a serving burst of N at once; the HPA's scale-down policy takes it N -> 1 and the
        # cooldown only 1 -> 0. Its proposal is at most 1, the HPA's minimum: it cannot feed itself.
        triggers.append(trigger("burst-above-one", q["burst_above_one"], 1, 0, "AverageValue"))
    if svc.routing.mode == "router":
        triggers += router_monitoring.triggers(svc, namespace, prometheus_url)
    return triggers


def scaled_object(svc: ModelServiceConfig, namespace: str, prometheus_url: str,
                  lookahead: int | None = None, modelled: int | None = None) -> dict[str, Any]:
    """``lookahead``: the predictive trigger's horizon (``lookahead_seconds``); ``modelled``: the
    modelled cold start it should cover (``modelled_cold_start_seconds``)."""
    sc, n = svc.scaling, names(svc)
    triggers = _triggers(svc, namespace, prometheus_url, lookahead)
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
    if svc.predictive_scaling.enabled and modelled is not None:
        # The policy pack compares the trigger's lookahead with the modelled cold start.
        meta.setdefault("annotations", {})[COLD_START_ANNOTATION] = str(modelled)
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
