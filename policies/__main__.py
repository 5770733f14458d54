"""The CrossGuard entry point: `pulumi preview --policy-pack <dir>` runs this file.

It only builds the PolicyPack (whose constructor starts the analyzer's gRPC server and
blocks). The rules live in rules.py, importable without starting anything.

Pulumi runs this file as a script (``runpy.run_path(<pack dir>)``), outside any package, and
the pack's directory may have any name: ``policies`` in this repository, something else once
copied, installed or published. So the modules here use relative imports, and this file
loads its own directory as a package under a fixed alias, by file location. Nothing depends
on the directory's name or on the repository being on ``sys.path``; the only outside imports
are pulumi_policy and ``platform_facts`` (see requirements.txt).
"""

import importlib
import importlib.util
import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

PACKAGE = "gpu_platform_policy_pack"


HERE = Path(__file__).resolve().parent


def load_package(directory: Path = HERE, alias: str = PACKAGE):
    """Import ``directory`` (its ``__init__.py``) as the package ``alias`` and return it."""
    if alias in sys.modules:
        return sys.modules[alias]
    spec = importlib.util.spec_from_file_location(alias, directory / "__init__.py",
                                                  submodule_search_locations=[str(directory)])
    assert spec is not None and spec.loader is not None, directory
    package = importlib.util.module_from_spec(spec)
    sys.modules[alias] = package
    spec.loader.exec_module(package)
    return package


load_package()
rules = importlib.import_module(f"{PACKAGE}.rules")

PolicyPack(
    name="gpu-platform",
    policies=rules.POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
)
