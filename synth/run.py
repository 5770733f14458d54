"""Load a stack file, run its program on the recording engine, write the synth contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import NAMESPACE, ConfigError, StackConfig, examples
from components.render import capacity
from components.stack import load_stack, project_of, read_stack_file, stack_file_path
from policies.offline import Resource, evaluate, mandatory, policy_config
from policies.rules import POLICIES, RULES
from synth.engine import Recorded, RunResult, run_program
from synth.output import OutputError, check_target, replacing
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
    config = {}
    for key, value in sf.config.items():
        try:
            config[key] = _config_value(value)
        except (TypeError, ValueError) as exc:  # a YAML type with no JSON form (!!binary, !!set...)
            raise SynthError(f"{path}: {key}: {exc}; write the value as a string, number, list or mapping") from None
    env = config.get(f"{NAMESPACE}:environment") or (stack if stack in ENVIRONMENTS else "prod")
    return StackFile(project, path, config, list(sf.secret_keys), config.get("aws:region", "us-east-1"), env)


def default_out(stack: str, program: Path, project: str) -> Path:
    """``build/<stack>/`` for this repo's program, ``build/<project>-<stack>/`` for another one,
    so a consumer program never lands in (and replaces) the platform's own output."""
    return REPO / "build" / (stack if program == REPO else f"{project}-{stack}")


def _cluster_name(path: Path, project: str) -> str | None:
    try:
        cluster = read_stack_file(path, project).config.get(f"{NAMESPACE}:cluster")
    except ConfigError:
        return None  # that stack's own synth reports it
    name = cluster.get("name") if isinstance(cluster, Mapping) else None
    return name if isinstance(name, str) else None


def shared_cluster_names(stack: str, program: Path) -> list[str]:
    """Warnings for the other stack files in the program's config dir that name the same EKS
    cluster as ``stack``: a stack file copied without renaming its cluster would deploy into
    (or collide with) the original's cluster, IAM roles and interruption queue."""
    project, config_dir = project_of(program)
    path = config_dir / f"Pulumi.{stack}.yaml"
    name = _cluster_name(path, project)
    if name is None:
        return []
    others = sorted(p for p in config_dir.glob("Pulumi.*.yaml") if p != path and _cluster_name(p, project) == name)
    return [f"warning: {path.name} and {p.name} both set {NAMESPACE}:cluster.name {name!r}; "
            "give each stack its own cluster name (and check gpu-platform:environment)" for p in others]


def synthesize(stack: str, *, program: Path = REPO, out: Path | None = None) -> SynthResult:
    """Run ``program`` for ``stack`` on the recording engine and write the contract to ``out``
    (default :func:`default_out`), replacing it only if synth wrote it (``synth/output.py``).
    Stack files sharing ``stack``'s cluster name are warned about on stderr (the exit status
    is unaffected)."""
    sf = load_stack_file(stack, program)
    for warning in shared_cluster_names(stack, program):
        print(f"synth: {warning}", file=sys.stderr)
    out = Path(os.path.abspath(out or default_out(stack, program, sf.project)))
    try:
        check_target(out)
    except OutputError as exc:
        raise SynthError(str(exc)) from None
    if not (program / "__main__.py").is_file():
        raise SynthError(f"{program}: no __main__.py in the program directory")
    refs = _StackReferences(program)
    try:
        run = run_program(program, project=sf.project, stack=stack, config=sf.config,
                          secret_keys=sf.secret_keys, region=sf.region, stack_references=refs)
    except ConfigError as exc:
        shown = sf.path.relative_to(program) if sf.path.is_relative_to(program) else sf.path
        raise SynthError(f"invalid stack config {shown}:\n  " + "\n  ".join(exc.messages)) from None
    except SynthError:
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported with its traceback, exit 3
        # SystemExit too: a program's sys.exit(1) must not read as "a mandatory policy is violated".
        raise ProgramError("".join(traceback.format_exception(exc))) from None
    report = policy_report(run.resources, sf.environment)
    # The platform's own stacks: cost and capacity at a glance, and the example values a real
    # deploy must replace (the program refuses them under the real engine).
    platform_config = load_stack(stack, REPO) if program == REPO else None
    capacity_md = capacity.report(platform_config) if platform_config is not None else None
    if platform_config is not None:
        report["violations"] += example_findings(platform_config, run.resources)
    rehearsal = rehearse([r.contract() for r in run.resources])
    try:
        with replacing(out) as staging:
            write_contract(staging, run, report)
            (staging / "rehearsal.json").write_text(
                json.dumps(rehearsal, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
            (staging / "rehearsal.md").write_text(rehearsal_markdown(rehearsal, stack))
            if capacity_md is not None:
                (staging / "capacity.md").write_text(capacity_md)
    except OutputError as exc:
        raise SynthError(str(exc)) from None
    return SynthResult(stack, out, run, report)


EXAMPLE_VALUES_FINDING = "stack-example-values"


def example_findings(cfg: StackConfig, resources: list[Recorded]) -> list[dict[str, str]]:
    """Advisory findings for the example values of a platform stack, on its Platform resource:
    offline synth works with them; `pulumi up` stops until each is replaced."""
    urn = next((r.urn for r in resources if r.type == "gpu-platform:index:Platform"), "")
    return [{"policy": EXAMPLE_VALUES_FINDING, "enforcement": "advisory", "urn": urn,
             "message": f"{path}: an example value ({why}); a real deploy (pulumi up) stops until it is set"
                        + (" and removed from exampleValues" if why.startswith("marked") else "") + "."}
            for path, why in examples.placeholders(cfg)]


def policy_report(resources: list[Recorded], environment: str) -> dict[str, Any]:
    config = policy_config(RULES, environment)
    # Policies see secrets as their values, as under CrossGuard (in synth a `secure:` value is the placeholder).
    return evaluate(POLICIES, [Resource(r.type, r.urn, r.name, r.revealed_inputs, r.outputs, r.parent, r.depends_on,
                                        r.options)
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
                if proc.returncode not in (0, 1):  # 1: written, with mandatory violations of its own
                    raise RuntimeError(f"synthesizing the referenced platform stack {stack!r} failed "
                                       f"(exit {proc.returncode}):\n{proc.stderr.strip()}")
                self._cache[name] = json.loads((Path(tmp) / "outputs.json").read_text())
        return self._cache[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.program != REPO

    def __iter__(self):
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)
