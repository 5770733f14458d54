"""Which node a pending replica goes to, honouring the topology spread its Deployment renders.

``render/vllm.py`` gives each role's pods (selector: the service and the role) a zone and a
hostname spread, ``maxSkew: 1``, ``whenUnsatisfiable: ScheduleAnyway``. Two controllers read it
differently (production-facts section 6):

- the kube-scheduler, binding to a node that is Ready: ``ScheduleAnyway`` only scores, so a pod
  takes a free slot next to a replica of its own role when that is the only room (it prefers a
  node without one); ``DoNotSchedule`` would filter;
- Karpenter, provisioning for pods nothing Ready can take: it treats preferred constraints as
  required first (kubernetes-sigs/karpenter#666), with a new node as a domain holding none, so
  a pod joins an in-flight node only within ``maxSkew`` and otherwise gets a node of its own;
  it relaxes a ``ScheduleAnyway`` spread only when no node can be launched (NodePool limit).

So a second 70B replica of the same role takes a second p5 even though one p5 has room for
two; replicas of different roles (baseline, burst) may share a node. Zones are not modelled:
with at most ``maxSkew`` replicas of a role per node, the zone spread adds no node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from components import labels
from components.config import GpuTier, ModelServiceConfig
from components.render import vllm
from simulator.state import Capacity, Node, Role

ROLES: tuple[Role, ...] = ("baseline", "burst")


@dataclass(frozen=True)
class Spread:
    """The hostname topology spread of one role's pods."""

    max_skew: int
    hard: bool  # whenUnsatisfiable: DoNotSchedule


def hostname_spread(service: ModelServiceConfig, tier: GpuTier, region: str) -> dict[Role, Spread | None]:
    """Each role's hostname spread, as ``render/vllm.py`` puts it in the pod spec."""
    out: dict[Role, Spread | None] = {}
    for role in ROLES:
        spec = vllm.pod_spec(service, tier, role, region=region)
        found = [c for c in spec.get("topologySpreadConstraints", []) if c["topologyKey"] == labels.HOSTNAME]
        out[role] = Spread(found[0]["maxSkew"], found[0]["whenUnsatisfiable"] == "DoNotSchedule") if found else None
    return out


def same_role(node: Node, role: Role) -> int:
    return sum(1 for q in node.pods if q.role == role and not q.terminating)


def has_room(node: Node) -> bool:
    return node.live and not node.noticed and len(node.pods) < node.slots


def scheduler_node(nodes: Iterable[Node], order: list[Capacity], role: Role, spread: Spread | None,
                   t: float) -> Node | None:
    """The kube-scheduler: a Ready node with room, in NodePool order, fewest replicas of the
    role first (the spread's score); a hard spread filters nodes beyond ``maxSkew``."""
    eligible = [nd for nd in nodes if nd.live and nd.capacity in order]
    floor = min((same_role(nd, role) for nd in eligible), default=0)
    ready = [nd for nd in eligible if has_room(nd) and t >= nd.ready_at
             and not (spread and spread.hard and same_role(nd, role) + 1 - floor > spread.max_skew)]
    if not ready:
        return None
    return min(ready, key=lambda nd: (order.index(nd.capacity), same_role(nd, role), nd.id))


def provisioner_node(nodes: Iterable[Node], order: list[Capacity], role: Role, spread: Spread | None,
                     relax: bool) -> Node | None:
    """Karpenter: an in-flight node with room where the spread, taken as required, lets the pod
    join (a new node would hold none of the role); with ``relax`` (nothing can be launched) a
    ``ScheduleAnyway`` spread is dropped."""
    for capacity in order:
        for nd in nodes:
            if nd.capacity != capacity or not has_room(nd):
                continue
            if spread is None or same_role(nd, role) + 1 <= spread.max_skew or (relax and not spread.hard):
                return nd
    return None
