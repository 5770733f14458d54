"""Scaling profiles: what the simulator's KEDA and HPA do for a service.

``from_config`` reads the service's own ``scaling`` block (the same model the components
render from: no second copy of the settings); ``seed_default`` is the naive setup the field
starts from (production-stack defaults): one KEDA trigger at 5 waiting requests per pod,
cooldown 300 s, polling 15 s, no HPA behavior (the legacy path).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from components.config import ActiveHours, ModelServiceConfig
from components.render import scaling
from simulator import hpa
from simulator.predictive import PredictiveTrigger


@dataclass(frozen=True)
class Profile:
    name: str
    baseline: int  # on-demand replicas, not autoscaled
    max_replicas: int
    target_waiting: float
    subtract_baseline: bool
    kv_target: float | None
    ttft_target: float | None
    keep_alive_per_replica: int | None
    polling_seconds: int
    cooldown_seconds: int
    initial_cooldown_seconds: int
    scale_to_zero: bool
    burst_on_spot: bool
    scale_down_stabilization_seconds: int | None  # None: legacy HPA path
    scale_up_pods_per_minute: int = 2
    predictive: PredictiveTrigger | None = None  # issue 18: the predicted-rate trigger
    buffer_nodes: int | None = None  # the tuner's capacity-buffer nodes (None: as the tier configures)
    scale_down_pods_per_period: int = 1
    scale_down_period_seconds: int = 120
    active_hours: ActiveHours | None = None
    wake: bool = False  # a wakeQuery on demand seen before vLLM (requests waiting at the caller)
    fallback_replicas: int | None = None  # KEDA fallback when the metrics cannot be read
    fallback_failure_threshold: int = 3
    fallback_behavior: str = "static"  # KEDA's fallback.behavior (static when the ScaledObject omits it)
    mode: Literal["keda", "hpa"] = "keda"  # scaling.mode: a KEDA ScaledObject or a plain HPA
    # The triggers as rendered before issue 14: Value on max KV usage and on TTFT p95, the
    # baseline subtracted as minReplicas x target, keep-alive on the burst pods' own requests.
    legacy_triggers: bool = False
    # The activation-only trigger on the burst's own size (> 1), rendered when the burst range
    # exceeds 1: KEDA's cooldown then takes the burst 1 -> 0 only, the HPA N -> 1.
    burst_above_one: bool = False

    @property
    def burst_max(self) -> int:
        return self.max_replicas - self.baseline

    @property
    def behavior(self) -> hpa.Behavior | None:
        if self.scale_down_stabilization_seconds is None:
            return None
        return hpa.Behavior(
            hpa.Rules(0, "Max", (hpa.Policy("Pods", self.scale_up_pods_per_minute, 60),)),
            hpa.Rules(self.scale_down_stabilization_seconds, "Min",
                      (hpa.Policy("Pods", self.scale_down_pods_per_period, self.scale_down_period_seconds),)),
        )

    def with_(self, **changes) -> Profile:
        return replace(self, **changes)


def baseline_floor(environment: str, service: ModelServiceConfig) -> int:
    """The fewest baseline replicas the platform accepts: in prod one, because the config rules
    and the policy pack (``scaling-scale-to-zero``) refuse scale to zero there; elsewhere zero
    only for a service that already scales to zero (the config then demands its wake signal)."""
    if environment == "prod":
        return 1
    return 0 if service.scaling.scale_to_zero else 1


def predictive_trigger(service: ModelServiceConfig, lookahead_seconds: float | None) -> PredictiveTrigger | None:
    p = service.predictive_scaling
    if not p.enabled or service.scaling.mode != "keda":
        return None
    if lookahead_seconds is None:  # the caller replays the scaling loop without it (see from_config)
        return None
    return PredictiveTrigger(p.requests_per_second_per_replica or 1, lookahead_seconds, p.range_seconds, p.resolution_seconds)


def from_config(service: ModelServiceConfig, initial_cooldown_seconds: int, name: str = "stack",
                lookahead_seconds: float | None = None) -> Profile:
    """The stack's profile. ``lookahead_seconds``: the predictive trigger's, as rendered
    (``scaling.lookahead_seconds`` on the tier; ``Experiment.profile`` passes it); without it the
    profile leaves the predictive trigger out, as a profile of the other triggers alone."""
    sc = service.scaling
    return Profile(
        name=name,
        baseline=sc.min_replicas,
        max_replicas=sc.max_replicas,
        target_waiting=sc.target_waiting_per_replica,
        subtract_baseline=True,
        kv_target=sc.kv_cache_target,
        ttft_target=service.slo.ttft_p95_seconds if sc.ttft_trigger else None,
        keep_alive_per_replica=service.max_num_seqs if sc.keep_alive else None,
        polling_seconds=sc.polling_interval_seconds,
        cooldown_seconds=sc.cooldown_seconds,
        initial_cooldown_seconds=initial_cooldown_seconds,
        scale_to_zero=sc.scale_to_zero,
        burst_on_spot=service.burst_capacity == "spot",
        scale_down_stabilization_seconds=sc.scale_down_stabilization_seconds,
        scale_up_pods_per_minute=sc.scale_up_pods_per_minute,
        scale_down_pods_per_period=sc.scale_down_pods_per_period,
        scale_down_period_seconds=sc.scale_down_period_seconds,
        active_hours=sc.active_hours,
        wake=sc.wake_query is not None,
        **keda_fallback(service),
        mode=sc.mode,
        burst_above_one=sc.max_replicas - sc.min_replicas > 1,
        predictive=predictive_trigger(service, lookahead_seconds),
    )


def keda_fallback(service: ModelServiceConfig) -> dict[str, Any]:
    """The ScaledObject's ``fallback`` as ``render/scaling.py`` renders it (none in ``hpa`` mode)."""
    if service.scaling.mode == "hpa":
        return {"fallback_replicas": None}
    fallback = scaling.scaled_object(service, "simulated", "http://prometheus")["spec"]["fallback"]
    return {"fallback_replicas": fallback["replicas"], "fallback_failure_threshold": fallback["failureThreshold"],
            "fallback_behavior": fallback.get("behavior", "static")}


def seed_default(service: ModelServiceConfig) -> Profile:
    sc = service.scaling
    return Profile(
        name="seed-default", baseline=sc.min_replicas, max_replicas=sc.max_replicas, target_waiting=5,
        subtract_baseline=False, kv_target=None, ttft_target=None, keep_alive_per_replica=None,
        polling_seconds=15, cooldown_seconds=300, initial_cooldown_seconds=0, scale_to_zero=sc.scale_to_zero,
        burst_on_spot=service.burst_capacity == "spot", scale_down_stabilization_seconds=None,
        active_hours=sc.active_hours,
        wake=sc.wake_query is not None,
    )
