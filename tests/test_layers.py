"""The layers point one way: a test reads every module's imports (no module is executed)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = ("components", "platform_facts", "policies", "synth", "simulator", "examples", "tests")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _package_imports(package: str) -> dict[str, set[str]]:
    return {str(p.relative_to(REPO)): _imports(p) for p in sorted((REPO / package).rglob("*.py"))}


def test_platform_facts_is_a_leaf_of_the_standard_library():
    for module, imports in _package_imports("platform_facts").items():
        foreign = {i for i in imports if i.split(".")[0] not in sys.stdlib_module_names | {"platform_facts"}}
        assert not foreign, f"{module} imports {sorted(foreign)}; platform_facts must stay a leaf"


@pytest.mark.parametrize("package", ["policies"])
def test_the_policy_pack_imports_only_the_facts(package):
    for module, imports in _package_imports(package).items():
        ours = {i for i in imports if i.split(".")[0] in OURS and i.split(".")[0] not in (package, "platform_facts")}
        assert not ours, f"{module} imports {sorted(ours)}; the pack judges resources, whoever made them"


def test_shared_facts_are_not_redefined():
    """The facts that live in platform_facts are not assigned again anywhere else."""
    names = ("SPOT_NOTICE_SECONDS", "KUBERNETES_VERSIONS", "DOCUMENTATION_CIDRS", "HBM_GB_S", "BF16_TFLOPS",
             "REMOVED_VLLM_METRICS", "INSTANCE_TYPES", "GPUS")
    for package in ("components", "policies", "simulator", "synth"):
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        assert not (isinstance(target, ast.Name) and target.id in names), (
                            f"{path.relative_to(REPO)} defines {target.id}; import it from platform_facts")
