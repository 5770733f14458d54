"""A program written without our components makes the deploy mistakes; synth catches each one."""

from __future__ import annotations

import json

from tests.conftest import REPO, run_synth

NEW_RULES = {
    "storage-class-provisioned": "mandatory",
    "await-timeout-covers-rollout": "mandatory",
    "capacity-on-demand-headroom": "mandatory",
    "pod-identity-before-pods": "mandatory",
    "gpu-pod-schedulable": "mandatory",
    "scaling-value-trigger-own-pods": "mandatory",
    "system-nodes-fit": "mandatory",
    "s3-no-example-buckets": "advisory",
}


def test_deploy_mistakes_fire_every_deploy_rule(tmp_path):
    out = tmp_path / "out"
    proc = run_synth("dev", "--program", str(REPO / "tests" / "programs" / "deploy-mistakes"), "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "policy-report.json").read_text())
    fired = {(v["policy"], v["enforcement"]) for v in report["violations"]}
    assert set(NEW_RULES.items()) <= fired, sorted(set(NEW_RULES.items()) - fired)
    # Placeholders are mandatory only in a real deploy (realDeploy: true), which synth is not.
    assert "real-deploy-no-placeholders" not in {p for p, _ in fired}
