"""The synth contract: files, shapes, determinism, exit codes and secrets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, STACKS, run_synth

RESOURCE_KEYS = {"type", "name", "urn", "parent", "custom", "provider", "depends_on", "inputs", "options"}


@pytest.mark.parametrize("stack", STACKS)
def test_contract_files(synthesized, stack):
    out = synthesized[stack]
    resources = json.loads((out / "resources.json").read_text())
    assert isinstance(resources, list) and resources
    urns = {r["urn"] for r in resources}
    for r in resources:
        assert set(r) == RESOURCE_KEYS
        assert r["parent"] is None or r["parent"] in urns
        assert r["provider"] is None or r["provider"] in urns
        assert all(d in urns for d in r["depends_on"])
    report = json.loads((out / "policy-report.json").read_text())
    assert set(report) == {"policies_run", "violations"} and report["policies_run"] > 0
    assert (out / "helm").is_dir() and (out / "manifests").is_dir()


@pytest.mark.parametrize("stack", STACKS)
def test_stack_has_no_mandatory_violation(synthesized, stack):
    report = json.loads((synthesized[stack] / "policy-report.json").read_text())
    # Our stacks pass every mandatory rule; the only advisory findings are the example values a
    # real deploy must replace (exampleValues, documentation-range allow-lists). The shape of a violation is
    # checked on a program that has mandatory ones (test_mandatory_violation_exits_1_and_is_reported).
    assert [v for v in report["violations"] if v["enforcement"] == "mandatory"] == []
    assert {v["policy"] for v in report["violations"]} <= {"eks-endpoint-cidrs-not-documentation", "stack-example-values"}


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_are_complete_objects(synthesized, stack):
    files = sorted((synthesized[stack] / "manifests").glob("*.yaml"))
    for i, f in enumerate(files):
        assert f.name.startswith(f"{i:03d}-")
        obj = yaml.safe_load(f.read_text())
        assert obj["apiVersion"] and obj["kind"] and obj["metadata"]["name"]
        assert f.name == f"{i:03d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


@pytest.mark.parametrize("stack", STACKS)
def test_helm_releases_have_the_contract_keys(synthesized, stack):
    for f in (synthesized[stack] / "helm").glob("*.yaml"):
        rel = yaml.safe_load(f.read_text())
        assert set(rel) == {"name", "namespace", "chart", "version", "repository", "values"}
        assert f.stem == rel["name"] and rel["version"]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stack", STACKS)
def test_synth_is_byte_identical_across_runs(synthesized, tmp_path, stack):
    # Different hash seeds change set iteration order inside the SDK; the output must not move.
    for seed in ("1", "2", "3"):
        again = tmp_path / f"again-{seed}"
        proc = run_synth(stack, "--out", str(again), env={"PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
        assert _tree(again) == _tree(synthesized[stack])


def _program_copy(tmp_path: Path) -> Path:
    prog = tmp_path / "prog"
    (prog / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", prog)
    shutil.copy(REPO / "__main__.py", prog)
    return prog


def test_invalid_config_exits_2_with_one_readable_message(tmp_path):
    prog = _program_copy(tmp_path)
    text = (REPO / "stacks" / "Pulumi.dev.yaml").read_text().replace("maxReplicas: 2", "maxReplica: 2")
    (prog / "stacks" / "Pulumi.dev.yaml").write_text(text)
    proc = run_synth("dev", "--program", str(prog), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "modelServices[0].scaling.maxReplica: unknown key" in proc.stderr
    assert "did you mean maxReplicas?" in proc.stderr
    assert not (tmp_path / "out").exists(), "nothing is written for an invalid config"


def test_missing_stack_file_exits_2(tmp_path):
    proc = run_synth("qa", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "no such stack file" in proc.stderr and "dev, prod, staging" in proc.stderr


def test_mandatory_violation_exits_1_and_is_reported(tmp_path):
    out = tmp_path / "out"
    proc = run_synth("dev", "--program", str(REPO / "tests" / "programs" / "bad-gpu"), "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "policy-report.json").read_text())
    assert set(report) == {"policies_run", "violations"} and report["policies_run"] > 0
    violations = report["violations"]
    # The documented shape, exactly: four string fields, nothing else.
    for v in violations:
        assert set(v) == {"policy", "enforcement", "urn", "message"}, v
        assert all(isinstance(v[k], str) and v[k] for k in v), v
    # One raw Deployment, and every rule it breaks, by name (the program's docstring lists why).
    assert {v["urn"] for v in violations} == {"urn:pulumi:dev::bad-gpu::kubernetes:apps/v1:Deployment::llm"}
    assert sorted(v["policy"] for v in violations) == [
        "gpu-cpu-memory-requests", "gpu-prestop-hook", "gpu-readiness-probe", "gpu-requests-equal-limits",
        "gpu-rolling-update-keeps-capacity", "gpu-startup-probe", "gpu-taint-toleration", "gpu-termination-grace",
        "image-tag-pinned", "vllm-workload-scraped",
    ]
    assert {v["enforcement"] for v in violations} == {"mandatory"}
    # Each message names the object and says how to fix it.
    for v in violations:
        assert v["message"].startswith("llm") and " Fix: " in v["message"], v
    by_policy = {v["policy"]: v["message"] for v in violations}
    assert "requests 1 and limits 2 differ" in by_policy["gpu-requests-equal-limits"]
    assert "'vllm/vllm-openai:latest'" in by_policy["image-tag-pinned"]
    # The third-party Deployment is written as a manifest too.
    assert (out / "manifests" / "000-deployment-llm.yaml").is_file()


def test_secure_values_never_reach_the_output(tmp_path):
    prog = tmp_path / "secret-prog"
    prog.mkdir()
    (prog / "Pulumi.yaml").write_text("name: secret-prog\nruntime: python\n")
    (prog / "Pulumi.dev.yaml").write_text("config:\n  secret-prog:token:\n    secure: v1:c2VjcmV0LXZhbHVl\n")
    (prog / "__main__.py").write_text(
        "import pulumi, pulumi_kubernetes as k8s\n"
        "token = pulumi.Config().require_secret('token')\n"
        "p = k8s.Provider('k', kubeconfig='{}')\n"
        "k8s.core.v1.Secret('s', metadata={'name': 's', 'namespace': 'default'}, string_data={'token': token},"
        " opts=pulumi.ResourceOptions(provider=p))\n"
        "pulumi.export('token', token)\n"
    )
    out = tmp_path / "out"
    proc = run_synth("dev", "--program", str(prog), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    blob = b"".join(_tree(out).values()) + proc.stdout.encode()
    assert b"c2VjcmV0LXZhbHVl" not in blob
    assert json.loads((out / "outputs.json").read_text())["token"] == "[secret]"
    # The SDK marks the whole property secret; the engine masks its leaves and keeps the shape.
    assert yaml.safe_load((out / "manifests" / "000-secret-s.yaml").read_text())["stringData"] == {"token": "[secret]"}
