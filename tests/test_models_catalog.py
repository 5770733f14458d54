"""Model architectures, KV bytes per token and per-instance-type GPU memory."""

from __future__ import annotations

import pytest

from components import sizing
from platform_facts import catalog, models


@pytest.mark.parametrize(("model", "kib"), [
    ("meta-llama/Llama-3.1-8B-Instruct", 128), ("meta-llama/Llama-3.3-70B-Instruct", 320),
    ("Qwen/Qwen2.5-7B-Instruct", 56), ("Qwen/Qwen2.5-72B-Instruct", 320), ("Qwen/Qwen3-8B", 144),
    ("Qwen/Qwen3-32B", 256), ("mistralai/Mistral-7B-Instruct-v0.3", 128),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", 128), ("google/gemma-2-9b-it", 336), ("google/gemma-2-27b-it", 368),
])
def test_kv_bytes_per_token_come_from_the_architecture(model, kib):
    # 2 x layers x KV heads x head dim x 2 bytes (e.g. Qwen2.5-7B: 2 x 28 x 4 x 128 x 2 = 56 KiB).
    assert sizing.kv_bytes_per_token(model, 7.0) == kib * 1024
    assert models.architecture(model).source.startswith("https://huggingface.co/")


def test_unknown_model_falls_back_to_a_llama_shaped_estimate():
    assert models.architecture("org/unknown") is None
    assert sizing.kv_bytes_per_token("org/unknown", 8) == 128 * 1024
    assert sizing.kv_bytes_per_token("org/unknown", 70) == 320 * 1024
    assert "fallback" in models.llama_shaped(30).source


def test_gpu_memory_and_bandwidth_belong_to_the_instance_type():
    p4d, p4de = catalog.INSTANCE_TYPES["p4d.24xlarge"], catalog.INSTANCE_TYPES["p4de.24xlarge"]
    assert (p4d.gpu, p4d.gpu_memory_mib, p4d.gpu_bandwidth_gb_s) == ("a100", 40960, 1555)
    assert (p4de.gpu, p4de.gpu_memory_mib, p4de.gpu_bandwidth_gb_s) == ("a100", 81920, 2039)
    assert sizing.gpu_gib("p4d.24xlarge") == 40.0 and sizing.gpu_gib(p4de) == 80.0
    assert catalog.INSTANCE_TYPES["p5en.48xlarge"].gpu_bandwidth_gb_s == 4800


def test_activation_allowance_scales_with_the_gpu():
    assert sizing.activation_gib_per_gpu(sizing.gpu_gib("g6.xlarge")) == 2.0  # > 1.5 on 24 GB cards
    assert sizing.activation_gib_per_gpu(80.0) == pytest.approx(3.2)
    # Llama-3.1-8B: A10G ~26 k, L40S ~190 k, H100 ~440 k tokens (autoscaling facts 4.1 ranges).
    kv = sizing.kv_bytes_per_token("meta-llama/Llama-3.1-8B-Instruct", 8.03)
    w = catalog.weights_gib(8.03, "bfloat16")
    for it, lo, hi in (("g5.xlarge", 25_000, 30_000), ("g6e.xlarge", 185_000, 200_000), ("p5.4xlarge", 430_000, 455_000)):
        assert lo <= sizing.kv_cache_tokens(sizing.gpu_gib(it), 0.9, 1, w, kv) <= hi, it
