"""Where GPU pods can run: which NodePools can host a pod template (labels, taints, requests
against the instance types a pool may launch), and whether their GPU limits cover max scale."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from platform_facts.catalog import INSTANCE_TYPES, allocatable

from .base import stack_rule
from .instance_types import launchable
from .rules_capacity import NODEPOOL, is_gpu_pool
from .rules_stack import Workload, _by_type, _max_replicas, _name, _scalers_of, workloads
from .workloads import GPU, dig, pod_requests, required_values


def _pool_provides(pool: Any) -> dict[str, set[str]]:
    template = dig(pool.props, "spec", "template") or {}
    provides: dict[str, set[str]] = {k: {str(v)} for k, v in (dig(template, "metadata", "labels") or {}).items()}
    for r in dig(template, "spec", "requirements") or ():
        if r.get("operator") == "In":
            provides[str(r.get("key"))] = {str(v) for v in r.get("values") or ()}
    return provides


def _untolerated(spec: Mapping[str, Any], taints: Sequence[Mapping[str, Any]]) -> list[str]:
    """The pool's NoSchedule/NoExecute taints that the pod does not tolerate."""
    out = []
    for taint in taints:
        ok = any((t.get("operator") == "Exists" and (not t.get("key") or t.get("key") == taint.get("key")))
                 or (t.get("key") == taint.get("key") and t.get("value") == taint.get("value"))
                 for t in spec.get("tolerations") or ())
        if not ok and taint.get("effect") in ("NoSchedule", "NoExecute"):
            out.append(f"{taint.get('key')}:{taint.get('effect')}")
    return out


def fitting_type(requests: Mapping[str, float], types: Sequence[str]) -> str | None:
    """The first of the instance types whose allocatable GPUs, vCPUs and memory hold one pod."""
    for name in types:
        it = INSTANCE_TYPES[name]
        cpu, memory = allocatable(it.vcpu, it.memory_gib)
        if it.gpus >= requests["gpu"] and cpu >= requests["cpu"] and memory >= requests["memory"]:
            return name
    return None


def why_not(w: Workload, pool: Any) -> str | None:
    """Why the workload's pods cannot run on the pool's nodes (None when they can): a required
    node label the pool does not provide, a taint not tolerated, or requests larger than the
    largest instance type the pool may launch (judged only when the pool's requirements
    name types of the catalog)."""
    provides = _pool_provides(pool)
    keys = set(provides) | set(w.spec.get("nodeSelector") or {}) | {e.get("key") for t in (dig(
        w.spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms") or ())
        for e in t.get("matchExpressions") or ()}
    for k in sorted(str(k) for k in keys):
        wanted = required_values(w.spec, k)
        if wanted is not None and k in provides and not wanted & provides[k]:
            return f"it requires {k} in {sorted(wanted)}, the pool offers {sorted(provides[k])}"
    untolerated = _untolerated(w.spec, dig(pool.props, "spec", "template", "spec", "taints") or ())
    if untolerated:
        return f"it does not tolerate {', '.join(untolerated)}"
    types = launchable(dig(pool.props, "spec", "template", "spec", "requirements") or ())
    requests = pod_requests(w.spec)
    if types and fitting_type(requests, types) is None:
        return (f"one pod requests {requests['gpu']:g} GPU, {requests['cpu']:g} CPU, {requests['memory']:.1f} GiB and "
                f"no instance type it may launch ({', '.join(types)}) has that much allocatable")
    return None


def pools_for(w: Workload, pools: list[Any]) -> list[Any]:
    """NodePools whose nodes can host the workload's pods (``why_not`` finds nothing)."""
    return [pool for pool in pools if why_not(w, pool) is None]


def _gpu_pools(resources: Sequence[Any]) -> list[Any]:
    return [p for p in _by_type(resources, NODEPOOL) if is_gpu_pool(p.props)]


def gpu_pod_schedulable(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    pools = _gpu_pools(resources)
    if not pools:  # the stack makes no NodePool: its pods may land on another stack's pools
        return
    for w in workloads(resources):
        if w.gpus_per_pod and not pools_for(w, pools):
            reasons = "; ".join(f"{_name(p.props)}: {why_not(w, p)}" for p in pools)
            yield w.urn, f"{w.name}: no GPU NodePool can host its pods ({reasons}); they stay Pending."


def capacity_covers(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    pools = _gpu_pools(resources)
    if not pools:
        return
    scalers = _scalers_of(resources)
    demand: list[tuple[Workload, frozenset[str], int]] = []
    for w in workloads(resources):
        if not w.gpus_per_pod:
            continue
        if w.kind == "ScaledJob":
            count = int(dig(w.props, "spec", "maxReplicaCount") or 100)
        else:
            count = _max_replicas(w, scalers.get((w.namespace, w.kind, w.name), []))
        names = frozenset(_name(p.props) for p in pools_for(w, pools))
        demand.append((w, names, count * w.gpus_per_pod))
    limit = {_name(p.props): int(float(dig(p.props, "spec", "limits", GPU) or 0)) for p in pools}
    for w, names, _count in demand:
        if not names:  # gpu-pod-schedulable reports it
            continue
        capacity = sum(limit[n] for n in names)
        competing = sum(g for _other_w, other, g in demand if other and other <= names)
        if competing > capacity:
            yield w.urn, (f"{w.name}: at max scale the workloads on NodePools {', '.join(sorted(names))} need "
                          f"{competing} GPUs but those pools are limited to {capacity}: pods would scale but stay "
                          "Pending (fake scaling).")


RULES = [
    stack_rule("capacity-covers-max-scale", "Capacity (Karpenter)",
        "The GPU limits of the NodePools a workload can land on cover its maximum scale.",
        "\"Fake scaling\": the autoscaler adds replicas that no node can ever host, so they stay Pending.",
        "raise the NodePools' nvidia.com/gpu limits or lower maxReplicas.", capacity_covers),
    stack_rule("gpu-pod-schedulable", "Capacity (Karpenter)",
        "Every GPU pod template can schedule on at least one GPU NodePool of the stack: its required node labels "
        "(nodeSelector, required node affinity), its tolerations, and its requests against the largest instance "
        "type the pool may launch (allocatable: capacity less ~0.5 vCPU and 10 % + 1 GiB of memory).",
        "Karpenter launches nothing for a pod no NodePool can host; the pod stays Pending and the rollout never ends.",
        "align the pod's nodeSelector/affinity and tolerations with a NodePool's labels, requirements and taints, or "
        "admit an instance type large enough for one pod.", gpu_pod_schedulable),
]
