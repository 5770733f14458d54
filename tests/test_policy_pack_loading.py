"""The pack loads from a directory of any name, as an installed or published pack would.

Each test copies ``policies/`` elsewhere under another name and runs it in a fresh
interpreter. The project is installed in the venv (editable), so ``import policies`` would
still find the repository's copy: the tests assert that nothing named ``policies`` was
imported and that every module came from the copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from policies.rules import POLICIES
from tests.conftest import REPO

# Run the copied pack the way `pulumi preview --policy-pack <dir>` does (pulumi.policy's
# __main__ calls runpy.run_path on the pack directory), with PolicyPack replaced by a
# recorder so that no gRPC server starts.
RUN_PACK = """
import json, runpy, sys
import pulumi_policy

built = {}

class RecordingPack:
    def __init__(self, name, policies, enforcement_level=None, **_):
        built.update(name=name, policies=[p.name for p in policies], level=getattr(enforcement_level, "value", None))

pulumi_policy.PolicyPack = RecordingPack
runpy.run_path(sys.argv[1], run_name="__main__")
ours = {m: getattr(sys.modules[m], "__file__", None) for m in sys.modules if m.startswith("gpu_platform_policy_pack")}
print(json.dumps({"built": built, "policies_imported": "policies" in sys.modules, "modules": ours}))
"""

# Import the copy as an ordinary package under a name other than `policies` and run one rule.
IMPORT_AS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from pack_copy.rules import POLICIES, RULES
from pack_copy.offline import Resource, evaluate
cluster = Resource("eks:index:Cluster", "urn:c", "c", {"endpointPublicAccess": True}, {})
report = evaluate([p for p in POLICIES if p.name == "eks-no-open-public-endpoint"], [cluster],
                  {"eks-no-open-public-endpoint": {"environment": "prod"}})
import pack_copy.rules_capacity as rc
print(json.dumps({"rules": len(RULES), "violations": [v["policy"] for v in report["violations"]],
                  "policies_imported": "policies" in sys.modules, "file": rc.__file__}))
"""


def _copy_pack(dest: Path) -> Path:
    shutil.copytree(REPO / "policies", dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _run(code: str, *args: str, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_pack_entry_point_runs_from_a_directory_named_otherwise(tmp_path):
    pack = _copy_pack(tmp_path / "my-pack")
    out = _run(RUN_PACK, str(pack), cwd=tmp_path)
    assert out["built"] == {"name": "gpu-platform", "policies": [p.name for p in POLICIES], "level": "mandatory"}
    assert out["policies_imported"] is False
    assert "gpu_platform_policy_pack.rules" in out["modules"]
    assert all(Path(f).resolve().is_relative_to(pack.resolve()) for f in out["modules"].values() if f), out["modules"]


def test_pack_modules_import_under_another_package_name(tmp_path):
    _copy_pack(tmp_path / "pack_copy")
    out = _run(IMPORT_AS, str(tmp_path), cwd=tmp_path)
    assert out["rules"] == len(POLICIES)
    assert out["violations"] == ["eks-no-open-public-endpoint"]
    assert out["policies_imported"] is False
    assert Path(out["file"]).resolve() == (tmp_path / "pack_copy" / "rules_capacity.py").resolve()
