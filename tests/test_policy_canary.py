"""A canary next to a baseline and a burst, as the capacity rule counts it.

A canary Deployment (``platform.gpu/role: canary``) runs extra GPU pods on on-demand nodes
beside the baseline: the on-demand pool's limit must hold baseline + canary, and the rule
counts both.
"""

from __future__ import annotations

import json
import shutil

import yaml

from tests.conftest import REPO, run_synth
from tests.test_policies import DEPLOYMENT, NODEPOOL, POD, SO, deployment, nodepool, scaled_object, violations

ON_DEMAND_ONLY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "platform.gpu/tier", "operator": "In", "values": ["l40s"]},
                          {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]}]}}}


def _serving(on_demand_limit: str) -> list[tuple[str, dict]]:
    """chat: 2 baseline replicas and 1 canary on on-demand, a burst of up to 4 on spot (1 GPU each)."""
    def role(name: str, r: str, replicas: int, **changes) -> dict:
        d = deployment(name, replicas=replicas, **{f"{POD}__nodeSelector": None, **changes})
        d["spec"]["template"]["metadata"]["labels"]["platform.gpu/role"] = r
        return d

    spot = nodepool("l40s-spot", limit="4")
    spot["spec"]["template"]["spec"]["requirements"][0]["values"] = ["spot"]
    return [
        (DEPLOYMENT, role("chat-baseline", "baseline", 2, **{f"{POD}__affinity": ON_DEMAND_ONLY})),
        (DEPLOYMENT, role("chat-canary", "canary", 1, **{f"{POD}__affinity": ON_DEMAND_ONLY})),
        (DEPLOYMENT, role("chat-burst", "burst", 0)),
        (SO, scaled_object("chat-burst", maxReplicaCount=4)),
        (NODEPOOL, nodepool("l40s-on-demand", limit=on_demand_limit)),
        (NODEPOOL, spot),
    ]


def test_the_on_demand_limit_must_hold_baseline_and_canary():
    assert violations("capacity-covers-max-scale", _serving("3")) == []
    found = violations("capacity-covers-max-scale", _serving("2"))
    assert [m.split(":")[0] for m in found] == ["chat-baseline", "chat-canary", "chat-burst"]
    # On-demand: 2 baseline + 1 canary; the burst may also use spot: 2 + 1 + 4 against 2 + 4.
    assert "on NodePools l40s-on-demand need 3 GPUs but those pools are limited to 2" in found[1]
    assert "on NodePools l40s-on-demand, l40s-spot need 7 GPUs but those pools are limited to 6" in found[2]


def _synth_with_canary(tmp_path, stack: str, service: int, canary: dict) -> dict:
    program = tmp_path / "program"
    (program / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "__main__.py", program)
    shutil.copy(REPO / "Pulumi.yaml", program)
    doc = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    doc["config"]["gpu-platform:modelServices"][service]["canary"] = canary
    (program / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc))
    proc = run_synth(stack, "--program", str(program), "--out", str(tmp_path / "out"))
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads((tmp_path / "out" / "policy-report.json").read_text())


def test_a_valid_canary_passes_the_capacity_rule(tmp_path):
    # prod reason-70b: 2 baseline replicas of 4 GPUs, burst to 4 on on-demand (h100 has no spot),
    # no headroom (terms in capacity.md). One canary replica next to 2 is a third of the capacity,
    # above the default 25 % cap, so the cap is raised; its 4 GPUs are counted in the computed limit.
    report = _synth_with_canary(tmp_path, "prod", 1, {"replicas": 1, "maxSharePercent": 34})
    assert [v for v in report["violations"] if v["policy"] == "capacity-covers-max-scale"] == []
