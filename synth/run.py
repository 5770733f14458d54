"""Load a stack file, run its program on the recording engine, write the synth contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import NAMESPACE, ConfigError
from components.render import capacity
from components.stack import load_stack, read_stack_file, stack_file_path
from policies.offline import Resource, evaluate, mandatory, policy_config
from policies.rules import POLICIES, RULES
from synth.engine import Recorded, RunResult, run_program
from synth.rehearsal import markdown as rehearsal_markdown
from synth.rehearsal import rehearse
from synth.writer import write_contract

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("dev", "staging", "prod")


class SynthError(Exception):
    """A problem the user must fix (bad stack file, invalid config): exit 2."""


class ProgramError(Exception):
    """The program itself raised (a bug, not a config problem): exit 3, with its traceback."""


@dataclass
class StackFile:
    project: str
    path: Path
    config: dict[str, str]
    secret_keys: list[str]
    region: str
    environment: str


@dataclass
class SynthResult:
    stack: str
    out: Path
    run: RunResult
    report: dict[str, Any]

    @property
    def mandatory_violations(self) -> list[Mapping[str, str]]:
        return mandatory(self.report)

    def summary(self) -> str:
        n = len(self.run.resources)
        v = self.report["violations"]
        lines = [f"{self.stack}: {n} resources -> {self.out}",
                 f"policies: {self.report['policies_run']} run, {len(v)} violations "
                 f"({len(self.mandatory_violations)} mandatory)"]
        lines += [f"  [{x['enforcement']}] {x['policy']}: {x['urn']}: {x['message']}" for x in v]
        return "\n".join(lines)


def _config_value(value: Any) -> str:
    """A stack-file value as the Pulumi CLI hands it to programs: strings, JSON for objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True)


def load_stack_file(stack: str, program: Path) -> StackFile:
    """The stack file read by the one loader, its values as the CLI passes them to programs."""
    try:
        project, path = stack_file_path(stack, program)
        sf = read_stack_file(path, project)
    except ConfigError as exc:
        raise SynthError("\n".join(exc.messages)) from None
    config = {key: _config_value(value) for key, value in sf.config.items()}
    env = config.get(f"{NAMESPACE}:environment") or (stack if stack in ENVIRONMENTS else "prod")
    return StackFile(project, path, config, list(sf.secret_keys), config.get("aws:region", "us-east-1"), env)


def synthesize(stack: str, *, program: Path = REPO, out: Path | None = None) -> SynthResult:
    """Run ``program`` for ``stack`` on the recording engine and write the contract to ``out``."""
    out = out or REPO / "build" / stack
    sf = load_stack_file(stack, program)
    refs = _StackReferences(program)
    try:
        run = run_program(program, project=sf.project, stack=stack, config=sf.config,
                          secret_keys=sf.secret_keys, region=sf.region, stack_references=refs)
    except ConfigError as exc:
        shown = sf.path.relative_to(program) if sf.path.is_relative_to(program) else sf.path
        raise SynthError(f"invalid stack config {shown}:\n  " + "\n  ".join(exc.messages)) from None
    except SynthError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported with its traceback, exit 3
        raise ProgramError("".join(traceback.format_exception(exc))) from None
    report = policy_report(run.resources, sf.environment)
    if out.exists():
        shutil.rmtree(out)
    write_contract(out, run, report)
    rehearsal = rehearse([r.contract() for r in run.resources])
    (out / "rehearsal.json").write_text(json.dumps(rehearsal, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    (out / "rehearsal.md").write_text(rehearsal_markdown(rehearsal, stack))
    if program == REPO:
        # The platform's own stacks: cost and capacity at a glance.
        (out / "capacity.md").write_text(capacity.report(load_stack(stack, REPO)))
    return SynthResult(stack, out, run, report)


def policy_report(resources: list[Recorded], environment: str) -> dict[str, Any]:
    config = policy_config(RULES, environment)
    return evaluate(POLICIES, [Resource(r.type, r.urn, r.name, r.inputs, r.outputs, r.parent, r.depends_on, r.options)
                               for r in resources], config)


class _StackReferences(Mapping[str, Mapping[str, Any]]):
    """Answers ``StackReference("<org>/<project>/<stack>")`` with this repo's platform stack.

    A consumer program (``--program examples/...``) references the platform stack. The
    engine synthesizes that stack in a separate process (the Pulumi runtime's state is
    global, so two programs cannot share one) and answers with its exported outputs, secrets
    as the placeholder.
    """

    def __init__(self, program: Path):
        self.program = program
        self._cache: dict[str, Mapping[str, Any]] = {}

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        if self.program == REPO:
            raise KeyError(name)
        if name not in self._cache:
            stack = name.rsplit("/", 1)[-1]
            with tempfile.TemporaryDirectory() as tmp:
                proc = subprocess.run([sys.executable, "-m", "synth", stack, "--out", tmp], cwd=REPO,
                                      capture_output=True, text=True)
                if proc.returncode == 2:
                    raise SynthError(f"referenced platform stack {stack!r}: {proc.stderr.strip()}")
                self._cache[name] = json.loads((Path(tmp) / "outputs.json").read_text())
        return self._cache[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.program != REPO

    def __iter__(self):
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)
