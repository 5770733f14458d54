"""Cost at a glance: what each service needs at min and max scale, on which instances, at
what price, and whether the NodePools' GPU limits can hold it (``capacity.md``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from components import sizing
from components.config import GpuTier, ModelServiceConfig, StackConfig
from components.render import batch, general_pool, router
from platform_facts import catalog


@dataclass(frozen=True)
class Placement:
    instance: catalog.InstanceType
    replicas_per_node: int

    def nodes(self, replicas: int) -> int:
        return math.ceil(replicas / self.replicas_per_node) if replicas else 0

    def spread_nodes(self, *roles: int) -> int:
        """Nodes Karpenter launches for these replica counts, one per role: each role's pods carry
        a hostname spread of maxSkew 1 (``render/vllm.py``), and Karpenter provisions preferred
        spreads as required (kubernetes-sigs/karpenter#666), so a role's replicas get a node each;
        different roles share nodes up to the instance's room (``simulator/packing.py`` replays the same)."""
        return max(max(roles, default=0), self.nodes(sum(roles)))


def placement(service: ModelServiceConfig, tier: GpuTier) -> Placement:
    """The cheapest instance type of the tier per replica that fits (how Karpenter would bin-pack
    one service alone: price-capacity-optimized picks the cheapest that fits)."""
    best: Placement | None = None
    for name in tier.instance_types:
        it = catalog.INSTANCE_TYPES[name]
        if not sizing.replica_fits(service, it):
            continue
        cand = Placement(it, sizing.replicas_per_node(service, it))
        if best is None or it.on_demand_hourly / cand.replicas_per_node < best.instance.on_demand_hourly / best.replicas_per_node:
            best = cand
    assert best is not None, "config validation guarantees a fitting instance type"
    return best


def _money(x: float) -> str:
    return f"${x:,.2f}"


def report(config: StackConfig) -> str:
    lines = [
        f"# Capacity and cost: {config.cluster.name} ({config.environment}, {config.region})",
        "",
        "Prices per hour from the catalog (on-demand: Karpenter's us-east-1 table; spot: a per-AZ",
        "snapshot range, or estimated where marked *). Planning figures, not billing. Baseline",
        "replicas run on on-demand; burst replicas on spot when the service allows it, with",
        "on-demand as the fallback (the high end of the range). Each role's replicas take a node",
        "each (Karpenter provisions their hostname spread as required); roles share nodes.",
        "",
        "## Services",
        "",
        "| service | tier | GPUs/replica | instance | min replicas | min GPUs | min $/h | max replicas | max GPUs | max $/h |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    demand: dict[tuple[str, str], int] = {}
    for s in config.model_services:
        tier = config.tier(s.tier)
        p = placement(s, tier)
        it = p.instance
        base, top = s.scaling.min_replicas, s.scaling.max_replicas
        burst = top - base
        base_cost = p.spread_nodes(base) * it.on_demand_hourly
        on_spot = s.burst_capacity == "spot" and tier.spot.enabled
        if on_spot:
            # Burst on spot nodes of its own; on-demand as the fallback (the high end).
            low = base_cost + p.spread_nodes(burst) * it.spot_hourly_low
            high = base_cost + p.spread_nodes(burst) * it.on_demand_hourly
        else:
            # On-demand burst shares the baseline's nodes (another role: the spreads allow it).
            low = high = p.spread_nodes(base, burst) * it.on_demand_hourly
        star = "*" if on_spot and it.spot_estimated else ""
        max_cost = _money(high) if low == high else f"{_money(low)}-{_money(high)}{star}"
        gpus = s.gpus_per_replica
        lines.append(f"| {s.name} | {tier.name} | {gpus} | {it.name} ({p.replicas_per_node}/node) | {base} | {base * gpus} | "
                     f"{_money(base_cost)} | {top} | {top * gpus} | {max_cost} |")
        demand[(tier.name, "on-demand")] = demand.get((tier.name, "on-demand"), 0) + base * gpus + (0 if on_spot else burst * gpus)
        if on_spot:
            demand[(tier.name, "spot")] = demand.get((tier.name, "spot"), 0) + burst * gpus
    lines += ["", "## NodePools", "",
              "| NodePool | weight | GPU limit | GPUs the services can ask for | headroom |",
              "|---|---|---|---|---|"]
    for tier in config.gpu_tiers:
        pools = [("on-demand", tier.on_demand.enabled, tier.on_demand.weight, config.on_demand_gpu_limit(tier.name)),
                 ("spot", tier.spot.enabled, tier.spot.weight, tier.spot.gpu_limit)]
        for capacity, enabled, weight, limit in pools:
            if not enabled:
                continue
            asked = demand.get((tier.name, capacity), 0)
            if capacity == "on-demand":
                # The warm-capacity buffer holds its nodes whether or not a replica uses them.
                asked += config.on_demand_gpu_terms(tier.name).buffer
            note = "" if asked <= limit else " (burst beyond the limit stays Pending)"
            lines.append(f"| {tier.name}-{capacity} | {weight} | {limit} | {asked} | {limit - asked}{note} |")
    lines += _on_demand_limits(config)
    lines += _routers(config)
    return "\n".join(lines) + "\n"


def _on_demand_limits(config: StackConfig) -> list[str]:
    """Each on-demand NodePool's limit, term by term (``StackConfig.on_demand_gpu_terms``)."""
    lines = ["", "## On-demand GPU limits", "",
             "Karpenter launches no node that would take a NodePool past its limit, so the on-demand",
             "limit holds everything that may run there at once: baselines and canaries, on-demand burst,",
             "spot burst falling back to on-demand (`burstFallback: onDemand`), one surge pod per",
             "Deployment (Pulumi updates Deployments in parallel), batch jobs that may use on-demand, the",
             "GPUs of partly filled nodes, and one node of the largest type so drift can replace a node",
             "before removing it. Expiry does not wait for that node: it drains at once. A warm-capacity",
             "buffer (`capacityBuffer`) counts the whole nodes its chunks keep ready.",
             "",
             "| NodePool | baseline | canary | burst on-demand | burst fallback | surge | batch | whole nodes "
             "| replacement node | warm buffer | headroom | limit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for tier in config.gpu_tiers:
        if not tier.on_demand.enabled:
            continue
        t = config.on_demand_gpu_terms(tier.name)
        limit = f"{t.total} (gpuLimit; the terms sum to {t.computed})" if t.override is not None else str(t.total)
        lines.append(f"| {tier.name}-on-demand | {t.baseline} | {t.canary} | {t.burst_on_demand} | {t.burst_fallback} "
                     f"| {t.surge} | {t.batch} | {t.packing} | {t.replacement} | {t.buffer} | {t.headroom} | {limit} |")
    return lines


def _routers(config: StackConfig) -> list[str]:
    """The llm-d routers' and Redis's requests on the general-purpose NodePool and its CPU limit."""
    routed = [s for s in config.model_services if router.routed(s)]
    redis = sum(1 for b in config.batch_workers if b.redis is None)
    if not routed and not redis:
        return []
    lines = ["", "## General-purpose NodePool (routers, Redis)", "",
             f"One router pod per routed service ({router.REPLICAS} replica: see render/router.py), sized from",
             f"routing.peakRequestsPerSecond, and {redis} in-cluster Redis ({batch.REDIS_CPU_MILLICORES}m each); the",
             "NodePool's CPU limit is their requests plus one node of the largest type, for a replacement.", "",
             "| service | req/s | EPP CPU | EPP memory | Envoy CPU | Envoy memory |", "|---|---|---|---|---|---|"]
    for s in routed:
        z = router.sizing(s)
        lines.append(f"| {s.name} | {s.routing.peak_requests_per_second:g} | {z['epp']['requests']['cpu']} | "
                     f"{z['epp']['requests']['memory']} | {z['proxy']['requests']['cpu']} | {z['proxy']['requests']['memory']} |")
    millicores = sum(router.cpu_millicores(s) for s in routed) + redis * batch.REDIS_CPU_MILLICORES
    lines += ["", f"NodePool `{general_pool.NAME}`: {millicores}m requested, CPU limit "
                  f"{general_pool.cpu_limit(millicores)}."]
    return lines
