"""Which GPU instance types a Karpenter NodePool can launch, from its requirements.

Karpenter launches an instance type for a NodePool only if the type's labels satisfy every
entry of ``spec.template.spec.requirements`` (node-selector requirements: In, NotIn, Exists,
DoesNotExist, Gt, Lt). A pool can select GPUs in many ways: by instance type, family,
category, generation, size, GPU name, count or manufacturer. Rather than list the ways, this
module evaluates the requirements against the labels Karpenter gives each GPU instance type
of the catalog (``platform_facts.catalog``): a pool that can launch any of them is a GPU pool.

Keys that are not instance-type labels (``karpenter.sh/capacity-type``, zones, labels the
pool puts on its nodes) do not narrow the instance types, so they are ignored here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from platform_facts.catalog import INSTANCE_TYPES, InstanceType

K8S_AWS = "karpenter.k8s.aws"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
GPU_NAME = f"{K8S_AWS}/instance-gpu-name"
GPU_COUNT = f"{K8S_AWS}/instance-gpu-count"
GPU_MANUFACTURER = f"{K8S_AWS}/instance-gpu-manufacturer"
GPU_MEMORY = f"{K8S_AWS}/instance-gpu-memory"
# Labels that only GPU instance types carry (Karpenter sets them DoesNotExist otherwise).
GPU_KEYS = (GPU_NAME, GPU_COUNT, GPU_MANUFACTURER, GPU_MEMORY)
# Operators that require the label to exist on the node.
_IMPLY_PRESENT = ("In", "Exists", "Gt", "Lt")

# family = category + generation + attributes (g6e: g, 6, e; p4de: p, 4, de).
_FAMILY = re.compile(r"^([a-z]+?)(\d+)([a-z-]*)$")


def instance_labels(it: InstanceType) -> dict[str, str]:
    """The well-known labels Karpenter (AWS provider) puts on a node of this instance type."""
    family, size = it.name.split(".", 1)
    match = _FAMILY.match(family)
    category, generation = (match.group(1), match.group(2)) if match else (family, "")
    return {
        INSTANCE_TYPE: it.name,
        "karpenter.k8s.aws/instance-family": family,
        "karpenter.k8s.aws/instance-category": category,
        "karpenter.k8s.aws/instance-generation": generation,
        "karpenter.k8s.aws/instance-size": size,
        "karpenter.k8s.aws/instance-cpu": str(it.vcpu),
        "karpenter.k8s.aws/instance-memory": str(it.memory_gib * 1024),
        "karpenter.k8s.aws/instance-local-nvme": str(it.nvme_gb),
        GPU_NAME: it.gpu,
        GPU_COUNT: str(it.gpus),
        GPU_MANUFACTURER: "nvidia",
        GPU_MEMORY: str(it.gpu_memory_mib),
        # Every GPU type of the catalog is x86 (g5g, the Graviton GPU family, is not in it).
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
    }


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def satisfies(labels: Mapping[str, str], requirement: Mapping[str, Any]) -> bool:
    """One node-selector requirement against an instance type's labels.

    A key the instance type does not describe is not an instance-type constraint: True.
    """
    key, op = str(requirement.get("key")), str(requirement.get("operator"))
    if key not in labels:
        return True
    value = labels[key]
    values = [str(v) for v in requirement.get("values") or ()]
    if op == "In":
        return value in values
    if op == "NotIn":
        return value not in values
    if op == "Exists":
        return True
    if op == "DoesNotExist":
        return False
    if op in ("Gt", "Lt"):
        have, bound = _int(value), _int(values[0]) if values else None
        if have is None or bound is None:
            return False
        return have > bound if op == "Gt" else have < bound
    return True  # an operator the CRD rejects anyway: do not narrow


def launchable(requirements: Iterable[Mapping[str, Any]],
               catalog: Mapping[str, InstanceType] = INSTANCE_TYPES) -> list[str]:
    """The catalog's GPU instance types that satisfy every requirement, in catalog order."""
    reqs = list(requirements)
    return [name for name, it in catalog.items() if all(satisfies(instance_labels(it), r) for r in reqs)]


def requires_gpu(requirements: Iterable[Mapping[str, Any]]) -> bool:
    """A requirement that only GPU instances meet, whatever the type (in the catalog or not):
    an In, Exists, Gt or Lt on a GPU label (``instance-gpu-count Gt 0``, ``instance-gpu-name In [...]``)."""
    return any(str(r.get("key")) in GPU_KEYS and str(r.get("operator")) in _IMPLY_PRESENT for r in requirements)


def can_launch_gpus(requirements: Iterable[Mapping[str, Any]]) -> bool:
    """True when the pool can launch a GPU instance: a catalog GPU type fits, or a GPU label is required."""
    reqs = list(requirements)
    return requires_gpu(reqs) or bool(launchable(reqs))
