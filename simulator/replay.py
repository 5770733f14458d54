"""The discrete-time replay of one ModelService under a scaling profile.

Every ``DT`` (1 s), ``tick`` runs these steps in order:

1. ``arrive`` and ``route``: arriving requests go to a Ready, non-terminating replica under
   the routing policy (``simulator.routing``: at random as kube-proxy's iptables mode by
   default, least-queue, or the llm-d EPP's prefix-aware score); with none, they wait at the caller;
2. ``replica.serve``: every serving replica advances the fluid vLLM model (admission,
   prefill, decode, preemption);
3. ``capacity.spot_interruptions``: the two-minute notice, the drain, the reclaim; requests
   still running when the node disappears are retried;
4. ``pods.advance_pods``: started pods turn Ready, drained ones are deleted;
5. ``control.scrape``: Prometheus reads per-pod gauges every scrape interval;
6. ``control.autoscale``: KEDA's loop every ``pollingInterval`` (activation 0 <-> 1, cooldown
   to zero), the HPA every 15 s on the burst Deployment (``simulator.hpa``), then the
   Deployment controllers (the oracle's ``control.follow_schedule`` instead);
7. ``capacity.place_pending_pods``: the scheduler and Karpenter bind pending pods to a free slot
   or launch a node within the NodePools' GPU limits, honouring the rendered spread (``packing``);
8. ``capacity.consolidate`` and ``capacity.accrue_cost``: empty nodes go after
   ``consolidateAfter`` within the disruption budgets; live nodes are billed whole per second;
9. ``sample``: the timeline every 15 s.

Requests longer than the service's ``maxModelLen`` (prompt plus the output the trace records)
are refused at arrival, as vLLM's OpenAI server refuses a prompt plus ``max_tokens`` over the
context length: they never reach a replica and count as misses.

With ``warm_start_seconds`` the replay starts from the first window's steady state: a prelude
replays the first window once from the usual start, and the burst replicas the controllers hold
at its end start Ready on warm nodes, next to the baseline (``steady_burst``), with the HPA's
history and KEDA's last activity as if they had held them.

Simplifications: one service per replay, one instance type (the cheapest that fits a
replica, as ``capacity.md`` picks), Karpenter batching as "pending for 1 s".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from components.config import ModelServiceConfig, StackConfig
from components.render.capacity import placement
from simulator import capacity, control, disruption, hpa, levers, routing
from simulator.cron import ActiveWindow
from simulator.packing import hostname_spread
from simulator.perf import cold_start, replica_perf
from simulator.pods import advance_pods
from simulator.profile import Profile
from simulator.replica import serve
from simulator.result import Result, percentile
from simulator.state import DT, Outcomes, ReplaySetup, ReplayState
from simulator.trace import Trace

TAIL_SECONDS = 600.0  # keep replaying (and billing) the scale-down after the last arrival
HORIZON_SECONDS = 3600.0  # after the last arrival: a hard stop for requests that never finish
SAMPLE_SECONDS = 15.0
TIMELINE_TTFT_WINDOW_SECONDS = 60


class ServiceReplay:
    """One service, one trace, one profile: ``replay()`` returns what happened to every request."""

    def __init__(self, config: StackConfig, service: ModelServiceConfig, trace: Trace, profile: Profile, *,
                 seed: int = 0, spot_interruptions_per_hour: float = 0.0, scrape_seconds: float | None = None,
                 schedule: Callable[[float], int] | None = None, progress: Callable[[float], None] | None = None,
                 prometheus_outages: tuple[tuple[float, float], ...] = (), warm_start_seconds: float = 0.0,
                 whole_nodes: bool = False, routing_policy: routing.RoutingPolicy = routing.RANDOM):
        tier = config.tier(service.tier)
        place = placement(service, tier)
        self.seed = seed
        self.instance = place.instance
        self.perf = replica_perf(service, self.instance)
        self.cold = cold_start(service, self.instance, fast_image_pull=levers.fast_image_pull(config))
        self.setup = ReplaySetup(
            requests=trace.requests,
            profile=profile,
            perf=self.perf,
            cold=self.cold,
            instance=self.instance,
            replicas_per_node=place.replicas_per_node,
            gpu_limits={"on-demand": config.on_demand_gpu_limit(tier.name) if tier.on_demand.enabled else 0,
                        "spot": tier.spot.gpu_limit if tier.spot.enabled else 0},
            disruption=disruption.for_tier(config, tier.name, trace.start),
            spread=hostname_spread(service, tier, config.region),
            pre_stop_seconds=service.drain.pre_stop_seconds,
            shutdown_timeout_seconds=service.drain.shutdown_timeout_seconds,
            scrape_seconds=scrape_seconds or config.addons.monitoring.scrape_interval_seconds,
            spot_interruptions_per_hour=spot_interruptions_per_hour,
            prometheus_outages=prometheus_outages,
            active_window=ActiveWindow(profile.active_hours, trace.start) if profile.active_hours else None,
            schedule=schedule,
            progress=progress,
            slo_seconds=service.slo.ttft_p95_seconds,
            max_model_len=service.max_model_len,
            warm_start_seconds=0.0 if schedule is not None else warm_start_seconds,
            whole_nodes=whole_nodes,
            routing=routing_policy,
            buffer_nodes=0 if schedule is not None else levers.buffer_nodes(config, service, self.instance, profile.buffer_nodes),
        )

    def replay(self) -> Result:
        return replay(self.setup, self.seed)


def replay(setup: ReplaySetup, seed: int) -> Result:
    """Tick from t = 0 until the queues are empty after the tail, or the horizon."""
    state = initial_state(setup, seed)
    if setup.warm_start_seconds > 0:
        state.burst_desired = max(state.burst_desired, steady_burst(setup, seed))
        # As if held for a while: the HPA's stabilization window and KEDA's cooldown start from
        # it, so the first sync does not undo the warm start before the load is seen.
        state.hpa.recommendations.append(hpa.Recommendation(state.burst_desired, 0.0))
        state.last_active = 0.0
    if not setup.instant:
        capacity.warm_start(setup, state)
    last = setup.requests[-1].arrival if setup.requests else 0.0
    horizon = last + HORIZON_SECONDS
    t = 0.0
    while t < horizon:
        tick(setup, state, t)
        if t >= state.next_sample:
            sample(setup, state, t, horizon)
        t += DT
        if finished(state, len(setup.requests)) and t >= last + TAIL_SECONDS:
            break
    return result_of(setup, state)


def initial_state(setup: ReplaySetup, seed: int) -> ReplayState:
    """The burst Deployment starts at 1 when nothing may take it to zero (or in ``hpa`` mode),
    or when the active hours window opened before the trace began; otherwise at 0."""
    p = setup.profile
    burst = 0 if p.scale_to_zero or p.baseline > 0 else 1
    if setup.active_window is not None and setup.active_window.is_open(0.0):
        burst = max(burst, 1)
    if p.mode == "hpa":
        burst = max(burst, 1)  # the plain HPA's minReplicas
    return ReplayState(outcomes=Outcomes.pending(setup.requests), rng=random.Random(seed), burst_desired=burst)


def steady_burst(setup: ReplaySetup, seed: int) -> int:
    """The burst replicas the controllers hold after replaying the first ``warm_start_seconds``
    of the trace once from the usual start (baseline warm, nothing else)."""
    window = tuple(r for r in setup.requests if r.arrival < setup.warm_start_seconds)
    prelude = replace(setup, requests=window, warm_start_seconds=0.0, progress=None)
    state = initial_state(prelude, seed)
    capacity.warm_start(prelude, state)
    t = 0.0
    while t < setup.warm_start_seconds:
        tick(prelude, state, t)
        t += DT
    return state.burst_desired


def tick(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """One second of the service, in the order of the module docstring."""
    arrive(setup, state, t)
    route(setup, state)
    for pod in state.pods:
        if not pod.gone and pod.ready:
            serve(setup, state, pod, t)
    capacity.spot_interruptions(setup, state, t)
    advance_pods(state, t)
    if t >= state.next_scrape:
        control.scrape(setup, state, t)
    if setup.instant:
        control.follow_schedule(setup, state, t)
    else:
        control.autoscale(setup, state, t)
    capacity.place_pending_pods(setup, state, t)
    capacity.consolidate(setup, state, t)
    capacity.accrue_cost(setup, state)


def arrive(setup: ReplaySetup, state: ReplayState, t: float) -> None:
    """Requests that arrive within the tick join the caller's queue (the gateway), unless vLLM
    would refuse them (longer than ``maxModelLen``)."""
    arrival, limit = state.outcomes.arrival, setup.max_model_len
    while state.next_arrival < len(arrival) and arrival[state.next_arrival] < t + DT:
        r = setup.requests[state.next_arrival]
        if limit is not None and r.prompt_tokens + r.output_tokens > limit:
            state.outcomes.capacity[state.next_arrival] = "rejected"
        else:
            state.gateway.append(state.next_arrival)
        state.next_arrival += 1


def route(setup: ReplaySetup, state: ReplayState) -> None:
    """Each waiting request goes to a routable replica under the setup's policy."""
    routing.route(setup, state)


def finished(state: ReplayState, requests: int) -> bool:
    """Every request has arrived and none is waiting or running anywhere."""
    return state.next_arrival >= requests and not state.gateway and not any(q.busy for q in state.pods)


def sample(setup: ReplaySetup, state: ReplayState, t: float, horizon: float) -> None:
    """One timeline row: replicas, nodes by capacity type, queued requests, the last minute's TTFT p95."""
    recent = [e.ttft for e in state.first_tokens if e.at > t - TIMELINE_TTFT_WINDOW_SECONDS]
    first, state.sampled_arrivals = state.sampled_arrivals, state.next_arrival
    arrived = setup.requests[first:state.next_arrival]
    since = state.timeline[-1]["t"] + DT if state.timeline else 0.0
    interval = t + DT - since  # arrivals are counted up to the end of this tick
    state.timeline.append({
        "t": t,
        "ready": sum(1 for q in state.pods if q.routable),
        "pending": sum(1 for q in state.pods if not q.ready and not q.terminating),
        "nodes_on_demand": len(state.live_nodes("on-demand")),
        "nodes_spot": len(state.live_nodes("spot")),
        "queue": len(state.gateway) + sum(len(q.queue) for q in state.pods),
        "ttft_p95": percentile(recent, 0.95) if recent else None,
        # For the picture: the load since the previous sample, the replicas the controllers
        # want, and the waiting-requests metric KEDA reads (``control.waiting_metric``).
        "requests_per_s": len(arrived) / interval,
        "prompt_tokens_per_s": sum(r.prompt_tokens for r in arrived) / interval,
        "output_tokens_per_s": sum(r.output_tokens for r in arrived) / interval,
        "desired": setup.profile.baseline + state.burst_desired,
        "burst_desired": state.burst_desired,
        "waiting_metric": None if setup.instant else control.waiting_metric(setup, state, t),
    })
    state.next_sample = t + SAMPLE_SECONDS
    if setup.progress:
        setup.progress(min(t / horizon, 1.0))


def result_of(setup: ReplaySetup, state: ReplayState) -> Result:
    out = state.outcomes
    gpu_hours = sum(state.node_seconds.values()) * setup.instance.gpus / 3600
    return Result(out.arrival, out.first_token, out.end, out.admitted, out.capacity, state.preemptions,
                  state.retries, state.cost, gpu_hours, {str(k): v for k, v in state.node_seconds.items()}, state.timeline,
                  setup.slo_seconds, state.events, rejected=out.capacity.count("rejected"), routing=setup.routing.policy,
                  cached_tokens=out.cached, prompt_tokens=[r.prompt_tokens for r in setup.requests])
