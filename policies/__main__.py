"""The CrossGuard entry point: `pulumi preview --policy-pack policies` runs this file.

It only builds the PolicyPack (whose constructor starts the analyzer's gRPC server and
blocks). The rules live in rules.py, importable without starting anything.
"""

import sys
from pathlib import Path

# Pulumi runs this file as a script from the pack's directory; make `policies` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.rules import POLICIES  # noqa: E402

PolicyPack(
    name="gpu-platform",
    policies=POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
)
