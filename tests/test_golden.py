"""Golden files: the reviewed synth output of every stack and of the consumer example.

Any difference fails with a readable diff. When the change is meant, `make golden` rewrites
tests/golden/ and the reviewer reads the diff of those files like any other change.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.conftest import REPO, STACKS

GOLDEN = REPO / "tests" / "golden"
MAX_DIFF_LINES = 120


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def _compare(actual_dir: Path, golden_dir: Path) -> list[str]:
    actual, golden = _files(actual_dir), _files(golden_dir)
    problems = [f"only in the new output: {k}" for k in sorted(actual.keys() - golden.keys())]
    problems += [f"only in the golden files: {k}" for k in sorted(golden.keys() - actual.keys())]
    for key in sorted(actual.keys() & golden.keys()):
        new, old = actual[key].read_text(), golden[key].read_text()
        if new != old:
            diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"golden/{key}", f"new/{key}",
                                             lineterm="", n=2))
            problems.append("\n".join(diff[:MAX_DIFF_LINES]) + ("\n..." if len(diff) > MAX_DIFF_LINES else ""))
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_stack_output_matches_the_golden_files(synthesized, stack):
    problems = _compare(synthesized[stack], GOLDEN / stack)
    assert not problems, "synth output moved; if meant, run `make golden` and review:\n" + "\n".join(problems)


def test_example_output_matches_the_golden_files(example_build):
    problems = _compare(example_build, GOLDEN / "example-extra-model")
    assert not problems, "synth output moved; if meant, run `make golden` and review:\n" + "\n".join(problems)


def test_every_stack_has_golden_files():
    synth_dirs = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir() and p.name != "simulator")
    assert synth_dirs == sorted([*STACKS, "example-extra-model"])
