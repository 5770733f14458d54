"""The one stack-config loader: strict YAML, namespace typos, and the same message from every
entry point (synth, the simulator, the Pulumi program)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from components.config import ConfigError
from components.stack import load_stack, read_stack_file, stack_config
from tests.conftest import REPO, run_synth

DEV = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()


def _program(tmp_path: Path, stack_text: str | bytes, pulumi_yaml: str | None = None, stack: str = "qa") -> Path:
    prog = tmp_path / "prog"
    prog.mkdir()
    shutil.copy(REPO / "__main__.py", prog / "__main__.py")
    (prog / "Pulumi.yaml").write_text(pulumi_yaml if pulumi_yaml is not None else "name: gpu-platform\nruntime: python\n")
    target = prog / f"Pulumi.{stack}.yaml"
    if isinstance(stack_text, bytes):
        target.write_bytes(stack_text)
    else:
        target.write_text(stack_text)
    return prog


# name, the stack file's text, fragments of the one message
BAD_FILES = [
    ("namespace-typo", DEV.replace("gpu-platform:modelServices:", "gpu-platfrom:modelServices:"),
     ["gpu-platfrom:modelServices: unknown config namespace 'gpu-platfrom'; did you mean gpu-platform:modelServices?"]),
    ("duplicate-key", DEV + "  gpu-platform:modelServices: []\n",
     ["duplicate key 'gpu-platform:modelServices' (first at line", "merge them into one"]),
    ("non-string-key", DEV + "  3: three\n", ["key 3 is not a string; quote it"]),
    ("non-string-root-key", DEV + "1: one\n", ["key 1 is not a string; quote it"]),
    ("list-key", DEV + "  ? [a, b]\n  : x\n", ["a key is a list; keys are strings"]),
    ("recursive-alias", DEV + "  gpu-platform:batchWorkers: &b [*b]\n",
     ["gpu-platform:batchWorkers: the value contains itself (a YAML alias to its own anchor)"]),
    ("not-utf8", DEV.encode() + b"  # caf\xe9\n", ["not UTF-8 (byte", "save the file as UTF-8"]),
    ("empty-environment", DEV.replace("gpu-platform:environment: dev", 'gpu-platform:environment: ""'),
     ["environment: Input should be 'dev', 'staging' or 'prod' (got '')"]),
    ("no-config", "encryptionsalt: x\n", ["needs a top-level 'config' mapping"]),
    ("not-yaml", "config: [\n", ["not valid YAML"]),
]


@pytest.mark.parametrize("text,expected", [(t, e) for _, t, e in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_stack_files_get_one_clear_message(tmp_path, text, expected):
    prog = _program(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_stack("qa", prog)
    for fragment in expected:
        assert fragment in str(info.value), str(info.value)
    proc = run_synth("qa", "--program", str(prog), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for fragment in expected:
        assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists(), "nothing is written for a bad config"


@pytest.mark.parametrize("pulumi_yaml,expected", [
    ("- not\n- a mapping\n", "expected a mapping"),
    ("runtime: python\n", "'name' is missing"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_a_malformed_pulumi_yaml_is_a_config_error(tmp_path, pulumi_yaml, expected):
    prog = _program(tmp_path, DEV, pulumi_yaml)
    proc = run_synth("qa", "--program", str(prog), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr


PROD_AS_DEV = ("environment: 'dev' in the file of stack 'prod'; the environment must be the stack name or its first "
               "dash-separated part (dev, staging, prod), so expected environment prod; fix it, or set "
               "allowEnvironmentMismatch: true if the mismatch is deliberate")


@pytest.mark.parametrize("stack,expected", [
    ("prod", PROD_AS_DEV),
    ("prod-eu", "environment: 'dev' in the file of stack 'prod-eu'; "),
    ("qa", "environment: 'dev' in the file of stack 'qa'; the environment must be the stack name or its first "
           "dash-separated part (dev, staging, prod), so expected a stack named dev or dev-<suffix>; "),
])
def test_the_environment_must_be_the_one_the_stack_name_says(tmp_path, stack, expected):
    prog = _program(tmp_path, DEV, stack=stack)
    with pytest.raises(ConfigError) as info:
        load_stack(stack, prog)
    assert info.value.messages[0].startswith(expected)
    # Under the engine the program reads the stack name from the Pulumi runtime.
    proc = run_synth(stack, "--program", str(prog), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stack", ["dev", "dev-alice"])
def test_a_stack_named_after_its_environment_loads(tmp_path, stack):
    assert load_stack(stack, _program(tmp_path, DEV, stack=stack)).environment == "dev"


def test_a_deliberate_mismatch_is_allowed_by_its_own_key(tmp_path):
    text = DEV + "  gpu-platform:allowEnvironmentMismatch: true\n"
    cfg = load_stack("sandbox", _program(tmp_path, text, stack="sandbox"))
    assert cfg.environment == "dev" and cfg.allow_environment_mismatch


def test_the_runtime_config_gets_the_namespace_check_too():
    with pytest.raises(ConfigError, match="did you mean gpu-platform:gpuTiers"):
        stack_config({"aws:region": "us-east-1", "gpu-platfrom:gpuTiers": "[]"})


def test_secure_values_are_placeholders_and_their_keys_marked(tmp_path):
    text = DEV + "  gpu-platform:tags:\n    team: {secure: AAABAF}\n"
    sf = read_stack_file(_program(tmp_path, text) / "Pulumi.qa.yaml", "gpu-platform")
    assert sf.config["gpu-platform:tags"] == {"team": "[secret]"}
    assert sf.secret_keys == ("gpu-platform:tags",)


def test_timestamps_stay_strings_as_the_pulumi_cli_reads_them(tmp_path):
    text = DEV + "  gpu-platform:tags:\n    created: 2024-01-01\n"
    sf = read_stack_file(_program(tmp_path, text) / "Pulumi.qa.yaml", "gpu-platform")
    assert sf.config["gpu-platform:tags"] == {"created": "2024-01-01"}


def test_keys_without_a_namespace_belong_to_the_project(tmp_path):
    sf = read_stack_file(_program(tmp_path, "config:\n  platformStack: org/p/dev\n") / "Pulumi.qa.yaml", "consumer")
    assert sf.config == {"consumer:platformStack": "org/p/dev"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


def test_every_entry_point_uses_the_one_loader():
    users = {
        "__main__.py": "components",
        "synth/run.py": "components.stack",
        "simulator/__main__.py": "components.stack",
        "simulator/bench.py": "components.stack",
        "tests/conftest.py": "components.stack",
    }
    for path, module in users.items():
        imports = _imports(REPO / path)
        assert module in imports, f"{path} does not import {module}"
        assert "synth.run" not in imports or path.startswith("synth"), f"{path} imports synth.run"
    for path in (REPO / "simulator").glob("*.py"):
        assert "synth.run" not in _imports(path), f"{path.name} imports synth.run"
