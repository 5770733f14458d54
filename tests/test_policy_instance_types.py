"""Which GPU instance types a NodePool's requirements admit (policies/instance_types.py).

Expected lists are written out from the catalog (platform_facts.catalog, 21 GPU types).
"""

from __future__ import annotations

import pytest

from platform_facts.catalog import INSTANCE_TYPES
from policies.instance_types import can_launch_gpus, instance_labels, launchable, requires_gpu, satisfies
from policies.offline import Resource, evaluate
from policies.rules import POLICIES

K = "karpenter.k8s.aws/"


def req(key: str, op: str, *values: str) -> dict:
    r = {"key": key if "/" in key else K + key, "operator": op}
    if values:
        r["values"] = list(values)
    return r


def test_labels_of_an_instance_type_as_karpenter_names_them():
    labels = instance_labels(INSTANCE_TYPES["p5en.48xlarge"])
    assert {k: labels[k] for k in (K + "instance-family", K + "instance-category", K + "instance-generation",
                                   K + "instance-size", K + "instance-gpu-name", K + "instance-gpu-count",
                                   K + "instance-gpu-manufacturer", "node.kubernetes.io/instance-type")} == {
        K + "instance-family": "p5en", K + "instance-category": "p", K + "instance-generation": "5",
        K + "instance-size": "48xlarge", K + "instance-gpu-name": "h200", K + "instance-gpu-count": "8",
        K + "instance-gpu-manufacturer": "nvidia", "node.kubernetes.io/instance-type": "p5en.48xlarge"}
    g6e = instance_labels(INSTANCE_TYPES["g6e.xlarge"])
    assert (g6e[K + "instance-category"], g6e[K + "instance-generation"], g6e[K + "instance-gpu-memory"]) == ("g", "6", "45776")


G6E = ["g6e.xlarge", "g6e.2xlarge", "g6e.4xlarge", "g6e.12xlarge", "g6e.24xlarge", "g6e.48xlarge"]
EIGHT_GPUS = ["g5.48xlarge", "g6.48xlarge", "g6e.48xlarge", "p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5en.48xlarge"]

CASES = [
    ("family", [req("instance-family", "In", "g6e")], G6E),
    ("category", [req("instance-category", "In", "g", "p")], list(INSTANCE_TYPES)),
    ("cpu categories", [req("instance-category", "In", "c", "m", "r")], []),
    ("gpu count Gt", [req("instance-gpu-count", "Gt", "4")], EIGHT_GPUS),
    ("gpu name", [req("instance-gpu-name", "In", "h100")], ["p5.4xlarge", "p5.48xlarge"]),
    ("generation Lt", [req("instance-generation", "Lt", "5")], ["p4d.24xlarge", "p4de.24xlarge"]),
    ("NotIn and size", [req("instance-family", "NotIn", "g5", "g6", "g6e"), req("instance-size", "In", "48xlarge")],
     ["p5.48xlarge", "p5en.48xlarge"]),
    ("explicit types", [req("node.kubernetes.io/instance-type", "In", "g6.xlarge", "m7i.large")], ["g6.xlarge"]),
    ("types outside the catalog", [req("node.kubernetes.io/instance-type", "In", "g4dn.xlarge")], []),
    ("gpu count DoesNotExist", [req("instance-gpu-count", "DoesNotExist")], []),
    ("arm64", [req("kubernetes.io/arch", "In", "arm64")], []),
    # NVMe over 7000 GB and under ~976 GiB of memory (g6e.48xlarge has 1536 GiB, p4d 1152).
    ("local nvme and memory", [req("instance-local-nvme", "Gt", "7000"), req("instance-memory", "Lt", "1000000")],
     ["g5.48xlarge", "g6.48xlarge"]),
    # Not instance-type labels: they do not narrow, so a pool with only these can launch any GPU.
    ("capacity type and node labels", [req("karpenter.sh/capacity-type", "In", "spot"), req("platform.gpu/tier", "In", "x")],
     list(INSTANCE_TYPES)),
    ("no requirements", [], list(INSTANCE_TYPES)),
]


@pytest.mark.parametrize("requirements,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_launchable(requirements, expected):
    assert launchable(requirements) == expected


def test_gt_lt_on_a_non_integer_value_admits_nothing():
    labels = instance_labels(INSTANCE_TYPES["g6e.xlarge"])
    assert satisfies(labels, req("instance-family", "Gt", "1")) is False
    assert satisfies(labels, req("instance-gpu-count", "Gt", "one")) is False
    assert satisfies(labels, req("instance-gpu-count", "Gt", "0")) is True


@pytest.mark.parametrize("requirements,expected", [
    ([req("instance-gpu-count", "Gt", "0")], True),
    ([req("instance-gpu-name", "In", "t4")], True),
    ([req("instance-gpu-manufacturer", "Exists")], True),
    ([req("instance-gpu-count", "DoesNotExist")], False),
    ([req("instance-gpu-name", "NotIn", "h100")], False),
    ([req("instance-family", "In", "g6e")], False),
])
def test_requires_gpu(requirements, expected):
    assert requires_gpu(requirements) is expected


def test_can_launch_gpus_outside_the_catalog_only_by_an_explicit_gpu_requirement():
    t4 = [req("instance-family", "In", "g4dn"), req("instance-gpu-name", "In", "t4")]
    assert launchable(t4) == [] and can_launch_gpus(t4) is True
    assert can_launch_gpus([req("instance-family", "In", "g4dn")]) is False
    assert can_launch_gpus([req("instance-category", "In", "c", "m", "r")]) is False


def _pool_violations(requirements: list[dict]) -> list[str]:
    pool = {"metadata": {"name": "p"}, "spec": {"template": {"spec": {"requirements": requirements}}}}
    policy = [p for p in POLICIES if p.name == "karpenter-gpu-nodepool"]
    report = evaluate(policy, [Resource("kubernetes:karpenter.sh/v1:NodePool", "urn:p", "p", pool, pool)])
    return [v["message"] for v in report["violations"]]


def test_a_cpu_pool_is_not_held_to_the_gpu_rules():
    assert _pool_violations([req("instance-category", "In", "c", "m", "r")]) == []
    assert _pool_violations([req("instance-gpu-count", "DoesNotExist")]) == []


def test_an_unrestricted_pool_is_a_gpu_pool():
    # Karpenter picks any instance type for a pool without instance requirements, GPU ones
    # included, so the GPU guards apply (one message per missing guard).
    found = _pool_violations([])
    assert len(found) == 5
    assert all("(a GPU pool: its requirements admit GPU instance types g5.xlarge, g5.2xlarge, g5.4xlarge and 18 more)"
               in m for m in found)
