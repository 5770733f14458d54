"""Example values (issue 14 item 7): the stack files say which values are placeholders; synth
lists them; a real deploy stops before it creates anything."""

from __future__ import annotations

import json
import runpy

import pytest

from components.config import ConfigError
from components.config.examples import PathError, placeholders, resolve
from components.stack import require_real_values
from synth.engine import run_program
from synth.run import load_stack_file
from tests.conftest import REPO, STACKS, load, load_with


def test_paths_resolve_as_error_messages_write_them():
    cfg = load("staging")
    assert resolve(cfg, "cluster.endpoint.publicAccessCidrs") == ("203.0.113.0/24",)
    assert resolve(cfg, "modelServices[0].model.source").startswith("s3://llm-staging-models/")
    assert resolve(cfg, "batchWorkers[0].image") == "ghcr.io/example/embed-worker:1.4.2"
    with pytest.raises(PathError, match="no key 'sorce' there"):
        resolve(cfg, "modelServices[0].model.sorce")
    with pytest.raises(PathError, match=r"no item \[7\] there"):
        resolve(cfg, "modelServices[7].model")


def test_an_example_path_that_names_nothing_is_a_config_error():
    with pytest.raises(ConfigError, match=r"exampleValues\[0\]: modelServices\[0\]\.modle: no key 'modle' there"):
        load_with("dev", lambda v: v.update(exampleValues=["modelServices[0].modle"]))


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_marks_its_placeholders(stack):
    found = dict(placeholders(load(stack)))
    assert found, f"{stack} ships example values and must say so"
    assert all(p.startswith(("cluster.", "modelServices[", "batchWorkers[", "gpuTiers[")) for p in found)


def test_placeholders_are_found_by_content_even_when_not_listed():
    cfg = load_with("prod", lambda v: (v.pop("exampleValues"),
                                       v["modelServices"][0]["model"].update(source="s3://example-models/llama")))
    assert placeholders(cfg) == [
        ("cluster.endpoint.publicAccessCidrs", "documentation-only ranges (RFC 5737/3849) admit nobody"),
        ("modelServices[0].model.source", "bucket 'example-models' is an example name"),
    ]


def test_a_config_with_real_values_passes():
    cfg = load_with("prod", lambda v: (v.pop("exampleValues"),
                                       v["cluster"]["endpoint"].update(publicAccessCidrs=["100.64.12.0/24"])))
    assert placeholders(cfg) == []
    require_real_values(cfg)


def test_a_real_deploy_stops_before_any_resource(monkeypatch):
    """The platform program under the real engine (the recording engine told it is not offline)
    raises before Platform creates anything, with a message naming each key."""
    monkeypatch.setattr("components.stack.is_offline", lambda: False)
    sf = load_stack_file("prod", REPO)
    errors: list[ConfigError] = []

    def program() -> None:
        try:
            runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        except ConfigError as exc:
            errors.append(exc)

    result = run_program(program, project=sf.project, stack="prod", config=sf.config, secret_keys=sf.secret_keys,
                         region=sf.region)
    assert len(errors) == 1 and result.resources == []
    text = str(errors[0])
    assert "cluster.endpoint.publicAccessCidrs: an example value (marked in exampleValues); set your real value " \
           "and remove the path from gpu-platform:exampleValues before pulumi up" in text
    assert "modelServices[1].model.source: an example value" in text


def test_offline_the_same_program_creates_the_platform():
    sf = load_stack_file("prod", REPO)
    result = run_program(REPO, project=sf.project, stack="prod", config=sf.config, secret_keys=sf.secret_keys,
                         region=sf.region)
    assert len(result.resources) > 100


def test_offline_synth_lists_them_as_advisory_findings(synthesized):
    report = json.loads((synthesized["prod"] / "policy-report.json").read_text())
    findings = [v for v in report["violations"] if v["policy"] == "stack-example-values"]
    assert [f["message"].split(":")[0] for f in findings] == [
        "cluster.endpoint.publicAccessCidrs", "modelServices[0].model.source", "modelServices[1].model.source"]
    assert {f["enforcement"] for f in findings} == {"advisory"}
    assert all(f["urn"].endswith("gpu-platform:index:Platform::llm-prod") for f in findings)


def test_the_readme_lists_every_stacks_example_values():
    import re

    rows = dict(re.findall(r"^\| (\w+) \| (`.*)\|$", (REPO / "README.md").read_text(), re.M))
    for stack in STACKS:
        listed = re.findall(r"`([^`]+)`", rows[stack])
        assert sorted(listed) == [path for path, _ in placeholders(load(stack))], stack
