"""Read pod templates and containers out of any workload's props, as CrossGuard passes them.

Props arrive as ``Mapping``/``Sequence`` proxies (never ``dict``/``list``), keyed by
Pulumi wire names (camelCase), so every access here goes through those ABCs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

GPU = "nvidia.com/gpu"

# resource type -> path from the props to the pod spec
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:keda.sh/v1alpha1:ScaledJob": ("spec", "jobTargetRef", "template", "spec"),
}


def dig(obj: Any, *path: str | int) -> Any:
    """Follow keys and indexes; None as soon as one is missing."""
    for key in path:
        if isinstance(key, int):
            if not isinstance(obj, Sequence) or isinstance(obj, str) or key >= len(obj):
                return None
            obj = obj[key]
        else:
            if not isinstance(obj, Mapping):
                return None
            obj = obj.get(key)
        if obj is None:
            return None
    return obj


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    path = POD_SPEC_PATHS.get(resource_type)
    spec = dig(props, *path) if path else None
    return spec if isinstance(spec, Mapping) else None


def containers(spec: Mapping[str, Any], *, init: bool = False) -> Iterator[Mapping[str, Any]]:
    keys = ("initContainers", "containers") if init else ("containers",)
    for key in keys:
        for c in spec.get(key) or ():
            if isinstance(c, Mapping):
                yield c


def gpu_quantity(container: Mapping[str, Any], which: str) -> str | None:
    value = dig(container, "resources", which, GPU)
    return None if value is None else str(value)


def is_gpu_container(container: Mapping[str, Any]) -> bool:
    return gpu_quantity(container, "limits") is not None or gpu_quantity(container, "requests") is not None


def gpu_containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in containers(spec) if is_gpu_container(c)]


# A pause container (registry.k8s.io/pause, also through a pull-through cache).
PAUSE_IMAGE = re.compile(r"(^|/)pause:")


def holds_gpus_only(spec: Mapping[str, Any]) -> bool:
    """A placeholder pod: every container is a pause image and one holds a GPU. It serves nothing,
    so the serving rules (probes, drain, rollout) do not apply to it."""
    cs = list(containers(spec))
    return bool(cs) and all(PAUSE_IMAGE.search(str(c.get("image") or "")) for c in cs) and bool(gpu_containers(spec))


def workload_name(props: Mapping[str, Any]) -> str:
    return str(dig(props, "metadata", "name") or "?")


CAPACITY_TYPE = "karpenter.sh/capacity-type"
ZONE = "topology.kubernetes.io/zone"


def arg_value(container: Mapping[str, Any], flag: str) -> str | None:
    """The value of ``--flag N`` or ``--flag=N`` in a container's command or args."""
    words = [str(w) for w in (container.get("command") or ())] + [str(w) for w in (container.get("args") or ())]
    for i, w in enumerate(words):
        if w == flag and i + 1 < len(words):
            return words[i + 1]
        if w.startswith(flag + "="):
            return w.split("=", 1)[1]
    return None


def prestop_seconds(container: Mapping[str, Any]) -> int | None:
    """Seconds a preStop hook waits: a sleep action, or an exec of ``sleep N``."""
    hook = dig(container, "lifecycle", "preStop")
    if hook is None:
        return None
    if dig(hook, "sleep", "seconds") is not None:
        return int(dig(hook, "sleep", "seconds"))
    command = [str(w) for w in (dig(hook, "exec", "command") or ())]
    for i, w in enumerate(command):
        if w.endswith("sleep") and i + 1 < len(command) and command[i + 1].isdigit():
            return int(command[i + 1])
        if "sleep " in w:
            tail = w.split("sleep ", 1)[1].split()[0]
            if tail.isdigit():
                return int(tail)
    return 0


def probe_budget_seconds(probe: Mapping[str, Any] | None) -> int:
    if not probe:
        return 0
    return int(probe.get("initialDelaySeconds", 0)) + int(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))


def _terms(spec: Mapping[str, Any]) -> list[list[Mapping[str, Any]]]:
    terms = dig(spec, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms") or ()
    return [list(t.get("matchExpressions") or ()) for t in terms]


def required_values(spec: Mapping[str, Any], key: str) -> set[str] | None:
    """Values a pod requires for a node label (nodeSelector or required affinity); None: unconstrained."""
    selector = spec.get("nodeSelector") or {}
    if key in selector:
        return {str(selector[key])}
    found: set[str] | None = None
    for term in _terms(spec):
        for e in term:
            if e.get("key") == key and e.get("operator") == "In":
                found = (found or set()) | {str(v) for v in e.get("values") or ()}
    return found


def may_run_on_spot(spec: Mapping[str, Any]) -> bool:
    allowed = required_values(spec, CAPACITY_TYPE)
    return allowed is None or "spot" in allowed


def spreads_across_zones(spec: Mapping[str, Any]) -> bool:
    if any(c.get("topologyKey") == ZONE for c in spec.get("topologySpreadConstraints") or ()):
        return True
    anti = dig(spec, "affinity", "podAntiAffinity") or {}
    terms = list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or ()) + [
        t.get("podAffinityTerm") or {} for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]
    return any(t.get("topologyKey") == ZONE for t in terms)


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """A label selector (matchLabels / matchExpressions In, Exists) against labels."""
    if not selector:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or ():
        key, op, values = e.get("key"), e.get("operator"), set(e.get("values") or ())
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def quantity(value: Any) -> float:
    """A Kubernetes resource quantity ("500m", "16", "161Gi", "2G", "1e3") as a number of units."""
    text = str(value).strip()
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    suffix = text[-1] if text and text[-1] in _DECIMAL and not text[-1].isdigit() else ""
    return float(text[: len(text) - len(suffix)]) * _DECIMAL[suffix]


def pod_requests(spec: Mapping[str, Any]) -> dict[str, float]:
    """What the scheduler reserves for one pod: cpu (cores), memory (GiB) and GPUs, the
    larger of the containers' sum and any single init container (Kubernetes' effective request)."""
    def of(c: Mapping[str, Any]) -> dict[str, float]:
        req = {**(dig(c, "resources", "limits") or {}), **(dig(c, "resources", "requests") or {})}
        return {"cpu": quantity(req["cpu"]) if "cpu" in req else 0.0,
                "memory": quantity(req["memory"]) / 2**30 if "memory" in req else 0.0,
                "gpu": quantity(req[GPU]) if GPU in req else 0.0}

    total = {"cpu": 0.0, "memory": 0.0, "gpu": 0.0}
    for c in containers(spec):
        for k, v in of(c).items():
            total[k] += v
    for c in spec.get("initContainers") or ():
        for k, v in of(c).items():
            total[k] = max(total[k], v)
    return total


def strings(obj: Any) -> Iterable[str]:
    """Every string anywhere in a resource's props (queries hide in values, annotations, data)."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from strings(v)
    elif isinstance(obj, Sequence):
        for v in obj:
            yield from strings(v)
