"""Model architectures: what a decode step reads and computes, and what one token of KV cache takes.

Every row is read from the model's ``config.json`` on Hugging Face (the URL in ``source``):
``num_hidden_layers``, ``num_key_value_heads``, ``head_dim`` (else ``hidden_size /
num_attention_heads``), ``hidden_size``; parameter counts are the model cards' figures
(safetensors metadata). Mixture-of-experts rows carry the parameters active per token
(Mixtral-8x7B: 2 of 8 experts, 12.9 B of 46.7 B, from the Mixtral paper, arXiv 2401.04088).

Scope: dense decoder-only models (Llama, Qwen, Mistral, Gemma) and Mixtral. Gemma 2 alternates
sliding-window (4,096) and global attention layers; the KV figure here counts every layer at
full length (vLLM's hybrid allocator shares one block pool, so this is the upper bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HF = "https://huggingface.co/{}/blob/main/config.json"


@dataclass(frozen=True)
class ModelArch:
    layers: int
    kv_heads: int
    head_dim: int
    hidden_size: int
    params_billion: float
    active_params_billion: float | None = None  # MoE: parameters each token goes through
    source: str = ""

    @property
    def active_billion(self) -> float:
        return self.active_params_billion if self.active_params_billion is not None else self.params_billion

    def kv_bytes_per_token(self, dtype_bytes: float) -> float:
        """K and V, for every layer and KV head: 2 x layers x kv_heads x head_dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


def _arch(repo: str, layers: int, kv_heads: int, head_dim: int, hidden: int, params: float,
          active: float | None = None) -> tuple[str, ModelArch]:
    return repo.lower(), ModelArch(layers, kv_heads, head_dim, hidden, params, active, HF.format(repo))


# Keys are Hugging Face ids in lower case; an Instruct variant has its base model's architecture.
ARCHITECTURES: dict[str, ModelArch] = dict((
    _arch("meta-llama/Llama-3.1-8B-Instruct", 32, 8, 128, 4096, 8.03),
    _arch("meta-llama/Llama-3.1-8B", 32, 8, 128, 4096, 8.03),
    _arch("meta-llama/Meta-Llama-3-8B-Instruct", 32, 8, 128, 4096, 8.03),
    _arch("meta-llama/Llama-3.1-70B-Instruct", 80, 8, 128, 8192, 70.6),
    _arch("meta-llama/Llama-3.3-70B-Instruct", 80, 8, 128, 8192, 70.6),
    _arch("Qwen/Qwen2.5-7B-Instruct", 28, 4, 128, 3584, 7.62),
    _arch("Qwen/Qwen2.5-72B-Instruct", 80, 8, 128, 8192, 72.7),
    _arch("Qwen/Qwen3-8B", 36, 8, 128, 4096, 8.19),
    _arch("Qwen/Qwen3-32B", 64, 8, 128, 5120, 32.8),
    _arch("mistralai/Mistral-7B-Instruct-v0.3", 32, 8, 128, 4096, 7.25),
    _arch("mistralai/Mixtral-8x7B-Instruct-v0.1", 32, 8, 128, 4096, 46.7, 12.9),
    _arch("google/gemma-2-9b-it", 42, 8, 256, 3584, 9.24),
    _arch("google/gemma-2-27b-it", 46, 16, 128, 4608, 27.2),
))


def architecture(model_id: str) -> ModelArch | None:
    """The catalogued architecture of a Hugging Face model id (case-insensitive), or None."""
    return ARCHITECTURES.get(model_id.lower())


# Fallback for a model outside the catalog (config validation, render and the replay must not
# refuse a model they cannot look up): a Llama-3-shaped model of that size (8 KV heads of 128,
# 16-bit), its layer count interpolated in log-log between Llama-3.1-8B (32 layers, 128 KiB of
# KV per token) and Llama-3.x-70B (80 layers, 320 KiB). A fallback, and labelled so: it is off by
# 0.4x-2.2x for other families (Qwen2.5-7B takes 56 KiB per token, Gemma-2-9B 336 KiB), so
# catalogue the model, or give its architecture to ``python -m simulator perf``.
def llama_shaped(params_billion: float) -> ModelArch:
    """A Llama-3-shaped stand-in for a model of this size that the catalog lacks."""
    exponent = math.log(80 / 32) / math.log(70 / 8)
    layers = max(1, round(32 * (params_billion / 8) ** exponent))
    return ModelArch(layers, 8, 128, 4096, params_billion, None, "fallback: Llama-3-shaped, interpolated by size")
