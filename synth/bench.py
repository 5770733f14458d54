"""`python -m synth.bench [--services N] [--stack dev]`: synth speed and memory on a big platform.

Builds a copy of the program whose stack file is ``stacks/Pulumi.<stack>.yaml`` with its
first model service repeated N times under distinct names (svc000, svc001...), synthesizes
it end to end (recording engine, policy pack, writers) into a temporary directory, and
prints one JSON line: services, resources, policy violations, wall and CPU seconds of the
synthesis (CPU time is the steadier figure on a busy machine) and the peak RSS of the
process in MiB. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from components.config import NAMESPACE
from synth import cli
from synth.run import REPO, synthesize


def _program(root: Path, stack: str, services: int) -> None:
    """A program directory like this repo's, with ``services`` copies of the first service."""
    (root / "stacks").mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root)
    shutil.copy(REPO / "__main__.py", root)
    doc: dict[str, Any] = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    key = f"{NAMESPACE}:modelServices"
    base = doc["config"][key][0]
    doc["config"][key] = [dict(copy.deepcopy(base), name=f"svc{i:03d}") for i in range(services)]
    (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200, help="model services in the platform (default 200)")
    parser.add_argument("--stack", default="dev", help="stack file to start from (default dev)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as tmp:
        program = Path(tmp) / "program"
        _program(program, args.stack, args.services)
        t0, c0 = time.perf_counter(), time.process_time()
        result = synthesize(args.stack, program=program, out=Path(tmp) / "out")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    figures = {
        "services": args.services,
        "resources": len(result.run.resources),
        "violations": len(result.report["violations"]),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    cli.run(main)
