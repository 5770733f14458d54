"""Shared helpers: stack files, a config loader, and the synth runner."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import NAMESPACE, StackConfig, load_stack_config

REPO = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")


def stack_values(stack: str) -> tuple[dict[str, Any], str]:
    """The gpu-platform namespace of a stack file (prefix stripped) and its aws:region."""
    raw = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    values = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith(f"{NAMESPACE}:")}
    return copy.deepcopy(values), raw["aws:region"]


def load(stack: str) -> StackConfig:
    values, region = stack_values(stack)
    return load_stack_config(values, region)


def run_synth(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synth", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


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
