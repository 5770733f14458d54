"""The deploy rehearsal: order, critical path, timeouts against expected readiness, rollouts."""

from __future__ import annotations

import json

import pytest

from synth.rehearsal import markdown, rehearse
from tests.conftest import STACKS


def res(type_: str, name: str, depends_on=(), parent=None, custom=True, inputs=None, options=None) -> dict:
    return {"type": type_, "name": name, "urn": f"urn:{name}", "parent": parent and f"urn:{parent}", "custom": custom,
            "provider": None, "depends_on": [f"urn:{d}" for d in depends_on], "inputs": inputs or {}, "options": options or {}}


def deployment(name: str, replicas: int, ready_within: int, **options) -> dict:
    return res("kubernetes:apps/v1:Deployment", name, ["ns"], options=options, inputs={
        "metadata": {"name": name, "namespace": "inference", "annotations": {"platform.gpu/ready-within-seconds": str(ready_within)}},
        "spec": {"replicas": replicas, "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                 "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}})


# Registered out of dependency order on purpose: the rehearsal orders by the graph.
TINY = [
    res("my:index:Component", "app", custom=False),
    deployment("slow", 3, 700, customTimeouts={"update": "30m"}),
    deployment("quick", 1, 120),
    res("kubernetes:core/v1:Namespace", "ns", ["cluster"], parent="app"),
    res("aws:ec2/natGateway:NatGateway", "nat"),
    res("eks:index:Cluster", "cluster", ["nat"]),
]


def test_tiny_graph_order_critical_path_and_flags():
    data = rehearse(TINY)
    assert [o["name"] for o in data["order"]] == ["app", "nat", "cluster", "ns", "slow", "quick"]
    assert [(p["name"], p["start_seconds"], p["seconds"]) for p in data["critical_path"]] == [
        ("nat", 0, 120), ("cluster", 120, 600), ("ns", 720, 2), ("slow", 722, 700)]
    assert data["first_deploy_seconds"] == 1422
    # slow: create 700 s > the 600 s default; rollout 3 steps x 700 s = 2100 s > 30 min.
    assert data["flags"] == [
        "create of slow (kubernetes:apps/v1:Deployment): timeout 600s (default) < expected 700s",
        "rollout of inference/slow: update timeout 1800s (customTimeouts) < expected 3 step(s) x 700s = 2100s",
    ]
    assert [(r["workload"], r["steps"], r["seconds"]) for r in data["rollouts"]] == [("inference/slow", 3, 2100), ("inference/quick", 1, 120)]


def test_rehearsal_is_deterministic_and_renders():
    assert json.dumps(rehearse(TINY), sort_keys=True) == json.dumps(rehearse(list(TINY)), sort_keys=True)
    text = markdown(rehearse(TINY), "tiny")
    assert "Estimated wall time of a first deploy (critical path): **23.7 min** (1422 s)" in text
    assert "| slow | `kubernetes:apps/v1:Deployment` | 700 s | 600 s | default | **timeout < expected** |" in text


def test_gpu_pods_wait_for_karpenter_on_the_await_clock():
    karpenter = res("kubernetes:helm.sh/v3:Release", "karpenter", ["cluster"], inputs={"chart": "oci://public.ecr.aws/karpenter/karpenter"})
    nodes = res("eks:index:ManagedNodeGroup", "system", ["cluster"])
    data = rehearse([res("eks:index:Cluster", "cluster"), nodes, karpenter, deployment("gpu", 1, 300)])
    gpu = next(o for o in data["order"] if o["name"] == "gpu")
    # Nothing orders it after the cluster here (its namespace is not in the list), so it is created at 0 s; its
    # pods are ready only once Karpenter is: cluster 600 s + system nodes 240 s + karpenter 120 s + 300 s.
    assert (gpu["start_seconds"], gpu["seconds"], gpu["finish_seconds"]) == (0, 1260, 1260)
    assert [p["name"] for p in data["critical_path"]] == ["cluster", "system", "karpenter", "gpu"]


@pytest.mark.parametrize("stack", STACKS)
def test_synth_writes_the_rehearsal(synthesized, stack):
    data = json.loads((synthesized[stack] / "rehearsal.json").read_text())
    assert data["first_deploy_seconds"] > 600  # at least the EKS control plane
    assert data["critical_path"] and data["order"]
    assert (synthesized[stack] / "rehearsal.md").read_text().startswith(f"# Rehearsal of `pulumi up` for stack `{stack}`")
