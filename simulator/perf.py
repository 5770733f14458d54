"""Per-replica vLLM performance and cold-start profiles.

Step-time model (roofline of one engine step; Sarathi-Serve, Vidur, llm-d WVA's linear fit is
its low-batch limit). A step decodes ``b`` sequences whose contexts hold ``C`` tokens in all,
and may carry ``p`` prompt tokens of chunked prefill:

- memory time: the weights once per step, plus the KV cache of every context token, over the
  GPU's HBM bandwidth x ``EFF_MEMORY`` (each of the ``tp`` GPUs reads its shard);
- compute time: 2 x active parameters FLOPs per token, for ``b + p`` tokens, over the GPU's dense
  bf16 peak x ``EFF_COMPUTE`` (split over the ``tp`` GPUs);
- step time = max(memory, compute) + ``STEP_OVERHEAD_SECONDS`` (scheduler, sampling, launch) +
  2 all-reduces per layer of ``ALLREDUCE_SECONDS`` when tensor parallel.

A prompt token costs its compute (prefill is compute-bound): ``delta`` seconds. The efficiency
factors are fitted to the published measurements in ``simulator/data/vllm_measurements.csv``
(``python -m simulator perf --calibration`` prints model against measurement). There is no
published measurement of L4, L40S or A10G in that table: those GPUs follow from their bandwidth
and FLOPs through the same model, at the default efficiencies.

KV-cache budget: (GPU memory x utilization - activations) x TP - weights, over the model's KV
bytes per token (``components.sizing``); GPU memory is the instance type's.

Cold start: the phases of ``platform_facts.coldstart`` (one source; sources there).
"""

from __future__ import annotations

from dataclasses import dataclass

from components import sizing
from components.config import ModelServiceConfig
from platform_facts import catalog, models
from platform_facts import coldstart as cs
from platform_facts import vllm as vllm_facts

# Fitted to the calibration table by ``perf_calibration.fit`` (a grid search for the least
# squared log error over the included rows; the optimum is flat: 0.70-0.75 for H100 with 0.3-0.9 ms
# of overhead fit equally well, within 16 % on every row). A GPU without measurements (L4, L40S,
# A10G, H200) uses the default: the mean of the measured GPUs' fits. Compute efficiency is
# pinned only by the prefill in the included rows (32-1,024-token prompts); 0.55 is the usual
# share of the dense peak that large bf16 GEMMs reach, not a fit.
EFF_MEMORY = {"h100": 0.75, "a100": 0.90}
EFF_MEMORY_DEFAULT = 0.825
EFF_COMPUTE = {"h100": 0.55}
EFF_COMPUTE_DEFAULT = 0.55
STEP_OVERHEAD_SECONDS = 0.0009
ALLREDUCE_SECONDS = 30e-6  # one all-reduce of a decode step's activations over NVLink (latency-bound)


@dataclass(frozen=True)
class Hardware:
    gpu: str
    gpu_gib: float
    hbm_gb_s: float
    bf16_tflops: float


def hardware(where: catalog.InstanceType | str) -> Hardware:
    """The GPU of an instance type (its own memory and bandwidth), or of a GPU family by name."""
    if isinstance(where, str):
        g = catalog.GPUS[where]
        return Hardware(g.name, g.mib / 1024, g.hbm_gb_s, g.bf16_tflops)
    return Hardware(where.gpu, sizing.gpu_gib(where), where.gpu_bandwidth_gb_s, catalog.GPUS[where.gpu].bf16_tflops)


@dataclass(frozen=True)
class Model:
    """What the step model needs of a model: its architecture and weight bytes per parameter."""

    arch: models.ModelArch
    dtype: str = "bfloat16"

    @property
    def weights_gib(self) -> float:
        return catalog.weights_gib(self.arch.params_billion, self.dtype)

    @property
    def kv_bytes_per_token(self) -> float:
        return self.arch.kv_bytes_per_token(max(2.0, catalog.DTYPE_BYTES[self.dtype]))


@dataclass(frozen=True)
class ReplicaPerf:
    weights_bytes: float  # per GPU, all experts
    active_weights_bytes: float  # per GPU, the experts one token goes through (dense: all)
    kv_bytes_per_token: float  # per GPU
    bytes_per_second: float  # per GPU, bandwidth x efficiency
    flops_per_token: float  # per GPU
    flops_per_second: float  # per GPU, peak x efficiency
    overhead: float  # seconds per step: scheduler and launch, plus the TP all-reduces
    kv_tokens: int
    max_num_seqs: int
    max_num_batched_tokens: int

    @property
    def delta(self) -> float:
        """Seconds per prompt token (prefill is compute-bound)."""
        return self.flops_per_token / self.flops_per_second

    def step_seconds(self, batch: float, context_tokens: float = 0.0, prefill_tokens: float = 0.0) -> float:
        """One engine step: ``batch`` decoding sequences holding ``context_tokens`` of KV cache in all,
        plus ``prefill_tokens`` of chunked prefill."""
        weights = min(self.weights_bytes, self.active_weights_bytes * max(batch, 1.0))
        memory = (weights + self.kv_bytes_per_token * context_tokens) / self.bytes_per_second
        compute = self.flops_per_token * (batch + prefill_tokens) / self.flops_per_second
        return max(memory, compute) + self.overhead


def build(model: Model, hw: Hardware, tp: int, *, utilization: float = 0.9, max_num_seqs: int | None = None,
          max_num_batched_tokens: int | None = None) -> ReplicaPerf:
    """The step model of ``tp`` GPUs of ``hw`` serving ``model`` (vLLM defaults where not given)."""
    arch = model.arch
    per_param = catalog.DTYPE_BYTES[model.dtype]
    eff_mem = EFF_MEMORY.get(hw.gpu, EFF_MEMORY_DEFAULT)
    eff_compute = EFF_COMPUTE.get(hw.gpu, EFF_COMPUTE_DEFAULT)
    kv_bytes = model.kv_bytes_per_token
    free = sizing.kv_cache_gib(hw.gpu_gib, utilization, tp, model.weights_gib, sizing.activation_gib_per_gpu(hw.gpu_gib))
    seqs, batched = vllm_facts.batch_defaults(hw.gpu_gib, hw.gpu)
    return ReplicaPerf(
        weights_bytes=arch.params_billion * 1e9 * per_param / tp,
        active_weights_bytes=arch.active_billion * 1e9 * per_param / tp,
        kv_bytes_per_token=kv_bytes / tp,
        bytes_per_second=hw.hbm_gb_s * 1e9 * eff_mem,
        flops_per_token=2 * arch.active_billion * 1e9 / tp,
        flops_per_second=hw.bf16_tflops * 1e12 * eff_compute,
        overhead=STEP_OVERHEAD_SECONDS + (2 * arch.layers * ALLREDUCE_SECONDS if tp > 1 else 0.0),
        kv_tokens=max(0, int(free * 2**30 / kv_bytes)),
        max_num_seqs=max_num_seqs or seqs,
        max_num_batched_tokens=max_num_batched_tokens or batched,
    )


def service_model(service: ModelServiceConfig) -> Model:
    """The catalogued architecture of the service's model, else a Llama-shaped stand-in of its size
    (the same fallback as ``sizing.kv_bytes_per_token``)."""
    m = service.model
    return Model(sizing.model_architecture(m.id, m.parameters_billion), m.dtype)


def replica_perf(service: ModelServiceConfig, where: catalog.InstanceType | str) -> ReplicaPerf:
    """The replica of a service on an instance type (or, coarser, on a GPU family by name)."""
    return build(service_model(service), hardware(where), service.tensor_parallel_size,
                 utilization=service.gpu_memory_utilization, max_num_seqs=service.max_num_seqs)


@dataclass(frozen=True)
class ColdStart:
    node_ready: float
    image_pull: float
    download: float
    load: float  # imports, weights into GPU memory, engine init, first readiness probe
    compile_saving: float = 0.0  # what a persisted compile cache saves a pod on a node where the model compiled

    def pod_seconds(self, *, image_cached: bool, model_cached: bool, compiled: bool = False) -> float:
        """Container creation to Ready, on a node that exists (``compiled``: an earlier pod of the
        model compiled on this node and the cache persists)."""
        return ((0.0 if image_cached else self.image_pull) + (0.0 if model_cached else self.download) + self.load
                - (self.compile_saving if compiled else 0.0))

    def burst_seconds(self, *, buffered: bool) -> float:
        """A burst replica's cold start: on a buffer node (Ready, image pre-pulled, the first pod of
        the model there) or on a new node."""
        return (0.0 if buffered else self.node_ready + self.image_pull) + self.download + self.load


def cold_start(service: ModelServiceConfig, instance: catalog.InstanceType, *, fast_image_pull: bool = False) -> ColdStart:
    """The phases of ``platform_facts.coldstart.expected_phases`` with the service's loader and
    compile-cache levers and the cluster's FastImagePull."""
    p = cs.expected_phases(service.model.weights_gib, service_model(service).arch.layers, instance.family,
                           loader=service.loader.format,
                           fast_image_pull=cs.fast_image_pull_applies(fast_image_pull, instance.vcpu, instance.memory_gib))
    saving = p["compile_saving"] if service.compile_cache.persist else 0.0
    return ColdStart(p["node_ready"], p["image_pull"], p["download"], p["load"], saving)
