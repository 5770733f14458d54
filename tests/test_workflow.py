"""The README's workflow: commands a newcomer runs and the files they name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from policies.offline import policy_config
from policies.rules import RULES
from synth.run import shared_cluster_names
from tests.conftest import REPO, STACKS, load, run_synth


def _program_with_stacks(tmp_path, stacks: dict[str, str]):
    prog = tmp_path / "prog"
    (prog / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", prog)
    shutil.copy(REPO / "__main__.py", prog)
    for name, text in stacks.items():
        (prog / "stacks" / f"Pulumi.{name}.yaml").write_text(text)
    return prog


def test_every_stack_environment_has_a_policy_pack_config():
    # README, "The real workflow": pulumi preview --policy-pack policies --policy-pack-config policies/config/<env>.json
    for stack in STACKS:
        env = load(stack).environment
        on_disk = json.loads((REPO / "policies" / "config" / f"{env}.json").read_text())
        assert on_disk == policy_config(RULES, env), stack


def test_no_two_repo_stacks_share_a_cluster_name():
    assert [w for s in STACKS for w in shared_cluster_names(s, REPO)] == []


def test_a_copied_stack_file_warns_about_the_shared_cluster_name(tmp_path):
    staging = (REPO / "stacks" / "Pulumi.staging.yaml").read_text()
    prog = _program_with_stacks(tmp_path, {"staging": staging, "staging-qa": staging})
    proc = run_synth("staging-qa", "--program", str(prog), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr  # a warning, not a failure
    assert ("synth: warning: Pulumi.staging-qa.yaml and Pulumi.staging.yaml both set gpu-platform:cluster.name "
            "'llm-staging'") in proc.stderr
    renamed = staging.replace("name: llm-staging", "name: llm-qa")
    assert renamed != staging
    prog = _program_with_stacks(tmp_path / "renamed", {"staging": staging, "staging-qa": renamed})
    assert shared_cluster_names("staging-qa", prog) == [] and shared_cluster_names("staging", prog) == []


def test_make_schema_keeps_the_file_when_generation_fails(tmp_path):
    for name in ("Makefile", "pyproject.toml", "requirements.txt"):
        shutil.copy(REPO / name, tmp_path)
    (tmp_path / "stacks").mkdir()
    schema = tmp_path / "stacks" / "schema.json"
    schema.write_text('{"kept": true}\n')
    (tmp_path / ".venv").mkdir()
    installed = tmp_path / ".venv" / ".installed"
    installed.touch()
    later = time.time() + 60
    os.utime(installed, (later, later))  # the venv is up to date: make runs only the schema recipe
    proc = subprocess.run(["make", "schema", "PY=false"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert schema.read_text() == '{"kept": true}\n'
    assert not (tmp_path / "stacks" / "schema.json.tmp").exists()
