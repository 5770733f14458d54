"""The config's guards against dangerous GPU setups, in the forms the bad-config table does
not enumerate, and the facts they share with render (which must agree on both sides)."""

from __future__ import annotations

import re

import pytest

from components.config import ConfigError, ModelServiceConfig, load_model
from components.render import addons as render_addons
from components.render import karpenter as render_karpenter
from components.render import vllm as render_vllm
from platform_facts import cidrs, coldstart
from platform_facts.kubernetes import RESERVED_NAMESPACES
from tests.conftest import STACKS, load, load_with, stack_values


def _service(**changes) -> dict:
    values, _ = stack_values("prod")
    return {**values["modelServices"][0], **changes}


def _error(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_model(ModelServiceConfig, data, "service")
    [line] = info.value.messages
    return line


@pytest.mark.parametrize("args,index,flag", [
    (["--tensor-parallel-size", "2"], 0, "--tensor-parallel-size"),
    (["--tensor-parallel-size=2"], 0, "--tensor-parallel-size"),
    (["-tp", "2"], 0, "--tensor-parallel-size"),
    (["-tp=2"], 0, "--tensor-parallel-size"),
    (["-tp2"], 0, "--tensor-parallel-size"),
    (["--enable-prefix-caching", "--port", "9000"], 1, "--port"),
    (["--served-model-name", "gpt-4"], 0, "--served-model-name"),
    (["--model", "/elsewhere"], 0, "--model"),
    (["--gpu_memory_utilization", "0.99"], 0, "--gpu-memory-utilization"),  # vLLM reads _ as -
    (["--max-num-seqs=1024"], 0, "--max-num-seqs"),
    (["--shutdown-timeout", "0"], 0, "--shutdown-timeout"),
    (["--max-model", "4096"], 0, "--max-model-len"),  # an argparse abbreviation
])
def test_extra_args_may_not_set_a_generated_flag(args, index, flag):
    line = _error(_service(extraArgs=args))
    assert line.startswith(f"service.extraArgs[{index}]: {args[index]!r} sets {flag}, which the platform generates from ")
    assert "set that instead" in line


@pytest.mark.parametrize("args,flag", [
    (["--pipeline-parallel-size", "2"], "--pipeline-parallel-size"),
    (["-pp", "2"], "--pipeline-parallel-size"),
    (["-dp=2"], "--data-parallel-size"),
    (["-dpl", "2"], "--data-parallel-size-local"),
])
def test_extra_args_may_not_multiply_the_gpus_of_a_replica(args, flag):
    line = _error(_service(extraArgs=args))
    assert line == (f"service.extraArgs[0]: {args[0]!r} sets {flag}: the replica would use more GPUs than the "
                    "tensorParallelSize its pod requests; remove it and size the replica with tensorParallelSize")


def test_extra_args_that_the_platform_does_not_set_pass():
    args = ("--enable-prefix-caching", "--kv-cache-dtype", "fp8", "-O3", "-dpa", "10.0.0.1", "--", "--port-x")
    assert load_model(ModelServiceConfig, _service(extraArgs=list(args)), "service").extra_args == args


def test_every_flag_render_generates_is_guarded():
    """The guard's list and render's arguments must agree: a flag added to vllm_args and not to
    GENERATED_FLAGS could be overridden silently again."""
    from components.config.serving import GENERATED_FLAGS

    for stack in STACKS:
        for svc in load(stack).model_services:
            args = render_vllm.vllm_args(svc, svc.model, ())
            generated = {a for a in args if a.startswith("-")}
            # The loader's flags appear only with a loader other than the default (and the extra
            # config only when it sets something); each is guarded either way.
            assert set(GENERATED_FLAGS) - {"--model"} - generated <= {"--load-format", "--model-loader-extra-config"}, stack
            assert generated <= set(GENERATED_FLAGS), stack
            assert ("--load-format" in generated) == (svc.loader.format != "default"), stack
            # The model is the positional argument: the node-cache copy, or the S3 source it streams.
            assert args[0] == render_vllm.loader.model_arg(svc, svc.model)
            assert args[0] == (svc.model.source + "/" if svc.loader.skips_cache else render_vllm.cache.model_path(svc.model))


@pytest.mark.parametrize("source,problem", [
    ("s3://bucket/models/../secrets", "has a '..' segment"),
    ("s3://bucket/models/./llama", "has a '.' segment"),
    ("s3://bucket/models//llama", "has an empty path segment (//)"),
    ("s3://bucket//models", "has an empty path segment (//)"),
    ("s3://bucket/models/*", "contains '*'"),
    ("s3://bucket/models/llama?", "contains '?'"),
    ("s3://bucket/home/${aws:username}", "contains '$'"),
    ("s3://bucket/models/ll\x00ama", "contains a control character"),
    ("s3://bucket/models/ll\x7fama", "contains a control character"),
    ("hf://org/../other", "has a '..' segment"),
])
def test_model_source_is_a_literal_path(source, problem):
    data = _service(model={**_service()["model"], "source": source})
    assert _error(data).startswith(f"service.model.source: {source!r} {problem}")


def test_a_trailing_slash_is_still_a_literal_prefix():
    data = _service(model={**_service()["model"], "source": "s3://bucket/meta-llama/Llama-3.1-8B-Instruct/"})
    assert load_model(ModelServiceConfig, data, "service").model.source.endswith("/")


@pytest.mark.parametrize("namespace", RESERVED_NAMESPACES)
def test_no_workload_in_a_reserved_namespace(namespace):
    assert _error(_service(namespace=namespace)).startswith(f"service.namespace: {namespace!r} is reserved (")


def test_the_platform_namespaces_render_uses_are_reserved():
    for ns in (render_addons.MONITORING_NAMESPACE, render_addons.KEDA_NAMESPACE, render_addons.GPU_OPERATOR_NAMESPACE,
               render_karpenter.NAMESPACE):
        assert ns in RESERVED_NAMESPACES, ns


def test_the_worst_cold_start_is_the_one_render_budgets():
    """expireAfter is checked against the same worst case the startup probe allows."""
    for stack in STACKS:
        for svc in load(stack).model_services:
            assert coldstart.worst_cold_start_seconds(svc.model.weights_gib) == render_vllm.cold_start_seconds(svc.model)
            assert coldstart.worst_load_seconds(svc.model.weights_gib) == render_vllm.load_seconds(svc.model)


def test_expire_after_never_and_long_lifetimes_pass():
    assert load_with("prod", lambda v: v["gpuTiers"][1].update(expireAfter="Never")).gpu_tiers[1].expire_after == "Never"
    # reason-70b's worst cold start on p5 is 1618 s: 28m (1680 s) is enough.
    assert load_with("prod", lambda v: v["gpuTiers"][1].update(expireAfter="28m")).gpu_tiers[1].expire_after == "28m"


def test_time_slicing_passes_when_the_shares_fit_one_gpu():
    cfg = load_with("staging", lambda v: (v["gpuTiers"][0].update(timeSlicing={"replicas": 2}),
                                          v["modelServices"][0].update(gpuMemoryUtilization=0.5)))
    svc, tier = cfg.model_services[0], cfg.gpu_tiers[0]
    assert svc.gpu_memory_utilization * tier.time_slicing.replicas <= 1


def test_a_mig_slice_that_holds_the_model_passes():
    # 8B at bf16 (~15 GiB) on a 3g.40gb slice of an H100, one slice per replica.
    def mutate(v):
        v["gpuTiers"][1].update(mig={"profiles": {"3g.40gb": 2}})
        v["modelServices"][1].update(model={**v["modelServices"][0]["model"]}, tensorParallelSize=1)
    cfg = load_with("prod", mutate)
    assert cfg.model_services[1].tensor_parallel_size == 1


def test_max_model_len_at_the_kv_limit_passes_and_one_more_token_does_not():
    cfg = load_with("dev", lambda v: v["modelServices"][0].update(maxModelLen=26339))
    assert cfg.model_services[0].max_model_len == 26339
    with pytest.raises(ConfigError, match=re.escape("maxModelLen: 26340 tokens do not fit")):
        load_with("dev", lambda v: v["modelServices"][0].update(maxModelLen=26340))


@pytest.mark.parametrize("written,open_", [
    (["0.0.0.0/0"], True), (["0.0.0.0/00"], True), (["0.0.0.0/1", "128.0.0.0/1"], True), (["::/0"], True),
    (["::/1", "8000::/1"], True), (["0.0.0.0/7"], True), (["198.51.100.0/24"], False), (["10.0.0.0/8"], False),
    (["10.0.0.0/8", "10.0.0.0/9"], False),
])
def test_allow_lists_are_read_as_address_ranges(written, open_):
    assert bool(cidrs.too_wide(cidrs.parse(written))) is open_
