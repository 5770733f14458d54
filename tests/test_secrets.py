"""Secret config stays a Pulumi secret end to end, and credentials never sit in clear text.

The engine is fed what the Pulumi CLI hands a program in a real run: DECRYPTED values plus
the list of secret keys. The engine masks values that reach it as ``pulumi.Output.secret``,
so a recorded placeholder means the value reached the resource as a secret.
"""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError
from synth.engine import run_program
from synth.run import load_stack_file
from tests.conftest import REPO, load_with, run_synth

SECRET = "cost-center-4711-do-not-leak"


def _dev_config(**changes: str) -> dict[str, str]:
    config = dict(load_stack_file("dev", REPO).config)
    config.update(changes)
    return config


def _run(config: dict[str, str], secret_keys: list[str]):
    return run_program(REPO, project="gpu-platform", stack="dev", config=config, secret_keys=secret_keys)


def _recorded(result) -> str:
    return json.dumps([[r.inputs, r.outputs] for r in result.resources]) + json.dumps(result.outputs)


def test_a_secret_tag_reaches_every_resource_as_a_secret():
    config = _dev_config(**{"gpu-platform:tags": json.dumps({"team": "ml", "costCenter": SECRET})})
    result = _run(config, ["gpu-platform:tags"])
    assert SECRET not in _recorded(result)
    vpc = next(r for r in result.resources if r.type == "aws:ec2/vpc:Vpc")
    assert vpc.inputs["tags"]["costCenter"] == "[secret]"
    # Resources of other components get the stack's tags too (Karpenter's queue, its EC2NodeClass).
    queue = next(r for r in result.resources if r.type == "aws:sqs/queue:Queue")
    assert queue.inputs["tags"]["costCenter"] == "[secret]"
    node_classes = [r for r in result.resources if r.type.endswith(":EC2NodeClass")]
    assert node_classes and all(r.inputs["spec"]["tags"]["costCenter"] == "[secret]" for r in node_classes)
    # The SDK marks the whole top-level property secret (here the node class's spec), so the written
    # inputs mask all of it; the policies see it as CrossGuard does, secrets as their values.
    assert all(r.inputs["spec"]["instanceStorePolicy"] == "[secret]" for r in node_classes)
    assert all(r.revealed_inputs["spec"]["instanceStorePolicy"] == "RAID0" for r in node_classes)


def test_synth_with_a_secure_tag_writes_no_secret_and_passes_the_policies(tmp_path):
    prog = tmp_path / "prog"
    (prog / "stacks").mkdir(parents=True)
    (prog / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (prog / "__main__.py").write_text((REPO / "__main__.py").read_text())
    text = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
    assert "gpu-platform:tags:" not in text
    (prog / "stacks" / "Pulumi.dev.yaml").write_text(
        text + "  gpu-platform:tags:\n    team: ml\n    costCenter: {secure: v1:c2VjcmV0LXRhZw==}\n")
    out = tmp_path / "out"
    proc = run_synth("dev", "--program", str(prog), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(0 mandatory)" in proc.stdout
    resources = json.loads((out / "resources.json").read_text())
    assert "c2VjcmV0LXRhZw" not in (out / "resources.json").read_text()
    vpc = next(r for r in resources if r["type"] == "aws:ec2/vpc:Vpc")
    assert vpc["inputs"]["tags"] == {"Name": "[secret]", "costCenter": "[secret]", "team": "[secret]",
                                     "kubernetes.io/cluster/llm-dev": "[secret]"}


def test_the_same_tag_not_marked_secret_is_plain():
    # The control: without the secret-key list the value is recorded as is, so the test above
    # would see a leak.
    config = _dev_config(**{"gpu-platform:tags": json.dumps({"costCenter": SECRET})})
    result = _run(config, [])
    vpc = next(r for r in result.resources if r.type == "aws:ec2/vpc:Vpc")
    assert vpc.inputs["tags"]["costCenter"] == SECRET


@pytest.mark.parametrize("key", ["gpu-platform:modelServices", "gpu-platform:cluster", "aws:region"])
def test_a_secret_in_a_key_that_cannot_keep_it_is_refused(key):
    with pytest.raises(ConfigError) as info:
        _run(_dev_config(), [key])
    message = str(info.value)
    assert message.startswith(f"{key}: holds a secret (a `secure:` value), but its values become resource names")
    assert "keep credentials in a Kubernetes Secret and reference it (modelServices[].hfTokenSecret" in message
    assert "Keys that may hold secrets: gpu-platform:tags" in message


def test_synth_refuses_a_secure_value_inside_model_services(tmp_path):
    prog = tmp_path / "prog"
    (prog / "stacks").mkdir(parents=True)
    (prog / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (prog / "__main__.py").write_text((REPO / "__main__.py").read_text())
    text = (REPO / "stacks" / "Pulumi.dev.yaml").read_text()
    first_args = "      extraArgs:\n"
    assert first_args not in text, "the dev stack gained extraArgs; pick another insertion point"
    text = text.replace("      tier: ", "      extraArgs:\n        - {secure: v1:AAAA}\n      tier: ", 1)
    (prog / "stacks" / "Pulumi.dev.yaml").write_text(text)
    proc = run_synth("dev", "--program", str(prog), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "gpu-platform:modelServices: holds a secret" in proc.stderr and "Traceback" not in proc.stderr


CREDENTIALS = [
    ("api-key-flag", ["--api-key", "abc"], "extraArgs[0]: --api-key takes a credential in clear text"),
    ("api-key-equals", ["--max-loras=2", "--api-key=abc"], "extraArgs[1]: --api-key takes a credential"),
    ("hf-token-flag", ["--hf-token", "x"], "extraArgs[0]: --hf-token takes a credential in clear text; put the token"
                                           " in a Kubernetes Secret and set hfTokenSecret: {name: <secret>, key: <key>}"),
    ("hf-token-value", ["--download-dir", "/x", "hf_" + "a" * 34],
     "extraArgs[2]: looks like a Hugging Face token (hf_...) in clear text; put the token in a Kubernetes Secret"),
    ("openai-style-key", ["--served-model-name=sk-" + "Z" * 40], "extraArgs[0]: looks like an API key (sk-...)"),
    ("env-assignment", ["HF_TOKEN=abc"], "extraArgs[0]: looks like HF_TOKEN=... in clear text"),
]


@pytest.mark.parametrize("args,expected", [(a, e) for _, a, e in CREDENTIALS], ids=[c[0] for c in CREDENTIALS])
def test_plain_text_credentials_in_vllm_arguments_are_refused(args, expected):
    def mutate(values):
        values["modelServices"][0]["extraArgs"] = args

    with pytest.raises(ConfigError) as info:
        load_with("dev", mutate)
    assert f"modelServices[0].{expected}" in str(info.value), str(info.value)


def test_the_api_key_fix_points_to_the_api_key_secret_field():
    def mutate(values):
        values["modelServices"][0]["canary"] = {"extraArgs": ["--api-key=abc"]}

    with pytest.raises(ConfigError) as info:
        load_with("dev", mutate)
    assert "modelServices[0].canary.extraArgs[0]: --api-key takes a credential in clear text" in str(info.value)
    assert "vLLM reads VLLM_API_KEY from its environment" in str(info.value)
    assert "set apiKeySecret: {name: <secret>, key: <key>} on the service" in str(info.value)


@pytest.mark.parametrize("args", [
    ["--enable-prefix-caching", "--tokenizer-revision", "task-sk-model"],  # an sk- inside a value
    ["--tokenizer", "hf_internal_testing/tiny"],  # short: a repo name, not a token
    ["--kv-cache-dtype=fp8", "--disable-log-requests"],
])
def test_ordinary_arguments_pass(args):
    def mutate(values):
        values["modelServices"][0]["extraArgs"] = args

    config = load_with("dev", mutate)
    assert config.model_services[0].extra_args == tuple(args)
