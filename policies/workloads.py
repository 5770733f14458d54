"""Read pod templates and containers out of any workload's props, as CrossGuard passes them.

Props arrive as ``Mapping``/``Sequence`` proxies (never ``dict``/``list``), keyed by
Pulumi wire names (camelCase), so every access here goes through those ABCs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
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


def workload_name(props: Mapping[str, Any]) -> str:
    return str(dig(props, "metadata", "name") or "?")
