"""Models of the cold-start levers: how weights load, where the compile cache lives, warm GPU
capacity, reserved capacity, fast image pull, and scaling one cold start ahead.

Our own finding: misses are bound by cold start (a new replica takes minutes; bursts last
seconds). Each lever shortens one phase or keeps capacity warm; all are off by default, so a
stack adopts them one by one (prod after the simulator has measured them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, model_validator

from components import sizing
from components.config.base import DNS_LABEL, ConfigModel, ImageRef
from components.config.errors import Path, rule_error

if TYPE_CHECKING:
    from components.config.serving import ModelServiceConfig
    from components.config.stack import StackConfig
    from components.config.tiers import GpuTier

LoaderFormat = Literal["default", "runaiNvme", "runaiS3", "fastsafetensors"]
# vLLM's --load-format per loader (docs/models/extensions/runai_model_streamer.md, fastsafetensor.md).
LOAD_FORMAT = {"runaiNvme": "runai_streamer", "runaiS3": "runai_streamer", "fastsafetensors": "fastsafetensors"}


class Loader(ConfigModel):
    """How vLLM reads the weights."""

    format: LoaderFormat = Field(
        default="default",
        description="default: vLLM's safetensors loader from the node cache; runaiNvme: the Run:ai streamer from the "
        "node cache; runaiS3: the Run:ai streamer straight from the s3:// source (no cache download; the pod reads "
        "S3 with the cache's read-only grant); fastsafetensors: parallel reads from the node cache (needs an image "
        "with the fastsafetensors package, loader.image).",
    )
    concurrency: int | None = Field(
        default=None, ge=1, le=256,
        description="Run:ai streamer: OS threads reading tensors (and, from S3, S3 clients). Unset: vLLM's default.",
    )
    memory_limit_gib: float | None = Field(
        default=None, gt=0, le=512, description="Run:ai streamer: CPU buffer size. Unset: vLLM's default (unlimited)."
    )
    image: ImageRef | None = Field(
        default=None,
        description="vLLM image of the service when the pinned one lacks the loader's package (fastsafetensors).",
    )

    @model_validator(mode="after")
    def _options(self) -> Loader:
        runai = self.format in ("runaiNvme", "runaiS3")
        for key, value in (("concurrency", self.concurrency), ("memoryLimitGib", self.memory_limit_gib)):
            if value is not None and not runai:
                raise rule_error((key,), f"applies to the Run:ai streamer (format runaiNvme or runaiS3), not {self.format}")
        if self.format == "fastsafetensors" and self.image is None:
            raise rule_error(("image",), "fastsafetensors is not installed in the pinned vLLM image; build one FROM it "
                             "with `pip install fastsafetensors` and name it here")
        return self

    @property
    def skips_cache(self) -> bool:
        """The weights never touch the node cache: no sync init container."""
        return self.format == "runaiS3"


class CompileCache(ConfigModel):
    """vLLM's torch.compile / CUDA-graph cache, kept on the node's NVMe between pods."""

    persist: bool = Field(
        default=False,
        description="Keep the compile cache on the node NVMe under a key of GPU, vLLM image and model, so a "
        "second pod on a warm node skips the compile (needs cache.medium hostPath).",
    )


class PredictiveScaling(ConfigModel):
    """A KEDA trigger on the request rate predicted one cold start ahead (Prometheus predict_linear)."""

    enabled: bool = Field(default=False, description="Add the predictive trigger to the burst ScaledObject.")
    requests_per_second_per_replica: float | None = Field(
        default=None, gt=0, le=10000, description="Sustained request rate one replica serves within the SLO (required "
        "when enabled): the predicted rate divided by it is the replica count asked for.",
    )
    lookahead_seconds: int | None = Field(
        default=None, ge=30, le=3600,
        description="How far ahead to predict. Unset: the modelled cold start of a replica on a new node.",
    )
    range_seconds: int = Field(default=600, ge=120, le=3600, description="Regression window of predict_linear.")
    resolution_seconds: int = Field(default=15, ge=5, le=300, description="Subquery step inside the window.")

    @model_validator(mode="after")
    def _enabled(self) -> PredictiveScaling:
        if self.enabled and self.requests_per_second_per_replica is None:
            raise rule_error(("requestsPerSecondPerReplica",), "is required when enabled: the trigger divides the "
                             "predicted request rate by it")
        if self.range_seconds < 4 * self.resolution_seconds:
            raise rule_error(("rangeSeconds",), f"{self.range_seconds} holds fewer than 4 steps of "
                             f"{self.resolution_seconds} s; a regression needs more points")
        return self


class CapacityBufferConfig(ConfigModel):
    """Spare GPU capacity Karpenter keeps ready on the tier's on-demand pool for burst replicas."""

    mode: Literal["capacityBuffer", "placeholderPods"] = Field(
        default="capacityBuffer",
        description="capacityBuffer: Karpenter's CapacityBuffer (alpha gate capacityBuffer, turned on in the chart); "
        "placeholderPods: pause pods of negative priority that real pods preempt (no alpha feature needed).",
    )
    service: Annotated[str, Field(pattern=DNS_LABEL)] | None = Field(
        default=None, description="Size each chunk as one replica of this service (GPUs, CPU, memory).")
    gpus: int | None = Field(default=None, ge=1, le=8, description="Or size each chunk as this many GPUs.")
    replicas: int = Field(default=1, ge=1, le=16, description="Chunks to keep ready.")

    @model_validator(mode="after")
    def _one_size(self) -> CapacityBufferConfig:
        if (self.service is None) == (self.gpus is None):
            raise rule_error(("service",), "set exactly one of service (one replica's worth) and gpus")
        return self


class Reservations(ConfigModel):
    """EC2 capacity reservations (ODCRs, Capacity Blocks) the tier's baseline pool prefers."""

    ids: tuple[Annotated[str, Field(pattern=r"^cr-[0-9a-z]+$")], ...] = Field(
        default=(), description="Capacity reservation ids (ODCR or Capacity Block), e.g. cr-0123456789abcdef0.")
    tags: dict[str, str] = Field(default_factory=dict, description="Select reservations carrying these tags.")
    owner_id: str | None = Field(default=None, pattern=r"^[0-9]{12}$",
                                 description="Account owning the tag-selected reservations (shared ones).")

    @model_validator(mode="after")
    def _some(self) -> Reservations:
        if not self.ids and not self.tags:
            raise rule_error(("ids",), "select at least one reservation, by ids or tags (Karpenter does no open "
                             "matching: an unselected reservation is never used)")
        if self.owner_id is not None and not self.tags:
            raise rule_error(("ownerId",), "applies to tag selection; set tags")
        return self


class FastImagePull(ConfigModel):
    """AL2023 nodeadm FastImagePull: SOCI parallel pull and unpack of the (~10 GB) vLLM image."""

    enabled: bool = Field(default=False, description="Set nodeadm's FastImagePull feature gate on GPU nodes.")
    root_volume_throughput_mibps: int | None = Field(
        default=None, ge=125, le=2000,
        description="gp3 root-volume throughput of GPU nodes (AWS recommends >= 600 with FastImagePull when the "
        "image store is on the root volume). Unset: gp3's 125.",
    )
    root_volume_iops: int | None = Field(default=None, ge=3000, le=80000,
                                         description="gp3 root-volume IOPS of GPU nodes. Unset: gp3's 3000.")


# --------------------------------------------------------------------------- cross-field rules


def check_levers(cfg: StackConfig) -> None:
    """The levers against the services and tiers they act on; the first broken rule raises."""
    for i, s in enumerate(cfg.model_services):
        _check_service(("modelServices", i), s)
    for i, t in enumerate(cfg.gpu_tiers):
        _check_tier(("gpuTiers", i), t, cfg)


def _check_service(path: Path, s: ModelServiceConfig) -> None:
    models = [s.model, *([s.canary.model] if s.canary is not None and s.canary.model is not None else [])]
    if s.loader.skips_cache and (bad := next((m for m in models if not m.source.startswith("s3://")), None)):
        raise rule_error((*path, "loader", "format"), f"runaiS3 streams from S3, but {bad.source!r} is not an s3:// "
                         "source; use runaiNvme (the Run:ai streamer from the node cache) or an s3:// source")
    if s.loader.memory_limit_gib is not None and s.loader.memory_limit_gib >= s.memory_gib_per_replica:
        raise rule_error((*path, "loader", "memoryLimitGib"),
                         f"{s.loader.memory_limit_gib:g} GiB of streamer buffer reaches the replica's memory limit of "
                         f"{s.memory_gib_per_replica} GiB; the container would be OOM-killed while loading")
    if s.compile_cache.persist and s.cache.medium != "hostPath":
        raise rule_error((*path, "compileCache", "persist"), "keeps the cache on the node's NVMe hostPath; it needs "
                         "cache.medium hostPath (an emptyDir dies with its pod)")
    if s.predictive_scaling.enabled and s.scaling.mode != "keda":
        raise rule_error((*path, "predictiveScaling", "enabled"), "is a KEDA trigger; it needs scaling.mode keda")


def _check_tier(path: Path, t: GpuTier, cfg: StackConfig) -> None:
    if (t.capacity_buffer is not None or t.reservations is not None) and not t.on_demand.enabled:
        key = "capacityBuffer" if t.capacity_buffer is not None else "reservations"
        raise rule_error((*path, key), f"acts on the on-demand pool, which tier {t.name} disables (onDemand.enabled)")
    buf = t.capacity_buffer
    if buf is None:
        return
    if buf.service is not None:
        on_tier = [s.name for s in cfg.services_on(t.name)]
        if buf.service not in on_tier:
            raise rule_error((*path, "capacityBuffer", "service"),
                             f"{buf.service!r} is not a service on tier {t.name}; services there: {', '.join(on_tier) or 'none'}")
        s = next(s for s in cfg.services_on(t.name) if s.name == buf.service)
        if s.burst_capacity == "spot" and s.burst_fallback == "none" and t.spot.enabled:
            raise rule_error((*path, "capacityBuffer", "service"),
                             f"{buf.service}'s burst runs on spot only (burstFallback none), and the buffer is warm "
                             "on-demand capacity it may not use; set burstFallback onDemand or drop the buffer")
    elif buf.gpus is not None and buf.gpus > t.max_gpus_per_node:
        raise rule_error((*path, "capacityBuffer", "gpus"),
                         f"{buf.gpus} exceeds the {t.max_gpus_per_node} GPUs of the largest {t.name} instance")


@dataclass(frozen=True)
class BufferChunk:
    """One chunk of a tier's capacity buffer: what one placeholder pod requests."""

    gpus: int
    vcpu: int
    memory_gib: int
    replicas: int

    @property
    def total_gpus(self) -> int:
        return self.gpus * self.replicas


def buffer_chunk(cfg: StackConfig, tier: GpuTier) -> BufferChunk | None:
    """The tier's buffer chunk: one replica of the named service, or ``gpus`` GPUs with the CPU and
    memory a replica of that size requests (8 GiB per GPU)."""
    buf = tier.capacity_buffer
    if buf is None:
        return None
    if buf.service is not None:
        s = next(s for s in cfg.services_on(tier.name) if s.name == buf.service)
        return BufferChunk(s.gpus_per_replica, s.cpu_per_replica, s.memory_gib_per_replica, buf.replicas)
    gpus = buf.gpus or 1
    return BufferChunk(gpus, sizing.replica_vcpu(gpus), sizing.MIN_HOST_MEMORY_GIB_PER_GPU * gpus, buf.replicas)


def buffer_node_gpus(chunk: BufferChunk | None, largest_gpus: int) -> int:
    """GPUs of the whole nodes (of the tier's largest type) the buffer's chunks fill: Karpenter
    counts node capacity against the NodePool limit, not the pods' requests."""
    if chunk is None:
        return 0
    per_node = max(1, largest_gpus // chunk.gpus)
    return math.ceil(chunk.replicas / per_node) * largest_gpus
