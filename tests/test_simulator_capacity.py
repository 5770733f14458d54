"""What the simulator models that moves cost: disruption budgets, topology spread and whole-node
billing, KEDA's fallback from zero, and ``scaling.mode: hpa`` (issue 17, item 6)."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from components.render import karpenter
from platform_facts import catalog
from simulator import control, disruption, hpa, packing
from simulator.profile import from_config
from simulator.replay import ServiceReplay
from simulator.state import Node, Pod
from tests.conftest import load, load_plain_prod, load_with, plain_prod
from tests.test_simulator import _burst_trace, synthetic

MONDAY_10 = datetime(2024, 1, 1, 10, tzinfo=timezone.utc)
SATURDAY_10 = datetime(2024, 1, 6, 10, tzinfo=timezone.utc)


# ---------------------------------------------------------------------- disruption budgets


def test_budgets_are_read_from_the_rendered_node_pool():
    cfg = load("prod")  # nodes: 1, and nodes: 0 for Underutilized/Drifted 08:00-20:00 UTC on weekdays
    tier = cfg.tier("l40s")
    (_, spec), *_ = karpenter.node_pools(tier, cfg.on_demand_gpu_limit("l40s"))
    pool = disruption.from_node_pool(spec, MONDAY_10)
    assert (pool.policy, pool.consolidate_after_seconds) == ("WhenEmpty", 900)
    assert pool.allowed("Underutilized", 0, total=4, deleting=0, not_ready=0) == 0  # frozen at 10:00
    assert pool.allowed("Drifted", 10 * 3600 - 60, total=4, deleting=0, not_ready=0) == 0  # 19:59
    assert pool.allowed("Underutilized", 10 * 3600, total=4, deleting=0, not_ready=0) == 1  # 20:00: closed
    assert pool.allowed("Empty", 0, total=4, deleting=0, not_ready=0) == 1  # Empty is not frozen
    assert pool.allowed("Empty", 0, total=4, deleting=0, not_ready=1) == 0  # a launching node uses the budget
    weekend = disruption.from_node_pool(spec, SATURDAY_10)
    assert weekend.allowed("Underutilized", 0, total=4, deleting=0, not_ready=0) == 1


def test_budget_node_counts_and_percentages():
    assert disruption.Budget("10%").limit(3) == 1  # rounded up
    assert disruption.Budget("10%").limit(11) == 2
    assert disruption.Budget("0").limit(50) == 0
    pool = disruption.PoolDisruption("WhenEmpty", 300, (disruption.Budget("50%"), disruption.Budget("1", ("Empty",))),
                                     MONDAY_10)
    assert pool.allowed("Empty", 0, total=10, deleting=0, not_ready=0) == 1  # the minimum of matching budgets
    assert pool.allowed("Drifted", 0, total=10, deleting=2, not_ready=1) == 2  # 5 - deleting - not ready
    assert disruption.PoolDisruption("WhenEmpty", 300, (disruption.Budget("1", ("Drifted",)),), MONDAY_10).allowed(
        "Empty", 0, total=3, deleting=0, not_ready=0) == math.inf  # no budget names Empty


def _freeze(schedule: str, reasons: list[str] | None):
    budget: dict = {"nodes": "0", "schedule": schedule, "duration": "12h"}
    if reasons is None:
        budget["keepEmptyNodes"] = True
    else:
        budget["reasons"] = reasons

    def mutate(v: dict) -> None:
        v["gpuTiers"][0]["disruptionBudgets"] = [{"nodes": "1"}, budget]

    return load_plain_prod(mutate)


def test_a_business_hours_freeze_keeps_idle_burst_nodes_and_costs_more():
    # A burst at the start of a Monday noon trace, then a trickle for an hour: the burst scales
    # in, its spot nodes empty out and go 15 minutes later, unless a freeze covers Empty.
    trace = synthetic(_burst_trace(60, 300, 10) + [(600.0 + 120 * i, 100, 10) for i in range(30)])

    def replay(schedule: str, reasons: list[str] | None):
        cfg = _freeze(schedule, reasons)
        svc = cfg.model_services[0]
        return ServiceReplay(cfg, svc, trace, from_config(svc, 0)).replay()

    frozen = replay("0 8 * * 1-5", None)  # every reason, Empty included, 08:00-20:00 on weekdays
    weekend = replay("0 8 * * 6", None)  # the same freeze on Saturdays only: not in this trace
    listed = replay("0 8 * * 1-5", ["Underutilized", "Drifted"])  # prod's: empty nodes still go
    removed = [sum(1 for e in r.events if e.kind == "node-removed") for r in (frozen, weekend, listed)]
    assert removed[0] == 0 and removed[1] > 0 and removed[1] == removed[2]
    assert frozen.timeline[-1]["nodes_spot"] > 0 and weekend.timeline[-1]["nodes_spot"] == 0
    assert frozen.cost > weekend.cost == listed.cost


# ---------------------------------------------------------------------- spread and whole nodes


def test_spread_is_read_from_the_rendered_pod_spec():
    cfg = load("prod")
    svc = cfg.model_services[1]
    assert packing.hostname_spread(svc, cfg.tier(svc.tier), cfg.region) == {
        "baseline": packing.Spread(1, hard=False), "burst": packing.Spread(1, hard=False)}


def _node(id_: int, ready_at: float, *roles: str) -> Node:
    node = Node(id_, "on-demand", 0.0, ready_at, slots=2)
    node.pods = [Pod(100 + i, role, 0.0, node=node) for i, role in enumerate(roles)]  # type: ignore[arg-type]
    return node


def test_karpenter_takes_a_preferred_spread_as_required_and_the_scheduler_does_not():
    soft = packing.Spread(1, hard=False)
    in_flight = _node(1, 500.0, "burst")
    order: list = ["on-demand"]
    # Provisioning: a second burst replica does not join the in-flight node (a new node would hold none) ...
    assert packing.provisioner_node([in_flight], order, "burst", soft, relax=False) is None
    # ... a baseline replica may, and at the NodePool limit the preference is relaxed.
    assert packing.provisioner_node([in_flight], order, "baseline", soft, relax=False) is in_flight
    assert packing.provisioner_node([in_flight], order, "burst", soft, relax=True) is in_flight
    assert packing.provisioner_node([in_flight], order, "burst", packing.Spread(1, hard=True), relax=True) is None
    # The scheduler binds to Ready nodes only; ScheduleAnyway scores, it does not filter.
    assert packing.scheduler_node([in_flight], order, "burst", soft, t=0.0) is None
    assert packing.scheduler_node([in_flight], order, "burst", soft, t=500.0) is in_flight
    other = _node(2, 0.0)
    assert packing.scheduler_node([in_flight, other], order, "burst", soft, t=500.0) is other  # fewer of the role
    assert packing.scheduler_node([_node(3, 0.0, "burst"), _node(4, 0.0)], order, "burst",
                                  packing.Spread(1, hard=True), t=0.0).id == 4


def test_a_second_70b_replica_takes_a_second_p5_billed_whole():
    cfg = load_plain_prod()
    svc = cfg.model_services[1]  # reason-70b: 4 baseline replicas, TP 4, two fit on a p5.48xlarge
    p5 = catalog.INSTANCE_TYPES["p5.48xlarge"]
    result = ServiceReplay(cfg, svc, synthetic([(5.0, 100, 10)]), from_config(svc, 0)).replay()
    assert {row["nodes_on_demand"] for row in result.timeline} == {4}  # one per baseline replica, not 2
    seconds = result.node_seconds["on-demand"]
    assert seconds % 4 == 0 and seconds / 4 > result.timeline[-1]["t"]  # four nodes for every second
    assert result.cost == pytest.approx(seconds / 3600 * p5.on_demand_hourly)
    # The burst replica (on-demand) shares a baseline's p5: another role, so no spread applies.
    busy = ServiceReplay(cfg, svc, synthetic(_burst_trace(60, 600, 8, 4000, 300)), from_config(svc, 0)).replay()
    assert max(row["ready"] for row in busy.timeline) == 5
    assert max(row["nodes_on_demand"] for row in busy.timeline) == 4


def test_the_oracle_packs_replicas_but_pays_for_whole_nodes():
    cfg = load("prod")
    svc = cfg.model_services[1]
    p5 = catalog.INSTANCE_TYPES["p5.48xlarge"]
    # The constrained oracle (whole nodes): 3 replicas on 2 nodes of 2 slots, billed whole.
    result = ServiceReplay(cfg, svc, synthetic([(5.0, 100, 10)]), from_config(svc, 0), schedule=lambda t: 3,
                           whole_nodes=True).replay()
    assert {row["nodes_on_demand"] for row in result.timeline} == {2}
    assert result.cost == pytest.approx(result.node_seconds["on-demand"] / 3600 * p5.on_demand_hourly)
    assert result.node_seconds["on-demand"] % 2 == 0  # no half nodes
    assert result.gpu_hours == pytest.approx(result.node_seconds["on-demand"] * p5.gpus / 3600)
    # The unconstrained oracle bills each replica as its share of a node: 3 halves of a p5.
    shares = ServiceReplay(cfg, svc, synthetic([(5.0, 100, 10)]), from_config(svc, 0), schedule=lambda t: 3).replay()
    assert shares.node_seconds["on-demand"] == pytest.approx(result.node_seconds["on-demand"] * 3 / 4)


# ---------------------------------------------------------------------- KEDA fallback


@pytest.mark.parametrize(("behavior", "current", "expected"), [
    ("static", 5, 2), ("currentReplicas", 5, 5), ("currentReplicasIfHigher", 5, 5),
    ("currentReplicasIfHigher", 1, 2), ("currentReplicasIfLower", 5, 2), ("currentReplicasIfLower", 1, 1),
])
def test_fallback_behaviors(behavior, current, expected):
    assert control.fallback_replicas(behavior, 2, current) == expected


def test_the_profile_takes_the_rendered_fallback():
    svc = load_plain_prod().model_services[0]  # 2..8, burst range 6: half of it, after 3 failures
    p = from_config(svc, 0)
    assert (p.fallback_replicas, p.fallback_failure_threshold, p.fallback_behavior, p.mode) == (3, 3, "static", "keda")


def test_keda_fallback_scales_from_zero_during_an_outage():
    cfg = load("dev")  # scale to zero, polling 15 s
    svc = cfg.model_services[0]
    prof = from_config(svc, 0).with_(active_hours=None, wake=True, fallback_replicas=2)
    trace = synthetic([(2400.0, 100, 10)])  # idle at zero until after the outage
    outage = ((300.0, 1500.0),)

    def run(p):
        result = ServiceReplay(cfg, svc, trace, p, prometheus_outages=outage).replay()
        return result, [(row["t"], row["ready"]) for row in result.timeline if 300 <= row["t"] < 1500]

    with_fallback, ready = run(prof)
    # At zero when the outage starts; polls at 300, 315, 330 and 345 fail; the 4th exceeds the threshold (3).
    assert ready[0][1] == 0
    first = next(e.t for e in with_fallback.events if e.kind == "scale" and e.t >= 300)
    assert first == 345
    assert max(r for _, r in ready) == 2  # then the HPA reads the fallback metric: 2 replicas
    _, ready = run(prof.with_(fallback_replicas=None))
    assert max(r for _, r in ready) == 0  # no fallback: an erroring trigger at zero stays at zero


# ---------------------------------------------------------------------- scaling.mode: hpa


@pytest.mark.parametrize(("values", "target", "current", "unready", "missing", "expected"), [
    ([20.0, 10.0, 30.0], 15.0, 3, 0, 0, 4),  # replica_calculator_test ScaleUpCM: avg 20/15 x 3
    ([50.0, 10.0, 30.0], 15.0, 3, 0, 0, 6),  # unready pods with a metric count for Pods metrics
    ([16.0, 14.0], 15.0, 2, 0, 0, 2),  # within tolerance
    ([30.0], 5.0, 2, 1, 0, 6),  # ratio 6 with a Pending pod counted as 0: avg 15/5 over 2 pods
    ([0.0, 0.0], 5.0, 3, 0, 1, 1),  # scale-down, a missing pod taken at target: avg 5/3 over 3 -> 1 (not 0)
])
def test_pods_average_value(values, target, current, unready, missing, expected):
    assert hpa.pods_average_value(values, target, current, unready, missing) == expected


def _hpa_mode(v: dict) -> None:
    """prod's chat-8b in ``scaling.mode: hpa``, from the plain prod (no predictive trigger, which
    a plain HPA cannot carry)."""
    plain_prod(v)
    v["modelServices"][0]["scaling"]["mode"] = "hpa"


def test_hpa_mode_replays_through_the_plain_hpa():
    cfg = load_with("prod", _hpa_mode)
    svc = cfg.model_services[0]
    prof = from_config(svc, 0)
    assert (prof.mode, prof.fallback_replicas) == ("hpa", None)
    trace = synthetic(_burst_trace(60, 600, 12) + [(2400.0, 100, 10)])
    result = ServiceReplay(cfg, svc, trace, prof).replay()
    desired = [row["burst_desired"] for row in result.timeline]
    assert desired[0] == 1 and min(desired) == 1  # minReplicas 1: never zero, no KEDA activation
    assert max(desired) > 1  # scaled on the burst pods' own queue
    keda_cfg = load_plain_prod()
    keda = keda_cfg.model_services[0]
    keda_result = ServiceReplay(keda_cfg, keda, trace, from_config(keda, 0)).replay()
    assert keda_result.timeline[0]["burst_desired"] == 0  # KEDA mode starts the burst at zero


def test_karpenter_tries_spot_before_an_in_flight_on_demand_node_for_burst():
    from dataclasses import replace

    from simulator import capacity
    from simulator.replay import initial_state

    cfg = load("prod")
    svc = cfg.model_services[0]  # chat-8b: burst prefers spot, falls back to on-demand
    setup = replace(ServiceReplay(cfg, svc, synthetic([(5.0, 100, 10)]), from_config(svc, 0)).setup, replicas_per_node=2)
    state = initial_state(setup, 0)
    on_demand = _node(1, 500.0, "baseline")  # in flight, room for one more
    state.nodes.append(on_demand)
    burst = Pod(9, "burst", 0.0)
    spot = capacity.provision(setup, state, burst, 10.0)
    assert spot is not None and spot.capacity == "spot" and spot is not on_demand  # preferred affinity first
    no_spot = replace(setup, gpu_limits={"on-demand": setup.gpu_limits["on-demand"], "spot": 0})
    state.nodes.remove(spot)
    assert capacity.provision(no_spot, state, burst, 10.0) is on_demand  # relaxed: shares the baseline's node


def test_cron_matches_all_five_fields():
    from simulator.cron import cron_matches

    assert cron_matches("0 8 * * 1-5", MONDAY_10.replace(hour=8))
    assert not cron_matches("0 8 * * 1-5", SATURDAY_10.replace(hour=8))
    assert cron_matches("0 8 1 1 *", MONDAY_10.replace(hour=8))  # 1 January
    assert not cron_matches("0 8 1 2 *", MONDAY_10.replace(hour=8))  # February only
    assert not cron_matches("0 8 2 * *", MONDAY_10.replace(hour=8))


def test_hpa_mode_holds_during_an_outage_and_has_no_fallback():
    cfg = load_with("prod", _hpa_mode)
    svc = cfg.model_services[0]
    # A five-minute burst drives the burst to its maximum, then a trickle lets it scale in.
    trace = synthetic(_burst_trace(60, 300, 12) + [(400.0 + 60 * i, 100, 10) for i in range(40)])

    def desired(outages):
        result = ServiceReplay(cfg, svc, trace, from_config(svc, 0), prometheus_outages=outages).replay()
        return {row["t"]: row["burst_desired"] for row in result.timeline}

    calm, down = desired(()), desired(((400.0, 1800.0),))
    assert calm[1680.0] < calm[600.0] == 6  # scales in once the stabilization window has passed
    assert {v for t, v in down.items() if 600 <= t < 1800} == {6}  # no metric, no fallback: it holds
