"""The discrete-time simulation of one ModelService under a scaling profile.

Every ``dt`` (1 s) the simulation:

1. routes arriving requests to a Ready, non-terminating replica at random (kube-proxy's
   iptables mode picks uniformly); with none, requests wait at the caller and retry;
2. advances every serving replica with the fluid vLLM model: admission while ``max_num_seqs``
   and the KV budget allow, prefill at ``delta`` per prompt token, decode steps of
   ``alpha + beta * batch``, preemption (recompute) of the newest sequence when the KV
   cache overflows;
3. runs the control loops at their own periods: Prometheus scrapes per-pod gauges every
   scrape interval; KEDA's loop every ``pollingInterval`` (activation 0 <-> 1, cooldown to
   zero); the HPA every 15 s (``simulator.hpa``) on the burst Deployment;
4. reconciles Deployments (baseline fixed, burst from the autoscaler; scale-down removes
   pending, then not-ready, then the newest pods, which drain up to the shutdown timeout),
   and Karpenter: pending pods bind to a node with a free slot or launch one, spot first
   for burst pods (on-demand fallback), on-demand only for the baseline, within the
   NodePools' GPU limits; empty nodes go after ``consolidateAfter``;
5. interrupts spot nodes at a configurable rate: a two-minute notice, drain, replacement;
   requests still running when the node disappears are retried;
6. accrues cost per node-second from the catalog (spot: the middle of the price range).

Simplifications: one service per simulation, one instance type (the cheapest that fits a
replica, as ``capacity.md`` picks), Karpenter batching as "pending for 1 s".
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from components.config import (
    ActiveHours,
    GpuTier,
    ModelServiceConfig,
    StackConfig,
    karpenter_seconds,
)
from components.render.capacity import placement
from platform_facts import catalog
from platform_facts.aws import SPOT_NOTICE_SECONDS
from simulator import hpa
from simulator.perf import ColdStart, ReplicaPerf, cold_start, replica_perf
from simulator.profile import Profile
from simulator.trace import Trace

DT = 1.0
HPA_SYNC = 15.0


@dataclass
class Node:
    id: int
    capacity: str
    launched: float
    ready_at: float
    slots: int
    pods: list = field(default_factory=list)
    interrupt_at: float = math.inf
    noticed: bool = False
    gone_at: float | None = None
    empty_since: float | None = None
    image_cached: bool = False
    model_cached: bool = False
    share: float = 1.0  # fraction of the instance billed (the oracle packs replicas perfectly)


@dataclass
class Pod:
    id: int
    role: str
    created: float
    node: Node | None = None
    start_at: float | None = None
    ready: bool = False
    terminating: bool = False
    drain_deadline: float = math.inf
    gone: bool = False
    queue: deque = field(default_factory=deque)
    running: list = field(default_factory=list)  # [request index, tokens left, kv tokens held]
    kv_used: float = 0.0
    debt: float = 0.0

    @property
    def routable(self) -> bool:
        return self.ready and not self.terminating and not self.gone

    @property
    def busy(self) -> bool:
        return bool(self.queue or self.running)


@dataclass
class Result:
    arrival: list[float]
    first_token: list[float]
    end: list[float]
    admitted: list[float]
    capacity: list[str]
    preemptions: int
    retries: int
    cost: float
    gpu_hours: float
    node_seconds: dict[str, float]
    timeline: list[dict]
    slo_seconds: float

    def ttfts(self) -> list[float]:
        return [f - a for a, f in zip(self.arrival, self.first_token, strict=True) if f == f]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _cron_matches(expr: str, when: datetime) -> bool:
    """Minute, hour and day-of-week fields of a 5-field cron (``*``, numbers, ranges, lists)."""
    minute, hour, _, _, dow = expr.split()

    def ok(field_: str, value: int) -> bool:
        if field_ == "*":
            return True
        for part in field_.split(","):
            if re.fullmatch(r"\d+-\d+", part):
                a, b = map(int, part.split("-"))
                if a <= value <= b:
                    return True
            elif part.isdigit() and int(part) == value:
                return True
        return False

    return ok(minute, when.minute) and ok(hour, when.hour) and ok(dow, (when.weekday() + 1) % 7)


def active_hours_on(hours: ActiveHours, start: datetime) -> Callable[[float], bool]:
    """Whether the cron window is open at simulated time t (UTC; other zones are treated as UTC)."""
    # Open from the last "start" match until an "end" match; evaluated once per minute.
    cache: dict[int, bool] = {}

    def at(t: float) -> bool:
        minute = int(t // 60)
        if minute not in cache:
            now = (start + timedelta(minutes=minute)).replace(second=0, microsecond=0)
            cache[minute] = False
            for back in range(0, 7 * 24 * 60):
                moment = now - timedelta(minutes=back)
                if back > 0 and _cron_matches(hours.end, moment):
                    break
                if _cron_matches(hours.start, moment):
                    cache[minute] = True
                    break
        return cache[minute]

    return at


class Simulation:
    def __init__(self, config: StackConfig, service: ModelServiceConfig, trace: Trace, profile: Profile, *,
                 seed: int = 0, spot_interruptions_per_hour: float = 0.0, scrape_seconds: float | None = None,
                 schedule: Callable[[float], int] | None = None, progress: Callable[[float], None] | None = None,
                 prometheus_outages: tuple[tuple[float, float], ...] = ()):
        self.config, self.service, self.trace, self.profile = config, service, trace, profile
        self.tier: GpuTier = config.tier(service.tier)
        place = placement(service, self.tier)
        self.instance: catalog.InstanceType = place.instance
        self.slots = place.replicas_per_node
        self.perf: ReplicaPerf = replica_perf(service, self.tier.gpu)
        self.cold: ColdStart = cold_start(service, self.instance)
        self.rng = random.Random(seed)
        self.spot_rate = spot_interruptions_per_hour
        self.scrape = scrape_seconds or config.addons.monitoring.scrape_interval_seconds
        self.schedule = schedule  # oracle: replicas wanted at t, ready at once
        self.progress = progress
        self.outages = prometheus_outages  # (start, end) seconds when queries fail
        self.consolidate_after = karpenter_seconds(self.tier.consolidate_after)
        self.limits = {"on-demand": config.on_demand_gpu_limit(self.tier.name) if self.tier.on_demand.enabled else 0,
                       "spot": self.tier.spot.gpu_limit if self.tier.spot.enabled else 0}
        self.active_hours = active_hours_on(profile.active_hours, trace.start) if profile.active_hours else None
        self._ids = 0

    # ------------------------------------------------------------------ helpers
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _price(self, capacity: str) -> float:
        it = self.instance
        return it.on_demand_hourly if capacity == "on-demand" else (it.spot_hourly_low + it.spot_hourly_high) / 2

    # ------------------------------------------------------------------ run
    def run(self) -> Result:
        reqs = self.trace.requests
        n = len(reqs)
        arrival = [r.arrival for r in reqs]
        first = [math.nan] * n
        end = [math.nan] * n
        admitted = [math.nan] * n
        cap = [""] * n
        perf, p = self.perf, self.profile
        pods: list[Pod] = []
        nodes: list[Node] = []
        gateway: deque[int] = deque()
        preemptions = retries = 0
        node_seconds = {"on-demand": 0.0, "spot": 0.0}
        cost = 0.0
        timeline: list[dict] = []
        gauges: dict[int, tuple[int, int, float]] = {}  # pod id -> (waiting, running, kv) at last scrape
        ttft_events: deque[tuple[float, float]] = deque()  # (time of first token, ttft)
        state = hpa.HpaState()
        burst_desired = 0 if p.scale_to_zero or p.baseline > 0 else 1
        if self.schedule is None and p.baseline == 0 and not p.scale_to_zero:
            burst_desired = 1
        if self.active_hours is not None and self.active_hours(0.0):
            burst_desired = max(burst_desired, 1)  # the window opened before the trace began
        last_active = -math.inf
        failures = 0  # consecutive failed metric reads (KEDA's fallback counter)
        last = reqs[-1].arrival if reqs else 0.0
        tail = 600.0  # keep simulating (and billing) the scale-down after the last arrival
        horizon = last + 3600.0  # hard stop for requests that never finish
        next_arrival = 0
        instant = self.schedule is not None

        def place_pods(t: float) -> None:
            pending = [q for q in pods if q.node is None and not q.gone and not q.terminating]
            for pod in pending:
                if instant:
                    on_demand = sum(1 for nd in nodes if nd.gone_at is None and nd.capacity == "on-demand")
                    capacity = "on-demand" if on_demand < p.baseline or not p.burst_on_spot else "spot"
                    node = Node(self._next_id(), capacity, t, t, 1, image_cached=True, model_cached=True,
                                share=1 / self.slots)
                    nodes.append(node)
                    node.pods.append(pod)
                    pod.node, pod.start_at, pod.ready = node, t, True
                    continue
                if t - pod.created < 1.0:  # Karpenter batches pending pods for its idle second
                    continue
                order = ["on-demand"] if pod.role == "baseline" or not p.burst_on_spot else ["spot", "on-demand"]
                target = None
                for capacity in order:
                    target = next((nd for nd in nodes if nd.gone_at is None and nd.capacity == capacity
                                   and not nd.noticed and len(nd.pods) < nd.slots), None)
                    if target:
                        break
                if target is None:
                    for capacity in order:
                        used = sum(self.instance.gpus for nd in nodes if nd.gone_at is None and nd.capacity == capacity)
                        if used + self.instance.gpus <= self.limits[capacity]:
                            target = Node(self._next_id(), capacity, t, t + self.cold.node_ready, self.slots)
                            if capacity == "spot" and self.spot_rate > 0:
                                target.interrupt_at = t + self.rng.expovariate(self.spot_rate / 3600)
                            nodes.append(target)
                            break
                if target is None:
                    continue  # at the NodePool limit: stays Pending
                target.pods.append(pod)
                target.empty_since = None
                pod.node = target
                begin = max(t, target.ready_at)
                pod.start_at = begin + self.cold.pod_seconds(image_cached=target.image_cached, model_cached=target.model_cached)
                target.image_cached = target.model_cached = True  # pulled by this pod (others wait with it)

        def retry(idx: int) -> None:
            nonlocal retries
            retries += 1
            first[idx] = math.nan
            gateway.append(idx)

        def terminate(pod: Pod, t: float) -> None:
            pod.terminating = True
            pod.drain_deadline = t + self.service.drain.pre_stop_seconds + self.service.drain.shutdown_timeout_seconds

        def remove(pod: Pod) -> None:
            pod.gone = True
            for idx in list(pod.queue):
                retry(idx)
            for idx, _, _ in pod.running:
                retry(idx)
            pod.queue.clear()
            pod.running.clear()
            if pod.node is not None and pod in pod.node.pods:
                pod.node.pods.remove(pod)

        def serve(pod: Pod, t0: float) -> None:
            nonlocal preemptions
            budget = DT - pod.debt
            pod.debt = 0.0
            while pod.queue and len(pod.running) < perf.max_num_seqs:
                idx = pod.queue[0]
                r = reqs[idx]
                need = r.prompt_tokens + 1
                if pod.kv_used + need > perf.kv_tokens and pod.running:
                    break
                pod.queue.popleft()
                # Within the tick, work starts no earlier than the request arrived.
                start = max(t0 + (DT - budget), arrival[idx])
                budget = DT - (start - t0)
                if admitted[idx] != admitted[idx]:
                    admitted[idx] = start
                budget -= perf.delta * r.prompt_tokens
                done = t0 + (DT - budget)
                if first[idx] != first[idx]:
                    first[idx] = done
                    ttft_events.append((first[idx], first[idx] - arrival[idx]))
                    cap[idx] = pod.node.capacity if pod.node else ""
                pod.running.append([idx, r.output_tokens - 1, need])
                pod.kv_used += need
            if budget <= 0:
                pod.debt = -budget
                return
            if not pod.running:
                return
            step = perf.step_seconds(len(pod.running))
            tokens = budget / step
            keep = []
            for item in pod.running:
                idx, left, kv = item
                if left <= tokens:
                    end[idx] = t0 + (DT - budget) + left * step
                    pod.kv_used -= kv + left
                else:
                    item[1] = left - tokens
                    item[2] = kv + tokens
                    keep.append(item)
            pod.kv_used += tokens * len(keep)
            pod.running = keep
            while pod.kv_used > perf.kv_tokens and len(pod.running) > 1:
                idx, _, kv = pod.running.pop()
                pod.kv_used -= kv
                pod.queue.appendleft(idx)  # recompute: prefill again, output restarts
                preemptions += 1

        # Warm start: the service ran before the trace began, so its initial replicas are
        # Ready on warm nodes (the baseline on on-demand, burst on its preferred capacity).
        if not instant:
            for role, count in (("baseline", p.baseline), ("burst", burst_desired)):
                for _ in range(count):
                    capacity = "on-demand" if role == "baseline" or not p.burst_on_spot else "spot"
                    node = next((nd for nd in nodes if nd.capacity == capacity and len(nd.pods) < nd.slots), None)
                    if node is None:
                        node = Node(self._next_id(), capacity, 0.0, 0.0, self.slots, image_cached=True, model_cached=True)
                        if capacity == "spot" and self.spot_rate > 0:
                            node.interrupt_at = self.rng.expovariate(self.spot_rate / 3600)
                        nodes.append(node)
                    pod = Pod(self._next_id(), role, 0.0, node=node, start_at=0.0, ready=True)
                    node.pods.append(pod)
                    pods.append(pod)

        t = 0.0
        next_scrape = next_poll = next_hpa = 0.0
        next_sample = 0.0
        while t < horizon:
            # arrivals
            while next_arrival < n and arrival[next_arrival] < t + DT:
                gateway.append(next_arrival)
                next_arrival += 1
            routable = [q for q in pods if q.routable]
            if routable:
                while gateway:
                    self.rng.choice(routable).queue.append(gateway.popleft())
            # replicas serve
            for pod in pods:
                if not pod.gone and pod.ready:
                    serve(pod, t)
            # node and pod lifecycle
            for node in nodes:
                if node.gone_at is not None:
                    continue
                if not node.noticed and t >= node.interrupt_at - SPOT_NOTICE_SECONDS:
                    node.noticed = True
                    for pod in node.pods:
                        if not pod.terminating:
                            terminate(pod, t)
                            pod.drain_deadline = min(pod.drain_deadline, node.interrupt_at)
                if t >= node.interrupt_at:
                    for pod in list(node.pods):
                        remove(pod)
                    node.gone_at = t
            for pod in pods:
                if pod.gone:
                    continue
                if not pod.ready and pod.start_at is not None and t >= pod.start_at and not pod.terminating:
                    pod.ready = True
                if pod.terminating and (not pod.busy or t >= pod.drain_deadline or not pod.ready):
                    remove(pod)
            pods = [q for q in pods if not q.gone]
            # Prometheus scrape
            if t >= next_scrape:
                gauges = {q.id: (len(q.queue), len(q.running), q.kv_used / perf.kv_tokens) for q in pods if q.ready}
                while ttft_events and ttft_events[0][0] < t - 120:
                    ttft_events.popleft()
                window_ttft = [v for ts, v in ttft_events if ts <= t]
                burst_ids = {q.id for q in pods if q.role == "burst"}
                scraped = dict(gauges)
                next_scrape = t + self.scrape
            # autoscaling
            if instant:
                want = self.schedule(t)
                live = [q for q in pods if not q.terminating]
                for _ in range(want - len(live)):
                    pods.append(Pod(self._next_id(), "burst", t))
                for q in sorted(live, key=lambda q: (q.busy, -q.id))[:max(len(live) - want, 0)]:
                    terminate(q, t)
            else:
                waiting = sum(v[0] for v in scraped.values()) if t > 0 else 0
                triggers: list[tuple[str, float]] = []
                total_wait = max(waiting - (p.baseline * p.target_waiting if p.subtract_baseline else 0), 0)
                triggers.append(("avg", total_wait / p.target_waiting))
                if p.kv_target is not None and scraped:
                    kv = max(v[2] for v in scraped.values())
                    triggers.append(("val", kv / p.kv_target))
                if p.ttft_target is not None and window_ttft:
                    triggers.append(("val", percentile(window_ttft, 0.95) / p.ttft_target))
                if p.wake:
                    # The wakeQuery: requests waiting before vLLM, the only signal at zero replicas.
                    triggers.append(("avg", len(gateway) / p.target_waiting))
                if p.keep_alive_per_replica is not None:
                    running_burst = sum(v[1] for k, v in scraped.items() if k in burst_ids)
                    triggers.append(("avg", running_burst / p.keep_alive_per_replica))
                cron_active = self.active_hours(t) if self.active_hours else False
                outage = any(a <= t < b for a, b in self.outages)
                active = any(ratio > (1.0 if kind == "val" else 0.0) for kind, ratio in triggers) or cron_active
                if active:
                    last_active = t
                burst_now = sum(1 for q in pods if q.role == "burst" and not q.terminating)
                if t >= next_poll and p.burst_max > 0:
                    failures = failures + 1 if outage else 0
                    if outage:
                        pass  # isError: KEDA neither activates nor scales to zero; the HPA may fall back
                    elif active and burst_desired == 0:
                        burst_desired = 1
                    elif not active and burst_desired > 0 and (p.scale_to_zero or p.baseline > 0):
                        if t >= p.initial_cooldown_seconds and last_active + p.cooldown_seconds < t:
                            burst_desired = 0
                    next_poll = t + p.polling_seconds
                if t >= next_hpa and burst_desired > 0:
                    ready_burst = sum(1 for q in pods if q.role == "burst" and q.ready and not q.terminating)
                    proposals = []
                    if outage:
                        # No metric: the HPA holds, unless KEDA's fallback answers target x replicas.
                        if p.fallback_replicas is not None and failures > p.fallback_failure_threshold:
                            triggers = [("avg", float(p.fallback_replicas))]
                        else:
                            triggers = []
                    for kind, ratio in triggers:
                        if kind == "avg":
                            proposals.append(hpa.external_average_value(ratio, 1.0, max(burst_now, 1), burst_desired))
                        else:
                            proposals.append(hpa.external_value(ratio, 1.0, ready_burst, burst_desired))
                    if cron_active:
                        proposals.append(1)
                    burst_desired = hpa.sync(state, t, burst_desired, 1, p.burst_max, proposals, p.behavior)
                    next_hpa = t + HPA_SYNC
                # Deployment controllers
                for role, want in (("baseline", p.baseline), ("burst", burst_desired)):
                    live = [q for q in pods if q.role == role and not q.terminating]
                    for _ in range(want - len(live)):
                        pods.append(Pod(self._next_id(), role, t))
                    if len(live) > want:
                        # ReplicaSet order: unscheduled, then not ready, then the newest ready pods.
                        victims = sorted(live, key=lambda q: (q.node is not None, q.ready, -q.id))
                        for q in victims[: len(live) - want]:
                            if q.node is None:
                                q.gone = True
                            else:
                                terminate(q, t)
                pods = [q for q in pods if not q.gone]
            place_pods(t)
            # consolidation and cost
            for node in nodes:
                if node.gone_at is not None:
                    continue
                if not node.pods and t >= node.ready_at:
                    node.empty_since = node.empty_since if node.empty_since is not None else t
                    if t - node.empty_since >= (0 if instant else self.consolidate_after):
                        node.gone_at = t
                        continue
                node_seconds[node.capacity] += DT * node.share
                cost += self._price(node.capacity) * node.share * DT / 3600
            if t >= next_sample:
                recent = [v for ts, v in ttft_events if ts > t - 60]
                timeline.append({
                    "t": t,
                    "ready": sum(1 for q in pods if q.routable),
                    "pending": sum(1 for q in pods if not q.ready and not q.terminating),
                    "nodes_on_demand": sum(1 for nd in nodes if nd.gone_at is None and nd.capacity == "on-demand"),
                    "nodes_spot": sum(1 for nd in nodes if nd.gone_at is None and nd.capacity == "spot"),
                    "queue": len(gateway) + sum(len(q.queue) for q in pods),
                    "ttft_p95": percentile(recent, 0.95) if recent else None,
                })
                next_sample = t + 15
                if self.progress:
                    self.progress(min(t / horizon, 1.0))
            t += DT
            if next_arrival >= n and not gateway and not any(q.busy for q in pods) and t >= last + tail:
                break
        gpu_hours = sum(node_seconds.values()) * self.instance.gpus / 3600
        return Result(arrival, first, end, admitted, cap, preemptions, retries, cost, gpu_hours, node_seconds,
                      timeline, self.service.slo.ttft_p95_seconds)
