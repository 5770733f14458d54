"""Cross-field rules of a stack: what no single model can check alone.

Each rule raises :func:`~components.config.errors.rule_error` with the absolute path of the
key to fix (the stack model sits at the root, so pydantic adds nothing in front).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from components import sizing
from components.config.base import karpenter_seconds
from components.config.errors import Path, rule_error
from platform_facts import catalog, coldstart
from platform_facts.aws import SPOT_NOTICE_SECONDS

if TYPE_CHECKING:
    from components.config.batch import BatchWorkerConfig
    from components.config.serving import ModelServiceConfig
    from components.config.stack import StackConfig
    from components.config.tiers import GpuTier


def check_stack(cfg: StackConfig) -> None:
    """Every cross-field rule, in the order a reader fixes them; the first broken one raises."""
    unique(("gpuTiers",), [t.name for t in cfg.gpu_tiers])
    unique(("modelServices",), [s.name for s in cfg.model_services])
    unique(("batchWorkers",), [b.name for b in cfg.batch_workers])
    tiers = {t.name: t for t in cfg.gpu_tiers}
    prod = cfg.environment == "prod"
    endpoint = cfg.cluster.endpoint
    if prod and endpoint.open_to_world and not endpoint.allow_public_from_anywhere:
        raise rule_error(
            ("cluster", "endpoint", "publicAccessCidrs"),
            f"prod refuses a public endpoint open to the internet ({'; '.join(endpoint.open_ranges)}); "
            "list your own CIDRs, set publicAccess false, or set allowPublicFromAnywhere true",
        )
    _check_tiers(cfg, prod)
    for i, s in enumerate(cfg.model_services):
        check_service(("modelServices", i), s, tiers, prod)
    for i, b in enumerate(cfg.batch_workers):
        _check_batch(("batchWorkers", i), b, tiers)
    _check_gpu_limits(cfg)


def unique(path: Path, names: list[str]) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise rule_error((*path, i, "name"), f"{n!r} is used twice; names must be unique")
        seen.add(n)


def tier_of(path: Path, name: str, tiers: dict[str, GpuTier]) -> GpuTier:
    """The tier a workload names, or an error at ``path.tier``."""
    if name not in tiers:
        raise rule_error((*path, "tier"), f"{name!r} is not a gpuTiers name; defined: {', '.join(tiers)}")
    return tiers[name]


def _check_tiers(cfg: StackConfig, prod: bool) -> None:
    strategies = {t.mig.strategy for t in cfg.gpu_tiers if t.mig is not None}
    if len(strategies) > 1:
        first = next(i for i, t in enumerate(cfg.gpu_tiers) if t.mig is not None)
        raise rule_error(("gpuTiers", first, "mig", "strategy"),
                         "MIG tiers disagree on strategy; the GPU Operator applies one strategy cluster-wide")
    for i, t in enumerate(cfg.gpu_tiers):
        if prod and t.ami_alias.endswith("@latest"):
            raise rule_error(("gpuTiers", i, "amiAlias"),
                             f"{t.ami_alias}: prod pins an AMI version, e.g. al2023@v20260801")
        _check_expiry(("gpuTiers", i, "expireAfter"), t, cfg.services_on(t.name))


def _check_expiry(path: Path, tier: GpuTier, services: tuple[ModelServiceConfig, ...]) -> None:
    """A node must live longer than a cold start of what runs on it: one that expires before
    its pods are ready is replaced by another that does the same, forever."""
    if tier.expire_after == "Never":
        return
    lifetime = karpenter_seconds(tier.expire_after)
    node = max(coldstart.expected_node_ready_seconds(catalog.INSTANCE_TYPES[it].family) for it in tier.instance_types)
    for s in services:
        pod = coldstart.worst_cold_start_seconds(s.model.weights_gib)
        need = math.ceil(node + coldstart.EXPECTED_IMAGE_PULL_SECONDS + pod)
        if lifetime < need:
            raise rule_error(
                path,
                f"{tier.expire_after} ({lifetime} s) is shorter than a cold start of {s.name} on this tier: node "
                f"ready ~{node:.0f} s + image pull ~{coldstart.EXPECTED_IMAGE_PULL_SECONDS:.0f} s + model download "
                f"and load (worst case) {pod} s = {need} s, so nodes would expire before they serve; "
                "set expireAfter far above it (the default is 720h) or Never",
            )


def _check_gpu_limits(cfg: StackConfig) -> None:
    for i, t in enumerate(cfg.gpu_tiers):
        if t.on_demand.gpu_limit is not None and t.on_demand.gpu_limit < cfg.baseline_gpus(t.name):
            raise rule_error(
                ("gpuTiers", i, "onDemand", "gpuLimit"),
                f"{t.on_demand.gpu_limit} is below the {cfg.baseline_gpus(t.name)} GPUs the services' "
                "baselines need on this tier; raise it or drop it to use the computed limit",
            )


def _check_batch(path: Path, b: BatchWorkerConfig, tiers: dict[str, GpuTier]) -> None:
    tier = tier_of(path, b.tier, tiers)
    if b.gpus_per_job > tier.max_gpus_per_node:
        raise rule_error((*path, "gpusPerJob"),
                         f"{b.gpus_per_job} exceeds the {tier.max_gpus_per_node} GPUs of the largest {tier.name} instance")
    _check_job_fits(path, b, tier)
    if b.capacity == "spotOnly" and not tier.spot.enabled:
        raise rule_error((*path, "capacity"), f"spotOnly but tier {tier.name} has no spot pool")
    if b.capacity == "onDemand" and not tier.on_demand.enabled:
        raise rule_error((*path, "capacity"), f"onDemand but tier {tier.name} has no on-demand pool")


def _check_job_fits(path: Path, b: BatchWorkerConfig, tier: GpuTier) -> None:
    """A job pod must fit one instance type of its tier, by the rule replicas follow; else
    the ScaledJob creates pods that stay Pending on every node Karpenter can offer."""
    room = [(sizing.allocatable_vcpu(it), sizing.allocatable_memory_gib(it))
            for it in (catalog.INSTANCE_TYPES[t] for t in tier.instance_types) if it.gpus >= b.gpus_per_job]
    if any(cpu >= b.cpu_per_job and mem >= b.memory_gib_per_job for cpu, mem in room):
        return
    max_cpu, max_mem = math.floor(max(c for c, _ in room)), math.floor(max(m for _, m in room))
    types = ", ".join(tier.instance_types)
    if b.cpu_per_job > max_cpu:
        raise rule_error((*path, "cpuPerJob"), f"{b.cpu_per_job} does not fit tier {tier.name} ({types}): at most "
                         f"{max_cpu} vCPU after system reservations; lower it or add a larger type to instanceTypes")
    if b.memory_gib_per_job > max_mem:
        raise rule_error((*path, "memoryGibPerJob"), f"{b.memory_gib_per_job} does not fit tier {tier.name} ({types}): "
                         f"at most {max_mem} GiB after system reservations; lower it or add a larger type to instanceTypes")
    raise rule_error((*path, "cpuPerJob"), f"{b.cpu_per_job} vCPU and {b.memory_gib_per_job} GiB fit no single "
                     f"{tier.name} instance type ({types}); lower one or add a larger type to instanceTypes")


def check_service(path: Path, s: ModelServiceConfig, tiers: dict[str, GpuTier], prod: bool) -> None:
    """A service against the tier it names: GPU memory, node fit, pools, drain, prod rules."""
    tier = tier_of(path, s.tier, tiers)
    _check_mig(path, s, tier)
    _check_time_slicing(path, s, tier)
    _check_gpu_memory(path, s, tier)
    _check_kv_cache(path, s, tier)
    fitting = [it for it in (catalog.INSTANCE_TYPES[t] for t in tier.instance_types) if sizing.replica_fits(s, it)]
    if not fitting:
        raise rule_error(
            (*path, "tier"),
            f"no {tier.name} instance type fits one replica ({s.tensor_parallel_size} GPU, {s.cpu_per_replica} vCPU, "
            f"{s.memory_gib_per_replica} GiB after system reservations); add a larger type to instanceTypes",
        )
    _check_node_storage(path, s, tier, fitting)
    if s.scaling.min_replicas > 0 and not tier.on_demand.enabled:
        raise rule_error(
            (*path, "tier"),
            f"{tier.name} has no on-demand pool, but the service's {s.scaling.min_replicas} baseline "
            "replicas must never depend on spot; enable gpuTiers[].onDemand or pick another tier",
        )
    if s.burst_capacity == "spot" and s.scaling.max_replicas > s.scaling.min_replicas and not tier.spot.enabled:
        raise rule_error((*path, "burstCapacity"), f"spot, but tier {tier.name} has no spot pool; set onDemand")
    if s.uses_spot and s.drain.termination_grace_seconds > SPOT_NOTICE_SECONDS:
        raise rule_error(
            (*path, "drain"),
            f"preStop {s.drain.pre_stop_seconds} + shutdownTimeout {s.drain.shutdown_timeout_seconds} + margin "
            f"{s.drain.margin_seconds} = {s.drain.termination_grace_seconds} s does not fit the "
            f"{SPOT_NOTICE_SECONDS} s spot notice; shorten the drain or set burstCapacity: onDemand",
        )
    if prod and s.scaling.scale_to_zero:
        raise rule_error((*path, "scaling", "scaleToZero"), "prod forbids scale to zero; keep an on-demand baseline")


def _check_gpu_memory(path: Path, s: ModelServiceConfig, tier: GpuTier) -> None:
    tp = s.tensor_parallel_size
    if tp > tier.max_gpus_per_node:
        raise rule_error(
            (*path, "tensorParallelSize"),
            f"{tp} exceeds the {tier.max_gpus_per_node} GPUs of the largest {tier.name} instance; "
            "tensor parallelism stays within one node",
        )
    weights = s.model.weights_gib
    per_gpu = sizing.weights_gib_per_gpu(weights, tp)
    usable = sizing.usable_gib_per_gpu(tier.gpu_gib, s.gpu_memory_utilization)
    if per_gpu <= usable:
        return
    fit = sizing.smallest_tensor_parallel(weights, usable, tier.max_gpus_per_node)
    hint = f"use tensorParallelSize >= {fit}" if fit else "use a tier with larger GPUs"
    raise rule_error(
        (*path, "model"),
        f"{s.model.parameters_billion:g}B at {s.model.dtype} needs ~{weights:.0f} GiB, "
        f"{per_gpu:.1f} GiB per GPU at tensorParallelSize {tp}; a {tier.gpu} GPU offers "
        f"{tier.gpu_gib:.1f} GiB x {s.gpu_memory_utilization} minus {sizing.MIN_KV_CACHE_GIB_PER_GPU:g} GiB KV cache "
        f"= {usable:.1f} GiB; {hint}",
    )


def _check_mig(path: Path, s: ModelServiceConfig, tier: GpuTier) -> None:
    """What a replica gets on a MIG tier. Strategy single advertises every slice as
    nvidia.com/gpu, so a replica's tensorParallelSize GPUs are slices; strategy mixed
    advertises nvidia.com/mig-<profile> only, which our pods do not request."""
    if tier.mig is None:
        return
    if tier.mig.strategy == "mixed":
        raise rule_error(
            (*path, "tier"),
            f"{tier.name} uses MIG strategy mixed, which advertises nvidia.com/mig-<profile> resources; the service "
            "requests nvidia.com/gpu, so its pods would stay Pending; use mig.strategy single or a tier without MIG",
        )
    [profile] = tier.mig.profiles
    slice_gib = sizing.mig_slice_gib(profile)
    per_gpu = sizing.weights_gib_per_gpu(s.model.weights_gib, s.tensor_parallel_size)
    usable = sizing.usable_gib_per_gpu(slice_gib, s.gpu_memory_utilization)
    if per_gpu > usable:
        raise rule_error(
            (*path, "tier"),
            f"{tier.name} partitions each GPU into {profile} MIG slices and a replica gets {s.tensor_parallel_size} "
            f"of them: {s.model.parameters_billion:g}B at {s.model.dtype} needs {per_gpu:.1f} GiB per slice, but a "
            f"slice offers {slice_gib:g} GiB x {s.gpu_memory_utilization} minus "
            f"{sizing.MIN_KV_CACHE_GIB_PER_GPU:g} GiB KV cache = {usable:.1f} GiB; use a tier with a larger MIG "
            "profile or without MIG",
        )
    if s.tensor_parallel_size > 1:
        # MIG user guide, "CUDA device enumeration": a CUDA process enumerates one MIG device,
        # however many the container is given.
        raise rule_error(
            (*path, "tensorParallelSize"),
            f"{s.tensor_parallel_size} on MIG tier {tier.name}: a CUDA process sees only one MIG slice, so vLLM "
            "cannot split a model over slices; use 1 with a profile that holds the model, or a tier without MIG",
        )


def _check_time_slicing(path: Path, s: ModelServiceConfig, tier: GpuTier) -> None:
    """On a time-sliced GPU every vLLM sees the whole GPU and reserves its utilization share of
    all of it; the shares of the vLLMs that land on one GPU must fit in it."""
    if tier.time_slicing is None:
        return
    shares = tier.time_slicing.replicas
    total = s.gpu_memory_utilization * shares
    if total > 1:
        cap = 1 / shares
        most = math.floor(cap * 100) / 100
        hint = (f"set gpuMemoryUtilization <= {most:g}" if cap >= 0.5 else
                f"it would need gpuMemoryUtilization <= {most:g}, below the 0.5 floor; serve it on a tier without "
                "time-slicing, or set timeSlicing.replicas 2 and gpuMemoryUtilization 0.5")
        raise rule_error(
            (*path, "gpuMemoryUtilization"),
            f"{s.gpu_memory_utilization} x {shares} time-slicing replicas of tier {tier.name} = {total:.2f} of one "
            f"GPU's memory: each vLLM sharing the GPU reserves {s.gpu_memory_utilization:.0%} of it, so the second "
            f"one fails to start; {hint}",
        )
    if s.tensor_parallel_size > 1:
        raise rule_error(
            (*path, "tensorParallelSize"),
            f"{s.tensor_parallel_size} on time-sliced tier {tier.name}: the device plugin may give a pod several "
            "shares of the same GPU, so tensor parallelism would split the model over one GPU; use 1 here or a tier "
            "without time-slicing",
        )


def _check_kv_cache(path: Path, s: ModelServiceConfig, tier: GpuTier) -> None:
    """vLLM refuses to start when one sequence of maxModelLen tokens does not fit its KV cache."""
    device_gib = sizing.mig_slice_gib(next(iter(tier.mig.profiles))) if tier.mig else tier.gpu_gib
    m = s.model
    kv_bytes = sizing.kv_bytes_per_token(m.id, m.parameters_billion, m.dtype)
    tokens = sizing.kv_cache_tokens(device_gib, s.gpu_memory_utilization, s.tensor_parallel_size, m.weights_gib, kv_bytes)
    if s.max_model_len <= tokens:
        return
    per_token_kib = kv_bytes / 1024
    raise rule_error(
        (*path, "maxModelLen"),
        f"{s.max_model_len} tokens do not fit the KV cache of one replica: {m.parameters_billion:g}B takes "
        f"~{per_token_kib:.0f} KiB per token, and {s.tensor_parallel_size} {tier.gpu} GPU(s) at gpuMemoryUtilization "
        f"{s.gpu_memory_utilization} leave room for {tokens} tokens after the weights, so vLLM would refuse to start; "
        f"lower maxModelLen to <= {tokens}, or raise tensorParallelSize or gpuMemoryUtilization",
    )


def _check_node_storage(path: Path, s: ModelServiceConfig, tier: GpuTier,
                        fitting: list[catalog.InstanceType]) -> None:
    """An emptyDir cache asks for its sizeGib as ephemeral-storage, which a node offers from its
    NVMe RAID0 (kubelet's filesystem); a request no node has keeps the pod Pending forever.
    (A hostPath cache fills the same disk, but every catalog node has more NVMe than GPU memory.)"""
    if s.cache.medium != "emptyDir":
        return
    largest = max(fitting, key=sizing.allocatable_ephemeral_gib)
    room = sizing.allocatable_ephemeral_gib(largest)
    if s.cache.size_gib > room:
        raise rule_error((*path, "cache", "sizeGib"),
                         f"{s.cache.size_gib} GiB of ephemeral-storage fits no {tier.name} node: {largest.name}, the "
                         f"largest that fits a replica, has {largest.nvme_gb} GB of NVMe, ~{room:.0f} GiB after "
                         "kubelet's eviction reserve; lower sizeGib or add an instance type with more NVMe")
