"""The phases of a replica's cold start, in seconds and GiB/s.

Two views of the same phases, kept side by side so that they can be compared (the
performance-model work reconciles them against published breakdowns):

- ``WORST_*``: the budget a probe or an await must allow before it gives up. Render uses it
  for the startup probe (a pod killed while it is still loading never becomes ready) and for
  the Deployments' await timeouts (``components/render/rollout.py``).
- ``EXPECTED_*``: the typical time, which the simulator replays.

Each phase is calibrated against the published breakdowns (production facts 13, autoscaling
facts 3.2-3.5):

- data-on-eks, g6e.2xlarge, a 15 GiB (8B-class, 32-layer) model, vLLM under Ray Serve: node
  provisioning 13 s (Karpenter) + 40 s (EC2 to Ready) + 36 s (GPU device plugin); image pull
  121 s (11.6 GB); weights from S3 by the Run:ai streamer 17.8 s; engine init 33.8 s with a warm
  compile cache (awslabs/data-on-eks ``website/docs/ai-ml/ray-batch-inference.md``@a546a19).
- llm-d, Qwen3-32B (61 GiB, 64 layers) on 1 x H100, vLLM 0.26, plain vLLM pod: image 69 s
  without image streaming, Python/CUDA imports 73 s, weights 130 s (43 s of it reading),
  engine init and CUDA graphs 73 s (llm-d/llm-d
  ``guides/gke-pod-snapshots/benchmark-results/vllm-qwen3-32b-h100.md``@005cf57).
- Tensorfuse, Llama-3.1-8B on L40S: weights 33 s uncached (15 GiB), compile + CUDA graphs
  106 s uncached and 30 s with a warm cache, imports and engine init 94 s / 34 s
  ("Reducing GPU cold start time when using vLLM", 2025-09-01).
- Run:ai streamer benchmark: safetensors from gp3 with one stream, 15 GB in 47.6 s
  (run-ai/runai-model-streamer ``docs/src/benchmarks.md``@f73a19a).

Engine init (torch.compile pieces and CUDA-graph capture) scales with the layer count: 33.8 s
for 32 layers and 73 s for 64 layers are both ~1.1 s per layer, on L40S and H100 alike, so the
GPU is not a factor here; the weights phase scales with the bytes.
"""

from __future__ import annotations

import math

# --- worst case (startup probes, await timeouts); each phase >= its expected figure below
WORST_IMPORTS_SECONDS = 120  # Python/CUDA imports and engine setup: 94 s uncached (Tensorfuse), rounded up
WORST_ENGINE_INIT_SECONDS = 240  # uncached torch.compile + CUDA graph capture: 3-4 min (>= 88 s expected for 80 layers)
WORST_NVME_READ_GIB_PER_S = 0.3  # weights from the node cache into GPU memory: one stream from gp3 (Run:ai: 0.29 GiB/s)
WORST_S3_SYNC_GIB_PER_S = 0.25  # aws s3 sync into the cache (S3 streamer measured 0.84 GiB/s)
# Node launch to a schedulable GPU, per instance family: about 3x the expected figures below,
# rounded up (a launch retried on another type or zone after an insufficient-capacity error,
# a slow device-plugin registration). Unmeasured for p4/p5; those get 10 minutes.
WORST_NODE_READY_SECONDS = {"g5": 300, "g6": 300, "g6e": 300, "p4d": 600, "p4de": 600, "p5": 600, "p5en": 600}
WORST_NODE_READY_DEFAULT_SECONDS = 600
# Image pull: 15-20 GB deep-learning images take 4-6 min per instance (AWS ML blog on SOCI
# indexes for DLCs); the expected 121 s below is one measured pull of the vLLM image.
WORST_IMAGE_PULL_SECONDS = 360
WORST_READINESS_SECONDS = 10  # one readiness probe period

# --- expected (the simulator and the rehearsal)
# Node launch to a schedulable GPU, per instance family. p4 and p5 nodes are given more
# (unmeasured; larger instances, more GPUs for the device plugin to announce).
EXPECTED_NODE_READY_SECONDS = {"g5": 89.0, "g6": 89.0, "g6e": 89.0, "p4d": 150.0, "p4de": 150.0,
                               "p5": 180.0, "p5en": 180.0}
EXPECTED_NODE_READY_DEFAULT_SECONDS = 120.0
EXPECTED_IMAGE_PULL_SECONDS = 121.0  # data-on-eks (llm-d: 69 s for its image)
EXPECTED_S3_GIB_PER_S = 0.5  # aws s3 sync: unmeasured; below the streamer's 0.84 GiB/s (data-on-eks)
EXPECTED_IMPORTS_SECONDS = 73.0  # llm-d, plain vLLM 0.26 (data-on-eks: 36 s under Ray; Tensorfuse 34 s cached)
# Weights into GPU memory from the node cache: 61 GiB in 130 s (llm-d) and 15 GiB in 33 s
# (Tensorfuse, uncached) are both ~0.47 GiB/s end to end (read, deserialize, copy).
EXPECTED_NVME_GIB_PER_S = 0.47
EXPECTED_ENGINE_INIT_SECONDS_PER_LAYER = 1.1  # 33.8 s / 32 layers (data-on-eks), 73 s / 64 (llm-d)
EXPECTED_READINESS_SECONDS = 10.0  # within one readiness probe period


def expected_engine_init_seconds(layers: int) -> float:
    """torch.compile (warm cache) + CUDA-graph capture + warm-up, for a model of this many layers."""
    return EXPECTED_ENGINE_INIT_SECONDS_PER_LAYER * layers


def expected_download_seconds(weights_gib: float) -> float:
    """The model from S3 into the node cache."""
    return weights_gib / EXPECTED_S3_GIB_PER_S


def expected_load_seconds(weights_gib: float, layers: int) -> float:
    """Container start to Ready, the model in the node cache: imports, weights, engine init, probe."""
    return (EXPECTED_IMPORTS_SECONDS + weights_gib / EXPECTED_NVME_GIB_PER_S + expected_engine_init_seconds(layers)
            + EXPECTED_READINESS_SECONDS)


def worst_load_seconds(weights_gib: float) -> int:
    """Worst-case time from container start to a serving engine, the model already cached."""
    return math.ceil(WORST_IMPORTS_SECONDS + weights_gib / WORST_NVME_READ_GIB_PER_S + WORST_ENGINE_INIT_SECONDS)


def worst_cold_start_seconds(weights_gib: float) -> int:
    """Worst case on a node without the model: download into the cache, then load."""
    return math.ceil(weights_gib / WORST_S3_SYNC_GIB_PER_S) + worst_load_seconds(weights_gib)


def expected_node_ready_seconds(family: str) -> float:
    """Launch to a schedulable GPU for an instance family."""
    return EXPECTED_NODE_READY_SECONDS.get(family, EXPECTED_NODE_READY_DEFAULT_SECONDS)


def worst_node_ready_seconds(instance_types: tuple[str, ...] | list[str]) -> int:
    """The slowest worst-case node launch among these instance types (Karpenter may pick any)."""
    return max(WORST_NODE_READY_SECONDS.get(t.split(".", 1)[0], WORST_NODE_READY_DEFAULT_SECONDS)
               for t in instance_types)


# --- cold-start levers (issue 18): the modelled cold start one predictive trigger looks ahead,
# and what the loaders and FastImagePull need. Kept apart from the calibrated figures above.

# Each lever's effect on one phase (production facts 13). All levers off gives the calibrated
# figures above exactly.
# runaiS3: the Run:ai streamer reads S3 straight into GPU memory: 15 GB (13.97 GiB) S3->GPU in
# 4.88 s at concurrency 32, Llama-3-8B on g5.12xlarge (run-ai/runai-model-streamer
# docs/src/benchmarks.md@f73a19a). No download into the node cache.
RUNAI_S3_GIB_PER_S = 15e9 / 2**30 / 4.88  # 2.86 GiB/s
# runaiNvme: the streamer from local disk; the only local-disk figure is gp3 with 16 streams, 15 GB in
# 14.3 s at gp3's 1 GiB/s cap (same benchmark). The NVMe array is faster than that cap; we keep
# the measured figure (a lower bound), not a guess.
RUNAI_NVME_GIB_PER_S = 15e9 / 2**30 / 14.3  # 0.98 GiB/s
# fastsafetensors: load 4.8-7.5x faster (Llama-2-13B, 4 x L40S; foundation-model-stack/fastsafetensors
# README.md@067e405); the weights phase is divided by the low end.
FASTSAFETENSORS_SPEEDUP = 4.8
# Compile cache persisted on the node: torch.compile + CUDA graphs 106 s uncached, 30 s with a warm
# cache (Tensorfuse, Llama-3.1-8B on L40S). The engine-init figure above is taken as the uncached
# one (a plain pod, llm-d's 73 s for 64 layers); a pod on a node where the same model already
# compiled pays this share of it, the first pod on a fresh node pays it whole.
COMPILE_CACHE_WARM_SHARE = 30.0 / 106.0
# FastImagePull (SOCI parallel pull and unpack): "~60 % faster" on a 10 GB DLC image at 1,000 MiB/s
# and 16k IOPS (second-hand: pytorch/ci-infra#1033, convox docs). Read conservatively as 1.6x the
# pull rate (the pull takes 1/1.6 of the time), not as 60 % less time.
FAST_IMAGE_PULL_SPEEDUP = 1.6

LOADERS = ("default", "runaiNvme", "runaiS3", "fastsafetensors")


def expected_weights_seconds(weights_gib: float, loader: str = "default") -> float:
    """Weights into GPU memory (read, deserialize, copy), by loader."""
    if loader == "runaiS3":
        return weights_gib / RUNAI_S3_GIB_PER_S
    if loader == "runaiNvme":
        return weights_gib / RUNAI_NVME_GIB_PER_S
    if loader == "fastsafetensors":
        return weights_gib / EXPECTED_NVME_GIB_PER_S / FASTSAFETENSORS_SPEEDUP
    if loader != "default":
        raise ValueError(f"loader {loader!r}: one of {', '.join(LOADERS)}")
    return weights_gib / EXPECTED_NVME_GIB_PER_S


def expected_phases(weights_gib: float, layers: int, family: str, *, loader: str = "default",
                    fast_image_pull: bool = False) -> dict[str, float]:
    """A replica's cold-start phases on a new node, with the levers: ``node_ready``, ``image_pull``,
    ``download`` (S3 into the node cache), ``load`` (imports, weights, uncached engine init, the first
    readiness probe) and ``compile_saving`` (what a persisted compile cache saves a pod on a node
    where the model already compiled)."""
    engine = expected_engine_init_seconds(layers)
    return {
        "node_ready": expected_node_ready_seconds(family),
        "image_pull": EXPECTED_IMAGE_PULL_SECONDS / (FAST_IMAGE_PULL_SPEEDUP if fast_image_pull else 1.0),
        "download": 0.0 if loader == "runaiS3" else expected_download_seconds(weights_gib),
        "load": EXPECTED_IMPORTS_SECONDS + expected_weights_seconds(weights_gib, loader) + engine + EXPECTED_READINESS_SECONDS,
        "compile_saving": engine * (1.0 - COMPILE_CACHE_WARM_SHARE),
    }


# A replica on a new node: node launch + image pull + cache download + load (imports, weights,
# engine init, first readiness), each at its expected figure above (the simulator's view, not
# the worst case), with the loader and FastImagePull levers (a fresh node: no compile cache yet).
def expected_cold_start_seconds(weights_gib: float, layers: int, family: str, *, loader: str = "default",
                                fast_image_pull: bool = False) -> float:
    p = expected_phases(weights_gib, layers, family, loader=loader, fast_image_pull=fast_image_pull)
    return p["node_ready"] + p["image_pull"] + p["download"] + p["load"]


# FastImagePull: AWS recommends >= 600 MiB/s root-volume throughput ("Below that value, you may
# see longer image pull times"; amazon-eks-ami nodeadm/doc/examples.md); nodeadm enables the SOCI
# snapshotter only with >= 4 vCPU and >= 7 GiB (nodeadm/internal/containerd/config.go).
FAST_IMAGE_PULL_MIN_ROOT_MIBPS = 600
FAST_IMAGE_PULL_MIN_VCPU = 4
FAST_IMAGE_PULL_MIN_MEMORY_GIB = 7
# gp3's baseline throughput, what an unset EC2NodeClass throughput gets (EBS docs).
GP3_BASELINE_MIBPS = 125


def fast_image_pull_applies(enabled: bool, vcpu: int, memory_gib: float) -> bool:
    """Whether a node of this size pulls in parallel: the gate is on and nodeadm turns the SOCI
    snapshotter on for it (smaller nodes keep the default pull)."""
    return enabled and vcpu >= FAST_IMAGE_PULL_MIN_VCPU and memory_gib >= FAST_IMAGE_PULL_MIN_MEMORY_GIB
