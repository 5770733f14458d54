"""Room for what a stack asks while it runs: on-demand NodePool limits against baseline, rollout
surge and a replacement node; the system node group against the requests pinned to it; and
``Value`` triggers that read only their own target's pods, so their signal falls as it grows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from platform_facts.catalog import GENERAL_PURPOSE, INSTANCE_TYPES, allocatable
from platform_facts.kubernetes import pods_of

from .base import stack_rule
from .instance_types import launchable
from .rules_deploy import HELM_RELEASE, _chart, _values
from .rules_placement import _gpu_pools, _pool_provides, pools_for
from .rules_stack import SCALED_OBJECT, Workload, _by_type, _index, _is_vllm, _max_replicas, _name, _ns, _scalers_of, _target, workloads
from .workloads import CAPACITY_TYPE, dig, pod_requests, quantity, required_values, selector_matches

SERVICE = "kubernetes:core/v1:Service"
NODE_GROUPS = ("eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup")
SYSTEM_TAINT = "CriticalAddonsOnly"
SYSTEM_POOL = ("platform.gpu/pool", "system")
AREA = "Deploy"


# --------------------------------------------------------------------------- on-demand headroom


def surge_pods(w: Workload, replicas: int) -> int:
    """Extra pods a rolling update runs at once (StatefulSets replace in place: none)."""
    if w.kind != "Deployment" or replicas <= 0 or dig(w.props, "spec", "strategy", "type") == "Recreate":
        return 0
    return pods_of(dig(w.props, "spec", "strategy", "rollingUpdate", "maxSurge"), replicas, "25%", True)


def _on_demand(values: set[str] | None) -> bool:
    """On-demand capacity, possibly from a reservation: {on-demand} or {on-demand, reserved}."""
    return values in ({"on-demand"}, {"on-demand", "reserved"})


def _largest_gpus(pool: Any) -> tuple[int, str] | None:
    types = launchable(dig(pool.props, "spec", "template", "spec", "requirements") or ())
    if not types:
        return None
    name = max(types, key=lambda t: INSTANCE_TYPES[t].gpus)
    return INSTANCE_TYPES[name].gpus, name


def on_demand_headroom(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    # On-demand pools, also those that take capacity reservations (reserved next to on-demand).
    pools = [p for p in _gpu_pools(resources) if _on_demand(_pool_provides(p).get(CAPACITY_TYPE))]
    scalers = _scalers_of(resources)
    groups: dict[frozenset[str], list[tuple[Workload, int, int]]] = {}
    for w in workloads(resources):
        if not w.gpus_per_pod or not _on_demand(required_values(w.spec, CAPACITY_TYPE)):
            continue
        names = frozenset(_name(p.props) for p in pools_for(w, pools))
        if names:
            replicas = _max_replicas(w, scalers.get((w.namespace, w.kind, w.name), []))
            groups.setdefault(names, []).append((w, replicas * w.gpus_per_pod, surge_pods(w, replicas) * w.gpus_per_pod))
    by_name = {_name(p.props): p for p in pools}
    for names in sorted(groups, key=sorted):
        members = [m for other, ms in groups.items() if other <= names for m in ms]
        baseline, surge = sum(m[1] for m in members), sum(m[2] for m in members)
        largest = [g for n in names if (g := _largest_gpus(by_name[n]))]
        replacement, node = max(largest) if largest else (max(m[0].gpus_per_pod for m in members), "one pod's node")
        limit = sum(int(quantity(dig(by_name[n].props, "spec", "limits", "nvidia.com/gpu") or 0)) for n in names)
        if limit < baseline + surge + replacement:
            first = by_name[sorted(names)[0]]
            yield first.urn, (f"on-demand NodePools {', '.join(sorted(names))} limit nvidia.com/gpu to {limit}; the on-demand "
                              f"workloads that land there ({', '.join(sorted(m[0].name for m in members))}) need {baseline} "
                              f"(replicas) + {surge} (rollout surge) + {replacement} (one replacement node, {node}) = "
                              f"{baseline + surge + replacement}: a rollout or a drift replacement stalls at the limit.")


# --------------------------------------------------------------------------- Value triggers

# One PromQL label matcher: name, operator, quoted value.
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def _matches(op: str, pattern: str, value: str) -> bool:
    """A PromQL matcher against a label value (regexes are anchored at both ends)."""
    hit = re.fullmatch(pattern, value) is not None if op in ("=~", "!~") else pattern == value
    return hit if op in ("=", "=~") else not hit


def _prom_label(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", key)


def _selects(query: str, w: Workload, services: Sequence[Any]) -> bool | None:
    """Whether the query's matchers admit the workload's pods; None when a matcher names a
    Service this stack does not create (nothing to judge by)."""
    sample_pod = f"{w.name}-0" if w.kind == "StatefulSet" else f"{w.name}-6d4cf56db6-x7k2p"
    labels = {_prom_label(str(k)): str(v) for k, v in w.pod_labels.items()}
    for label, op, value in MATCHER.findall(query):
        if label == "pod":
            ok = _matches(op, value, sample_pod)
        elif label == "namespace":
            ok = _matches(op, value, w.namespace)
        elif label in ("service", "job"):
            named = [s for s in services if _ns(s.props) == w.namespace and _matches(op, value, _name(s.props))]
            if not named and op in ("=", "=~"):
                return None
            ok = any(selector_matches({"matchLabels": dig(s.props, "spec", "selector") or {}}, w.pod_labels) for s in named)
        elif label in labels:
            ok = _matches(op, value, labels[label])
        else:
            continue  # a label we cannot see from here (container, endpoint...): no narrowing
        if not ok:
            return False
    return True


def value_trigger_own_pods(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    all_workloads = [w for w in workloads(resources) if w.kind in ("Deployment", "StatefulSet")]
    index = _index(all_workloads)
    services = _by_type(resources, SERVICE)
    for so in _by_type(resources, SCALED_OBJECT):
        target = index.get(_target(so))
        if target is None:
            continue
        for t in dig(so.props, "spec", "triggers") or ():
            if t.get("type") != "prometheus" or t.get("metricType") != "Value":
                continue
            query = str(dig(t, "metadata", "query") or "")
            # Workloads that could emit the series: vLLM pods for vllm: metrics, else any.
            alike = [w for w in all_workloads if w is not target and (_is_vllm(w) or "vllm:" not in query)]
            others = [w.name for w in alike if _selects(query, w, services)]
            if others:
                yield so.urn, (f"{_name(so.props)}: Value trigger {t.get('name', '?')} reads {query!r}, which also covers the "
                               f"pods of {', '.join(sorted(others))}, not only {target.name}'s. The HPA multiplies a Value "
                               f"metric by {target.name}'s ready pods only; a signal shared with other pods does not fall as "
                               f"{target.name} scales out, so it keeps scaling (the feedback pattern).")


# --------------------------------------------------------------------------- system nodes


@dataclass(frozen=True)
class ChartPods:
    """Where a chart's values put one component's pods: replicas, resources, placement."""

    component: str
    replicas: tuple[str, ...] | None  # None: one pod (or a DaemonSet, not counted)
    default_replicas: int
    resources: tuple[str, ...]
    node_selector: tuple[str, ...]
    tolerations: tuple[str, ...]


def _spec_pods(prefix: tuple[str, ...], component: str, replicas_key: str = "replicas") -> ChartPods:
    return ChartPods(component, (*prefix, replicas_key), 1, (*prefix, "resources"), (*prefix, "nodeSelector"),
                     (*prefix, "tolerations"))


# The charts the platform installs on system nodes, at the versions in components/versions.py.
CHART_PODS: dict[str, tuple[ChartPods, ...]] = {
    "karpenter": (ChartPods("controller", ("replicas",), 2, ("controller", "resources"), ("nodeSelector",), ("tolerations",)),),
    "keda": tuple(ChartPods(c, (c, "replicaCount"), 1, ("resources", r), ("nodeSelector",), ("tolerations",))
                  for c, r in (("operator", "operator"), ("metricsServer", "metricServer"), ("webhooks", "webhooks"))),
    "kube-prometheus-stack": (
        _spec_pods(("prometheus", "prometheusSpec"), "prometheus"),
        _spec_pods(("alertmanager", "alertmanagerSpec"), "alertmanager"),
        _spec_pods(("prometheusOperator",), "prometheus-operator"),
        _spec_pods(("grafana",), "grafana"),
        _spec_pods(("kube-state-metrics",), "kube-state-metrics"),
    ),
    "prometheus-adapter": (ChartPods("adapter", ("replicas",), 1, ("resources",), ("nodeSelector",), ("tolerations",)),),
    "gpu-operator": (ChartPods("operator", None, 1, ("operator", "resources"), ("operator", "nodeSelector"), ("operator", "tolerations")),),
}


def _pinned_to_system(node_selector: Mapping[str, Any] | None, tolerations: Sequence[Any] | None, spec: Mapping[str, Any] | None = None) -> bool:
    if (node_selector or {}).get(SYSTEM_POOL[0]) == SYSTEM_POOL[1]:
        return True
    if spec is not None and required_values(spec, SYSTEM_POOL[0]) == {SYSTEM_POOL[1]}:
        return True
    return any(t.get("key") == SYSTEM_TAINT for t in tolerations or ())


def _tolerates_system(tolerations: Sequence[Any] | None) -> bool:
    return any(t.get("key") == SYSTEM_TAINT or (not t.get("key") and t.get("operator") == "Exists") for t in tolerations or ())


@dataclass(frozen=True)
class Demand:
    what: str
    pods: int  # pods in total (per node for DaemonSets)
    cpu: float
    memory_gib: float
    per_node: bool = False


def _workload_demand(resources: Sequence[Any]) -> Iterator[Demand]:
    for w in workloads(resources):
        req = pod_requests(w.spec)
        if w.kind == "DaemonSet":
            if _tolerates_system(w.spec.get("tolerations")) and required_values(w.spec, SYSTEM_POOL[0]) in (None, {SYSTEM_POOL[1]}):
                yield Demand(f"DaemonSet {w.name}", 1, req["cpu"], req["memory"], per_node=True)
        elif w.kind in ("Deployment", "StatefulSet", "ReplicaSet") and _pinned_to_system(
                w.spec.get("nodeSelector"), w.spec.get("tolerations"), w.spec):
            replicas = dig(w.props, "spec", "replicas")
            yield Demand(f"{w.kind} {w.name}", 1 if replicas is None else int(replicas), req["cpu"], req["memory"])


def _chart_demand(resources: Sequence[Any]) -> Iterator[Demand]:
    for release in _by_type(resources, HELM_RELEASE):
        values = _values(release)
        for pods in CHART_PODS.get(_chart(release), ()):
            req = {**(dig(values, *pods.resources, "limits") or {}), **(dig(values, *pods.resources, "requests") or {})}
            if not req or not _pinned_to_system(dig(values, *pods.node_selector), dig(values, *pods.tolerations)):
                continue
            count = dig(values, *pods.replicas) if pods.replicas else None
            yield Demand(f"{_chart(release)} {pods.component}", int(count if count is not None else pods.default_replicas),
                         quantity(req.get("cpu", 0)), quantity(req.get("memory", 0)) / 2**30)


def system_nodes_fit(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    groups = [g for t in NODE_GROUPS for g in _by_type(resources, t)
              if (g.props.get("labels") or {}).get(SYSTEM_POOL[0]) == SYSTEM_POOL[1]
              or any(t.get("key") == SYSTEM_TAINT for t in g.props.get("taints") or ())]
    demand = [*_workload_demand(resources), *_chart_demand(resources)]
    for g in groups:
        known = [GENERAL_PURPOSE[t] for t in g.props.get("instanceTypes") or () if t in GENERAL_PURPOSE]
        nodes = int(dig(g.props, "scalingConfig", "minSize") or 0)
        if not known or nodes <= 0:
            continue
        node = min(known, key=lambda t: (t.vcpu, t.memory_gib))  # the node group may launch any listed type
        cpu, memory = allocatable(node.vcpu, node.memory_gib)
        need_cpu = sum(d.cpu * (nodes if d.per_node else d.pods) for d in demand)
        need_memory = sum(d.memory_gib * (nodes if d.per_node else d.pods) for d in demand)
        if need_cpu > nodes * cpu or need_memory > nodes * memory:
            top = sorted(demand, key=lambda d: (-d.cpu * d.pods, d.what))[:4]
            shown = ", ".join(f"{d.what} {d.pods} x {d.cpu:g} CPU/{d.memory_gib:g} GiB" for d in top)
            yield g.urn, (f"system node group {g.name} (minSize {nodes} x {node.name}: {nodes * cpu:g} CPU, "
                          f"{nodes * memory:.1f} GiB allocatable) cannot hold the requests pinned to it: {need_cpu:g} CPU, "
                          f"{need_memory:.1f} GiB ({shown}...); pods stay Pending until someone scales the group.")
        too_big = [d.what for d in demand if d.cpu > cpu or d.memory_gib > memory]
        if too_big:
            yield g.urn, f"system node group {g.name}: one pod of {', '.join(too_big)} is larger than a {node.name} node."


RULES = [
    stack_rule("capacity-on-demand-headroom", AREA,
        "On-demand GPU NodePools' nvidia.com/gpu limits cover the on-demand workloads that land there: replicas x GPUs, "
        "plus their rollout surge, plus one replacement node of the largest instance type the pool may launch.",
        "Karpenter stops provisioning at the limit; a rolling update's surge pod and drift or consolidation's "
        "pre-spun replacement node both need room above the baseline, or they wait forever.",
        "raise limits[nvidia.com/gpu] on the on-demand pool to baseline + surge + the largest node's GPUs.",
        on_demand_headroom),
    stack_rule("scaling-value-trigger-own-pods", "Scaling",
        "A KEDA prometheus trigger with metricType Value selects only its scale target's pods. Judged from the query "
        "text: pod=~ regexes are matched against pod names of each Deployment/StatefulSet of the stack, service/job "
        "matchers through the stack's Services' selectors, namespace and pod-label matchers directly; a query with no "
        "narrowing matcher covers every workload that emits the metric (vLLM pods for vllm: metrics).",
        "For Value metrics the HPA computes ceil(target's ready pods x value / threshold); a value that also covers "
        "other pods (a baseline behind the same Service) does not fall as the target scales out, so it runs to max.",
        "narrow the query to the target's pods (a pod=~\"<target>-.*\" or a label only they carry), or use "
        "AverageValue on a sum.", value_trigger_own_pods),
    stack_rule("system-nodes-fit", AREA,
        "The requests pinned to the system node group (nodeSelector platform.gpu/pool: system or a CriticalAddonsOnly "
        "toleration; known charts' pods where values set resources; DaemonSets per node) fit in minSize x the "
        "allocatable of its smallest instance type.",
        "The system node group does not autoscale on demand; controllers that do not fit stay Pending, and "
        "Karpenter or KEDA among them means no GPU capacity and no scaling.",
        "raise the node group's minSize or instance type, or lower the controllers' requests.", system_nodes_fit),
]
