"""The control loops: Prometheus scrapes, KEDA's polling loop, the HPA, the Deployment controllers.

The baseline Deployment is fixed; KEDA activates the burst Deployment (0 <-> 1) and its HPA
(``simulator.hpa``, every 15 s) scales it from 1 to the burst range (in ``hpa`` mode a plain
HPA on the burst pods' own queue does, from 1). Triggers are External
metrics divided by their target: an ``AverageValue`` trigger's total is spread over the
replicas, a ``Value`` trigger's ratio multiplies the Ready pods (only the legacy triggers,
``Profile.legacy_triggers``, still use ``Value``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Literal

from simulator import hpa, predictive
from simulator.pods import terminate
from simulator.result import percentile
from simulator.state import Event, Pod, PodGauges, ReplaySetup, ReplayState, Role

TTFT_WINDOW_SECONDS = 120  # the TTFT trigger's PromQL range


@dataclass(frozen=True)
class Trigger:
    """One scaler's metric over its target (``AverageValue``: the total over the per-pod target)."""

    target_type: Literal["AverageValue", "Value"]
    ratio: float

    @property
    def active(self) -> bool:
        """Above the activation threshold: any demand for ``AverageValue``, over target for ``Value``."""
        return self.ratio > (1.0 if self.target_type == "Value" else 0.0)


def scrape(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """Prometheus reads each Ready pod's gauges; the TTFT window keeps its last two minutes."""
    kv_tokens = setup.perf.kv_tokens
    state.scraped = {q.id: PodGauges(len(q.queue), len(q.running), q.kv_used / kv_tokens, q.role)
                     for q in state.pods if q.ready}
    while state.first_tokens and state.first_tokens[0].at < t - TTFT_WINDOW_SECONDS:
        state.first_tokens.popleft()
    state.window_ttft = [e.ttft for e in state.first_tokens if e.at <= t]
    if setup.profile.predictive is not None:  # vllm:request_success_total, summed over the pods
        while state.ends_pending and state.ends_pending[0] <= t:  # each end is counted once, scrapes move forward
            heapq.heappop(state.ends_pending)
            state.ends_counted += 1
        predictive.record(state.successes, t, state.ends_counted, setup.profile.predictive.keep_seconds)
    state.next_scrape = t + setup.scrape_seconds


def waiting_metric(setup: ReplaySetup, state: ReplayState, t: float) -> float:
    """The waiting-requests trigger's metric: requests waiting in vLLM as last scraped, minus
    what the baseline absorbs (``subtract_baseline``); the HPA compares it with
    ``target_waiting`` x the burst replicas."""
    p = setup.profile
    waiting = sum(g.waiting for g in state.scraped.values()) if t > 0 else 0
    return max(waiting - (p.baseline * p.target_waiting if p.subtract_baseline else 0), 0)


def keda_triggers(setup: ReplaySetup, state: ReplayState, t: float) -> list[Trigger]:
    """The ScaledObject's triggers as the metrics adapter would answer them from the last scrape
    (``render/scaling.py``), each only when the profile has it: waiting requests, KV cache in
    use and running requests, each beyond what the fixed pods that report carry (AverageValue
    demands), TTFT p95 over the SLO (activation-only: 0 or 1), and the wake query."""
    p = setup.profile
    if p.legacy_triggers:
        return legacy_keda_triggers(setup, state, t)
    scraped = state.scraped.values()
    # count(series{role!="burst"}): the baseline pods Prometheus scrapes now, not minReplicas.
    fixed = sum(1 for g in scraped if g.role != "burst") if p.subtract_baseline else 0

    def beyond_fixed(total: float, per_pod: float) -> Trigger:
        return Trigger("AverageValue", max(total - per_pod * fixed, 0.0) / per_pod)

    waiting = sum(g.waiting for g in scraped) if t > 0 else 0
    triggers = [beyond_fixed(waiting, p.target_waiting)]
    if p.kv_target is not None:
        triggers.append(beyond_fixed(sum(g.kv_usage for g in scraped), p.kv_target))
    if p.ttft_target is not None:
        slow = bool(state.window_ttft) and percentile(state.window_ttft, 0.95) > p.ttft_target
        triggers.append(Trigger("AverageValue", 1.0 if slow else 0.0))
    if p.wake:
        # The wakeQuery: requests waiting before vLLM, the only signal at zero replicas.
        triggers.append(Trigger("AverageValue", len(state.gateway) / p.target_waiting))
    if p.keep_alive_per_replica is not None:
        triggers.append(beyond_fixed(sum(g.running for g in scraped), p.keep_alive_per_replica))
    if p.predictive is not None:
        rate = predictive.predicted_rate(state.successes, t, p.predictive.range_seconds, p.predictive.step_seconds,
                                         p.predictive.lookahead_seconds)
        triggers.append(beyond_fixed(rate, p.predictive.rps_per_replica))
    if p.burst_above_one:
        # Activation-only on the burst's own replicas: KEDA's cooldown takes it 1 -> 0, the HPA N -> 1.
        triggers.append(Trigger("AverageValue", 1.0 if state.burst_desired > 1 else 0.0))
    return triggers


def legacy_keda_triggers(setup: ReplaySetup, state: ReplayState, t: float) -> list[Trigger]:
    """The triggers before issue 14, kept to replay their failure: waiting minus a static
    minReplicas x target; Value on the fullest KV cache and on TTFT p95 over every pod (signals
    more burst pods do not lower, so each HPA sync multiplies the burst); keep-alive on the
    burst pods' own running requests with activation 0 (active while they serve anything)."""
    p, scraped = setup.profile, state.scraped
    triggers = [Trigger("AverageValue", waiting_metric(setup, state, t) / p.target_waiting)]
    if p.kv_target is not None and scraped:
        triggers.append(Trigger("Value", max(g.kv_usage for g in scraped.values()) / p.kv_target))
    if p.ttft_target is not None and state.window_ttft:
        triggers.append(Trigger("Value", percentile(state.window_ttft, 0.95) / p.ttft_target))
    if p.wake:
        triggers.append(Trigger("AverageValue", len(state.gateway) / p.target_waiting))
    if p.keep_alive_per_replica is not None:
        running_burst = sum(g.running for g in scraped.values() if g.role == "burst")
        triggers.append(Trigger("AverageValue", running_burst / p.keep_alive_per_replica))
    return triggers


def autoscale(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """KEDA and its HPA (or, in ``hpa`` mode, the plain HPA) at their own periods, then the
    Deployment controllers every tick."""
    before = state.burst_desired
    if setup.profile.mode == "hpa":
        if t >= state.next_hpa:
            plain_hpa_sync(setup, state, t)
    else:
        keda_autoscale(setup, state, t)
    if state.burst_desired != before:
        state.events.append(Event(t, "scale", state.burst_desired - before))
    reconcile_deployments(setup, state, t)


def keda_autoscale(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """KEDA's polling loop and the HPA it owns. While Prometheus cannot answer, its triggers
    error (not active); the cron trigger does not need it."""
    p = setup.profile
    triggers = keda_triggers(setup, state, t)
    cron_active = setup.active_window.is_open(t) if setup.active_window else False
    outage = setup.prometheus_down(t)
    active = (not outage and any(tr.active for tr in triggers)) or cron_active
    if active:
        state.last_active = t
    if t >= state.next_poll and p.burst_max > 0:
        keda_poll(setup, state, t, active, outage)
    if t >= state.next_hpa and state.burst_desired > 0:
        hpa_sync(setup, state, t, triggers if not outage else fallback_triggers(setup, state), cron_active)


def keda_poll(setup: ReplaySetup, state: ReplayState, t: float, active: bool, outage: bool) -> None:
    """KEDA's loop (``RequestScale``): activation 0 -> 1 on an active trigger; 1 -> 0 once nothing
    has been active for the cooldown (not before ``initialCooldownPeriod``). A failed read
    counts a failure; past the fallback's ``failureThreshold`` the trigger is active on its
    fallback metric, so it activates from zero too (KEDA >= 2.19, #7239); before that, or
    without a fallback, an error neither activates nor scales to zero."""
    p = setup.profile
    state.failures = state.failures + 1 if outage else 0
    state.next_poll = t + p.polling_seconds
    if outage and fallback_active(setup, state):
        active = True
        state.last_active = t
    if active:
        if state.burst_desired == 0:
            state.burst_desired = 1
    elif outage:
        return  # isError: logged (fallback configured) or Ready=False; nothing scales to zero
    elif state.burst_desired > 0 and (p.scale_to_zero or p.baseline > 0):
        cooled_down = t >= p.initial_cooldown_seconds and state.last_active + p.cooldown_seconds < t
        if cooled_down:
            state.burst_desired = 0


def fallback_active(setup: ReplaySetup, state: ReplayState) -> bool:
    """``numberOfFailures > failureThreshold`` with a fallback configured."""
    p = setup.profile
    return p.fallback_replicas is not None and state.failures > p.fallback_failure_threshold


def fallback_replicas(behavior: str, replicas: int, current: int) -> int:
    """The replicas KEDA's fallback metric stands for (``fallback.behavior``; default ``static``)."""
    if behavior == "currentReplicas":
        return current
    if behavior == "currentReplicasIfHigher":
        return max(current, replicas)
    if behavior == "currentReplicasIfLower":
        return min(current, replicas)
    return replicas


def fallback_triggers(setup: ReplaySetup, state: ReplayState) -> list[Trigger]:
    """No metric: the HPA holds, unless KEDA's fallback answers target x replicas after enough
    consecutive failures (an ``AverageValue`` of that many replicas; a ``Value`` trigger's
    fallback is divided by the Ready replicas, which lands on the same proposal)."""
    p = setup.profile
    if p.fallback_replicas is not None and fallback_active(setup, state):
        replicas = fallback_replicas(p.fallback_behavior, p.fallback_replicas, state.burst_desired)
        return [Trigger("AverageValue", float(replicas))]
    return []


def hpa_sync(setup: ReplaySetup, state: ReplayState, t: float, triggers: list[Trigger], cron_active: bool) -> None:
    """One HPA sync of the burst Deployment: a proposal per trigger (and 1 while the cron window
    is open), then the upstream algorithm between 1 and the burst maximum."""
    p = setup.profile
    burst = [q for q in state.pods if q.role == "burst" and not q.terminating]
    ready_burst = sum(1 for q in burst if q.ready)
    current = state.burst_desired
    proposals = [
        hpa.external_average_value(tr.ratio, 1.0, max(len(burst), 1), current) if tr.target_type == "AverageValue"
        else hpa.external_value(tr.ratio, 1.0, ready_burst, current)
        for tr in triggers
    ]
    if cron_active:
        proposals.append(1)
    state.burst_desired = hpa.sync(state.hpa, t, current, 1, p.burst_max, proposals, p.behavior)
    state.next_hpa = t + hpa.SYNC_PERIOD_SECONDS


def plain_hpa_sync(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """``scaling.mode: hpa`` (``render/scaling.py`` ``hpa``): an autoscaling/v2 HPA on the burst
    Deployment, minReplicas 1, a Pods metric (the burst pods' own waiting requests from the
    adapter) at ``targetWaitingPerReplica`` AverageValue, the rendered behavior. No KEDA: no
    activation, no cooldown to zero, no fallback; while Prometheus is down the HPA holds."""
    p = setup.profile
    state.next_hpa = t + hpa.SYNC_PERIOD_SECONDS
    burst = [q for q in state.pods if q.role == "burst" and not q.terminating]
    values = [float(state.scraped[q.id].waiting) for q in burst if q.id in state.scraped]
    proposals = []
    if values and not setup.prometheus_down(t):
        unready = sum(1 for q in burst if not q.ready)
        missing = sum(1 for q in burst if q.ready and q.id not in state.scraped)
        proposals.append(hpa.pods_average_value(values, p.target_waiting, state.burst_desired, unready, missing))
    state.burst_desired = hpa.sync(state.hpa, t, state.burst_desired, 1, p.burst_max, proposals, p.behavior)


def reconcile_deployments(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """Each Deployment creates the pods it lacks; scale-down removes, in ReplicaSet order,
    unscheduled pods (deleted at once), then not-ready, then the newest ready pods (drained)."""
    roles: tuple[tuple[Role, int], ...] = (("baseline", setup.profile.baseline), ("burst", state.burst_desired))
    for role, want in roles:
        live = [q for q in state.pods if q.role == role and not q.terminating]
        for _ in range(want - len(live)):
            state.pods.append(Pod(state.new_id(), role, t))
        if len(live) > want:
            victims = sorted(live, key=lambda q: (q.node is not None, q.ready, -q.id))
            for q in victims[: len(live) - want]:
                if q.node is None:
                    q.gone = True
                else:
                    terminate(setup, q, t)
    state.pods = [q for q in state.pods if not q.gone]


def follow_schedule(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """The oracle's controller: exactly the scheduled replicas; extra ones drain, idle first,
    then those on the emptiest node, then the newest."""
    assert setup.schedule is not None
    want = setup.schedule(t)
    live = [q for q in state.pods if not q.terminating]
    for _ in range(want - len(live)):
        state.pods.append(Pod(state.new_id(), "burst", t))
    # On whole nodes, the emptiest node's replicas go first, so that nodes empty out.
    for q in sorted(live, key=lambda q: (q.busy, len(q.node.pods) if q.node else 0, -q.id))[: max(len(live) - want, 0)]:
        terminate(setup, q, t)
