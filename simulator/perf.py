"""Per-replica vLLM performance and cold-start profiles (sources in the comments).

Step-time model (llm-d WVA, Sarathi-Serve, Melange): a decode step of a batch of ``b``
sequences takes ``alpha + beta * b``; prefill costs ``delta`` per prompt token.

- ``alpha``: decode is memory-bound, each step reads the weights once:
  weights per GPU / (HBM bandwidth x 0.7), +10 % all-reduce overhead when tensor parallel.
  8B bf16 on H100: 16 GB / (3.35 TB/s x 0.7) = 6.8 ms (measured TPOT at C=1: 6.5 ms).
- ``beta``: fitted to the same H100 anchor (C=16: TPOT 10.9 ms, so 0.29 ms per extra
  sequence, 4.5 % of alpha); scaled as a fraction of alpha on other GPUs.
- ``delta``: prefill is compute-bound: 2 x parameters FLOPs per token at 50 % of dense bf16
  peak, split over the tensor-parallel GPUs.
- KV-cache budget: (GPU memory x utilization x TP - weights - 1.5 GiB/GPU activations) /
  KV bytes per token; 128 KiB/token for Llama-3.1-8B (32 layers x 8 KV heads x 128 x 2 x 2),
  320 KiB for Llama-3.x-70B (80 layers), interpolated in log-log for other sizes. L40S with
  an 8B model: ~195 k tokens (facts: 190-200 k).

Cold start (autoscaling facts 3.2, 3.5; data-on-eks measured run on g6e.2xlarge): node
provisioning 13 s (Karpenter) + 40 s (EC2 to Ready) + 36 s (GPU device plugin); image pull
121 s unless the node has it; model download at 0.5 GiB/s into the node cache unless it is
cached there; weights load from NVMe at 2 GiB/s; engine init 34 s; readiness within a
probe period (10 s). p5 nodes are given 180 s to Ready (unmeasured; larger instances).
"""

from __future__ import annotations

from dataclasses import dataclass

from components import sizing
from components.config import ModelServiceConfig
from components.sizing import ACTIVATION_GIB_PER_GPU, kv_bytes_per_token
from platform_facts import catalog
from platform_facts import coldstart as cs
from platform_facts.catalog import BF16_TFLOPS, HBM_GB_S

BETA_FRACTION = 0.045


@dataclass(frozen=True)
class ReplicaPerf:
    alpha: float  # seconds per decode step
    beta: float  # seconds per sequence per step
    delta: float  # seconds per prompt token
    kv_tokens: int
    max_num_seqs: int

    def step_seconds(self, batch: int) -> float:
        return self.alpha + self.beta * batch


def replica_perf(service: ModelServiceConfig, gpu: str) -> ReplicaPerf:
    tp = service.tensor_parallel_size
    weights = service.model.weights_gib * 2**30
    alpha = weights / tp / (HBM_GB_S[gpu] * 1e9 * 0.7) * (1.1 if tp > 1 else 1.0)
    delta = 2 * service.model.parameters_billion * 1e9 / (BF16_TFLOPS[gpu] * 1e12 * 0.5 * tp)
    free = sizing.kv_cache_gib(sizing.gpu_gib(gpu), service.gpu_memory_utilization, tp, service.model.weights_gib,
                               ACTIVATION_GIB_PER_GPU)
    kv = int(max(free, 0.5) * 2**30 / kv_bytes_per_token(service.model.parameters_billion))
    return ReplicaPerf(alpha, alpha * BETA_FRACTION, delta, kv, service.max_num_seqs)


@dataclass(frozen=True)
class ColdStart:
    node_ready: float
    image_pull: float
    download: float
    load: float

    def pod_seconds(self, *, image_cached: bool, model_cached: bool) -> float:
        """Container creation to Ready, on a node that exists."""
        return ((0.0 if image_cached else self.image_pull) + (0.0 if model_cached else self.download)
                + self.load + cs.EXPECTED_ENGINE_INIT_SECONDS + cs.EXPECTED_READINESS_SECONDS)


def cold_start(service: ModelServiceConfig, instance: catalog.InstanceType) -> ColdStart:
    w = service.model.weights_gib
    node_ready = cs.EXPECTED_NODE_READY_SECONDS.get(instance.family, cs.EXPECTED_NODE_READY_DEFAULT_SECONDS)
    return ColdStart(node_ready, cs.EXPECTED_IMAGE_PULL_SECONDS, w / cs.EXPECTED_S3_GIB_PER_S, w / cs.EXPECTED_NVME_GIB_PER_S)
