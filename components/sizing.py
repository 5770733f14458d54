"""Sizing arithmetic: how much of a GPU and of a node one vLLM replica takes.

One module for the figures that config validation, the capacity report (``render/capacity``)
and the simulator must agree on. Pure functions of numbers and catalog facts; it imports
no config model, so the config rules can use it.
"""

from __future__ import annotations

import math
from typing import Protocol

from platform_facts import catalog, models

# vLLM needs room for the KV cache and activations beyond the weights on every GPU.
MIN_KV_CACHE_GIB_PER_GPU = 2.0
# Node reservations (kubelet formulas and the node's DaemonSets): one source, the catalog.
RESERVED_VCPU = catalog.NODE_RESERVED_VCPU
ALLOCATABLE_MEMORY_FRACTION = catalog.NODE_ALLOCATABLE_MEMORY_FRACTION
RESERVED_MEMORY_GIB = catalog.NODE_RESERVED_MEMORY_GIB
# Per GPU: 4 vCPUs (tokenization, scheduling, detokenization) and at least 8 GiB of host memory.
VCPU_PER_GPU = 4
MIN_HOST_MEMORY_GIB_PER_GPU = 8
# Weights are staged through host memory while loading: weights x 1.2 + 4 GiB.
STAGING_FACTOR = 1.2
STAGING_EXTRA_GIB = 4
TENSOR_PARALLEL_SIZES = (1, 2, 4, 8)
# What vLLM's memory profile takes per GPU beside the weights and the KV cache: CUDA context,
# cuBLAS/NCCL workspaces (~1 GiB on any card), the activation peak of the profiling batch and
# the CUDA-graph pool. The last two grow with the batch vLLM is configured for, and vLLM gives
# cards of >= 70 GiB 4x the batch (max_num_batched_tokens 8192 vs 2048, max_num_seqs 1024 vs
# 256; vllm/engine/arg_utils.py get_batch_defaults). Rule (reasoned, not measured): 4 % of the
# GPU's memory, at least 2 GiB. It reproduces the derived capacities of autoscaling facts 4.1
# for Llama-3.1-8B: A10G ~26 k tokens (25-30 k), L40S ~190 k (190-200 k), H100 ~440 k (430-455 k).
ACTIVATION_MIN_GIB_PER_GPU = 2.0
ACTIVATION_SHARE_OF_GPU = 0.04
# An emptyDir cache holds the weights plus tokenizer and config files, and safetensors
# shards are rounded up on disk: 10 % beyond the weights.
CACHE_MARGIN = 1.1
# kubelet evicts pods when the node filesystem falls under 10 % free (EKS AMI evictionHard
# nodefs.available) and reserves 1 GiB of ephemeral storage for itself.
EPHEMERAL_EVICTION_FRACTION = 0.1
RESERVED_EPHEMERAL_GIB = 1


class ReplicaShape(Protocol):
    """What a replica asks of a node (a ModelServiceConfig is one)."""

    @property
    def gpus_per_replica(self) -> int: ...
    @property
    def cpu_per_replica(self) -> int: ...
    @property
    def memory_gib_per_replica(self) -> int: ...


def gpu_gib(instance: catalog.InstanceType | str) -> float:
    """Memory of one GPU of this instance type, in GiB (the instance type decides: p4d has 40 GB A100s)."""
    it = catalog.INSTANCE_TYPES[instance] if isinstance(instance, str) else instance
    return it.gpu_memory_mib / 1024


def activation_gib_per_gpu(gpu_gib: float) -> float:
    """vLLM's non-KV working memory on a GPU of this size (see ACTIVATION_SHARE_OF_GPU)."""
    return max(ACTIVATION_MIN_GIB_PER_GPU, ACTIVATION_SHARE_OF_GPU * gpu_gib)


def weights_gib_per_gpu(weights_gib: float, tensor_parallel_size: int) -> float:
    """Weights each GPU holds when the model is split over ``tensor_parallel_size`` GPUs."""
    return weights_gib / tensor_parallel_size


def usable_gib_per_gpu(gpu_gib: float, utilization: float, reserved_gib: float = MIN_KV_CACHE_GIB_PER_GPU) -> float:
    """GPU memory vLLM may fill (``--gpu-memory-utilization``) less ``reserved_gib``."""
    return gpu_gib * utilization - reserved_gib


def kv_cache_gib(gpu_gib: float, utilization: float, tensor_parallel_size: int, weights_gib: float,
                 reserved_gib_per_gpu: float) -> float:
    """Memory left for the KV cache over all the replica's GPUs, once the weights are loaded."""
    return usable_gib_per_gpu(gpu_gib, utilization, reserved_gib_per_gpu) * tensor_parallel_size - weights_gib


def model_architecture(model_id: str, parameters_billion: float) -> models.ModelArch:
    """The catalogued architecture of a model, else the Llama-shaped fallback of its size."""
    return models.architecture(model_id) or models.llama_shaped(parameters_billion)


def kv_bytes_per_token(model_id: str, parameters_billion: float, dtype: str = "bfloat16") -> float:
    """KV-cache bytes one token takes: from the model's architecture when the catalog has it
    (2 x layers x KV heads x head dim x bytes; the KV cache is kept in the weights' 16-bit dtype,
    vLLM's ``--kv-cache-dtype auto``, also for quantized weights), else the Llama-shaped fallback."""
    arch = model_architecture(model_id, parameters_billion)
    return arch.kv_bytes_per_token(max(2.0, catalog.DTYPE_BYTES[dtype]))


def kv_cache_tokens(gpu_gib: float, utilization: float, tensor_parallel_size: int, weights_gib: float,
                    kv_bytes: float) -> int:
    """Tokens the KV cache of one replica holds at ``kv_bytes`` per token (0 when the weights leave no room)."""
    free = kv_cache_gib(gpu_gib, utilization, tensor_parallel_size, weights_gib, activation_gib_per_gpu(gpu_gib))
    return max(0, int(free * 2**30 / kv_bytes))


def mig_slice_gib(profile: str) -> float:
    """Memory of one MIG slice, as its profile name says (``3g.40gb`` -> 40)."""
    return float(profile.split(".", 1)[1].removesuffix("gb"))


def smallest_tensor_parallel(weights_gib: float, usable_gib: float, max_gpus: int) -> int | None:
    """The smallest tensor-parallel size (up to ``max_gpus``) whose weights per GPU fit."""
    return next((n for n in TENSOR_PARALLEL_SIZES
                 if n <= max_gpus and weights_gib_per_gpu(weights_gib, n) <= usable_gib), None)


def replica_vcpu(gpus: int) -> int:
    """vCPUs requested per replica."""
    return VCPU_PER_GPU * gpus


def replica_memory_gib(weights_gib: float, gpus: int) -> int:
    """Host memory requested per replica: enough per GPU, and enough to stage the weights."""
    return max(MIN_HOST_MEMORY_GIB_PER_GPU * gpus, math.ceil(weights_gib * STAGING_FACTOR) + STAGING_EXTRA_GIB)


def allocatable_vcpu(it: catalog.InstanceType) -> float:
    return it.vcpu - RESERVED_VCPU


def allocatable_memory_gib(it: catalog.InstanceType) -> float:
    return it.memory_gib * ALLOCATABLE_MEMORY_FRACTION - RESERVED_MEMORY_GIB


def nvme_gib(it: catalog.InstanceType) -> float:
    """The instance-store NVMe (RAID0 under the node's kubelet and cache), in GiB."""
    return it.nvme_gb * 1e9 / 2**30


def allocatable_ephemeral_gib(it: catalog.InstanceType) -> float:
    """Ephemeral storage pods may request on a node whose kubelet lives on the NVMe RAID0."""
    return nvme_gib(it) * (1 - EPHEMERAL_EVICTION_FRACTION) - RESERVED_EPHEMERAL_GIB


def replica_fits(replica: ReplicaShape, it: catalog.InstanceType) -> bool:
    """Whether one replica fits the instance's allocatable resources."""
    return (it.gpus >= replica.gpus_per_replica
            and allocatable_vcpu(it) >= replica.cpu_per_replica
            and allocatable_memory_gib(it) >= replica.memory_gib_per_replica)


def replicas_per_node(replica: ReplicaShape, it: catalog.InstanceType) -> int:
    """Replicas that fit on one node of this type (0 when not even one does)."""
    return min(it.gpus // replica.gpus_per_replica,
               int(allocatable_vcpu(it) // replica.cpu_per_replica),
               int(allocatable_memory_gib(it) // replica.memory_gib_per_replica))
