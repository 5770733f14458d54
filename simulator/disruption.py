"""Karpenter's voluntary disruption of a NodePool: ``consolidationPolicy``, ``consolidateAfter``
and the disruption ``budgets``, read from the NodePool spec the stack renders
(``components.render.karpenter.node_pools``), never from a copy of the config.

Budget semantics (Karpenter v1.14 ``concepts/disruption.md``; production-facts section 6):

- a budget without ``reasons`` applies to every reason (``Drifted``, ``Underutilized``, ``Empty``);
  for one reason the minimum over the active budgets that match it wins; no matching budget
  leaves the reason unlimited;
- ``nodes`` is a count, or a percent of the pool's nodes rounded up;
- the disruptions allowed now are that number minus the pool's nodes being deleted and its
  nodes not Ready yet;
- ``schedule`` is a cron in UTC; the budget applies for ``duration`` after each hit.

The simulator's nodes only ever become candidates as ``Empty`` (see ``capacity.consolidate``):
with one instance type and pods that spread one per node and role, an ``Underutilized`` move
either finds no cheaper replacement or would break the spread Karpenter's consolidation
honours. Drift and expiry do not happen within a trace (no AMI change; ``expireAfter`` far
beyond it), and expiry ignores budgets anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from components import labels
from components.config import StackConfig, karpenter_seconds
from components.render import karpenter
from simulator.cron import cron_matches

REASONS = ("Drifted", "Underutilized", "Empty")
PoolCapacity = Literal["on-demand", "spot"]  # simulator.state.Capacity (which imports this module)


@dataclass(frozen=True)
class Budget:
    """One entry of ``spec.disruption.budgets``."""

    nodes: str  # "1" or "10%"
    reasons: tuple[str, ...] = ()  # empty: every reason
    schedule: str | None = None
    duration_seconds: int | None = None

    def covers(self, reason: str) -> bool:
        return not self.reasons or reason in self.reasons

    def limit(self, total: int) -> int:
        """The nodes this budget lets go at once out of ``total`` (a percent rounds up)."""
        if self.nodes.endswith("%"):
            return math.ceil(total * int(self.nodes[:-1]) / 100)
        return int(self.nodes)


@dataclass
class PoolDisruption:
    """A NodePool's disruption settings; ``start`` is the wall-clock time of simulated t = 0
    (schedules are evaluated once per simulated minute and remembered)."""

    policy: str
    consolidate_after_seconds: int
    budgets: tuple[Budget, ...]
    start: datetime
    active_by_minute: dict[tuple[int, int], bool] = field(default_factory=dict)

    def budget_active(self, index: int, t: float) -> bool:
        """A scheduled budget applies from a cron hit until ``duration`` after it."""
        budget = self.budgets[index]
        if budget.schedule is None or budget.duration_seconds is None:
            return True
        key = (index, int(t // 60))
        if key not in self.active_by_minute:
            now = (self.start + timedelta(minutes=key[1])).replace(second=0, microsecond=0)
            back = math.ceil(budget.duration_seconds / 60)
            # A hit at now - back is exactly duration ago: the window has just closed.
            self.active_by_minute[key] = any(cron_matches(budget.schedule, now - timedelta(minutes=m)) for m in range(back))
        return self.active_by_minute[key]

    def allowed(self, reason: str, t: float, total: int, deleting: int, not_ready: int) -> float:
        """How many more nodes may be disrupted for ``reason`` now (``math.inf``: unlimited)."""
        limits = [b.limit(total) for i, b in enumerate(self.budgets) if b.covers(reason) and self.budget_active(i, t)]
        if not limits:
            return math.inf
        return max(min(limits) - deleting - not_ready, 0)


def from_node_pool(spec: dict[str, Any], start: datetime) -> PoolDisruption:
    """The disruption block of a rendered NodePool spec."""
    d = spec["disruption"]
    budgets = tuple(
        Budget(str(b["nodes"]), tuple(b.get("reasons", ())), b.get("schedule"),
               karpenter_seconds(b["duration"]) if "duration" in b else None)
        for b in d["budgets"]
    )
    return PoolDisruption(d["consolidationPolicy"], karpenter_seconds(d["consolidateAfter"]), budgets, start)


def for_tier(config: StackConfig, tier_name: str, start: datetime) -> dict[PoolCapacity, PoolDisruption]:
    """The tier's enabled NodePools as the stack renders them, by capacity type."""
    tier = config.tier(tier_name)
    out: dict[PoolCapacity, PoolDisruption] = {}
    for _, spec in karpenter.node_pools(tier, config.on_demand_gpu_limit(tier.name)):
        requirement = next(r for r in spec["template"]["spec"]["requirements"] if r["key"] == labels.CAPACITY_TYPE)
        out[cast(PoolCapacity, requirement["values"][0])] = from_node_pool(spec, start)
    return out
