"""Shared helpers: stack files, a config loader, and the synth runner."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.config import NAMESPACE, ConfigError, StackConfig, load_stack_config
from components.stack import load_stack, read_stack_file

# Fixtures shared by the PromQL tests (promtool) live in their kit.
pytest_plugins = ["tests.promql_kit"]

REPO = Path(__file__).resolve().parent.parent
# Every stack file in stacks/ (a new one is covered without editing a list).
STACKS = tuple(sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml")))


def stack_values(stack: str) -> tuple[dict[str, Any], str]:
    """The gpu-platform namespace of a stack file (prefix stripped) and its aws:region, read by
    the one loader, for tests that change one key before validating."""
    raw = read_stack_file(REPO / "stacks" / f"Pulumi.{stack}.yaml", NAMESPACE).config
    values = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith(f"{NAMESPACE}:")}
    return copy.deepcopy(values), raw["aws:region"]


def load(stack: str) -> StackConfig:
    return load_stack(stack, REPO)


def plain_prod(values: dict[str, Any]) -> None:
    """prod as it was before the cold-start levers and the re-tune (issues 17, 18): chat-8b with the
    default loader on 2..8, reason-70b on 4..5 (its S3 streamer kept), no predictive trigger, no
    FastImagePull. Tests of render and simulator mechanics that are not about the tuned profile
    start from it, so a re-tune of the stack file moves only the tests about the stack itself."""
    values["cluster"].pop("fastImagePull", None)
    for svc in values["modelServices"]:
        for key in ("predictiveScaling", "compileCache"):
            svc.pop(key, None)
        if svc["name"] == "chat-8b":
            svc.pop("loader", None)
        svc["scaling"] = ({"minReplicas": 2, "maxReplicas": 8, "scaleDownStabilizationSeconds": 600}
                          if svc["name"] == "chat-8b" else
                          {"minReplicas": 4, "maxReplicas": 5, "pollingIntervalSeconds": 30,
                           "scaleDownStabilizationSeconds": 600})


def load_plain_prod(mutate=None) -> StackConfig:
    """``plain_prod``, then ``mutate`` (a test's own change)."""
    return load_with("prod", lambda v: (plain_prod(v), mutate(v) if mutate else None))


def run_synth(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synth", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> dict[str, Path]:
    """Every stack synthesized once per test session, into a temporary directory."""
    out = {}
    for stack in STACKS:
        d = tmp_path_factory.mktemp(f"synth-{stack}")
        proc = run_synth(stack, "--out", str(d))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out[stack] = d
    return out


def build(config: StackConfig):
    """Run Platform(config) on the recording engine; returns the RunResult."""
    from components.platform import Platform
    from synth.engine import run_program

    return run_program(lambda: Platform(config.cluster.name, config).export(), project="gpu-platform",
                       stack=config.environment, config={}, region=config.region)


def load_with(stack: str, mutate) -> StackConfig:
    values, region = stack_values(stack)
    mutate(values)
    return load_stack_config(values, region)


def by_type(result, rtype: str) -> list:
    return [r for r in result.resources if r.type == rtype]


def custom_resources(result, kind: str) -> list[dict]:
    return [r.inputs for r in result.resources if r.type.endswith(f":{kind}") and r.type.startswith("kubernetes:")]


def release(result, name: str) -> dict:
    return next(r.inputs for r in result.resources
                if r.type == "kubernetes:helm.sh/v3:Release" and r.inputs.get("name") == name)


@pytest.fixture(scope="session")
def example_build(tmp_path_factory) -> Path:
    """The consumer example synthesized against the platform's dev stack."""
    out = tmp_path_factory.mktemp("synth-example")
    proc = run_synth("dev", "--program", str(REPO / "examples" / "extra-model"), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def assert_config_rejected(stack: str, mutate: Any, expected: list[str]) -> None:
    """The stack's values after ``mutate`` fail validation with every fragment of ``expected`` in
    the message, and the message is ours: no traceback, no pydantic wording."""
    values, region = stack_values(stack)
    mutate(values)
    with pytest.raises(ConfigError) as info:
        load_stack_config(values, region)
    text = str(info.value)
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    assert "Traceback" not in text and "pydantic" not in text.lower()
    assert "For further information" not in text
