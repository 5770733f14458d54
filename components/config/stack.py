"""The whole stack: every area's models, checked together by the cross-field rules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from components import sizing
from components.config import examples, rules
from components.config.addons import AddonsConfig
from components.config.base import ConfigModel, karpenter_seconds
from components.config.batch import BatchWorkerConfig
from components.config.cluster import ClusterConfig
from components.config.errors import rule_error
from components.config.levers import buffer_chunk, buffer_node_gpus, check_levers
from components.config.secrets import MAY_BE_SECRET
from components.config.serving import ModelServiceConfig
from components.config.tiers import GpuTier
from platform_facts import catalog

Environment = Literal["dev", "staging", "prod"]
# Rolling updates surge one replica per Deployment (render/vllm.MAX_SURGE; the render layer
# sits above config, so the figure is repeated here and a test holds them equal).
MAX_SURGE_REPLICAS = 1


@dataclass(frozen=True)
class OnDemandGpuLimit:
    """The terms of a tier's on-demand NodePool ``nvidia.com/gpu`` limit, each in GPUs.

    Karpenter counts node capacity against the limit and launches nothing that would pass it,
    so the limit must hold, at the same time: every replica the services can place on on-demand,
    one surge pod per on-demand Deployment (Pulumi updates independent Deployments in parallel),
    the partly filled nodes those pods leave, and one spare node of the tier's largest type,
    which drift replacement launches before it removes the old node.
    """

    baseline: int
    """Baseline replicas x GPUs per replica."""
    canary: int
    """Canary replicas x GPUs per replica."""
    burst_on_demand: int
    """Burst of services whose burstCapacity is onDemand (or whose tier has no spot pool)."""
    burst_fallback: int
    """Spot burst that may fall back to on-demand (burstFallback: onDemand), at its maximum."""
    surge: int
    """maxSurge replicas x GPUs per replica, for every Deployment that runs on on-demand."""
    batch: int
    """Batch jobs that may run on on-demand (capacity onDemand or spotPreferred), at maxReplicas."""
    packing: int
    """GPUs of whole nodes of the largest instance type beyond the pods' own (no sharing between services)."""
    replacement: int
    """One node of the largest instance type, for drift and expiry replacement."""
    headroom: int
    """gpuTiers[].onDemand.headroomGpus."""
    override: int | None = None
    """gpuTiers[].onDemand.gpuLimit when set: the limit, whatever the terms say."""
    buffer: int = 0
    """gpuTiers[].capacityBuffer: the whole nodes its chunks keep warm (buffer pods count against the limit)."""

    @property
    def computed(self) -> int:
        return (self.baseline + self.canary + self.burst_on_demand + self.burst_fallback + self.surge + self.batch
                + self.packing + self.replacement + self.headroom + self.buffer)

    @property
    def total(self) -> int:
        return self.override if self.override is not None else self.computed


class StackConfig(ConfigModel):
    # ``region`` comes from ``aws:region``, not from a key of the gpu-platform namespace.
    HIDDEN_KEYS: ClassVar[frozenset[str]] = frozenset({"region"})

    environment: Environment = Field(
        description="dev, staging or prod; policies key off it. Must equal the stack name or its first "
        "dash-separated part (stack prod-eu is prod) unless allowEnvironmentMismatch is true."
    )
    allow_environment_mismatch: bool = Field(
        default=False,
        description="Allow an environment that the stack name does not say (stack prod with environment dev "
        "would otherwise turn every prod rule off silently); the loader refuses the mismatch unless true.",
    )
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", description="From aws:region.")
    cluster: ClusterConfig = Field(description="The EKS cluster, its network and system nodes.")
    gpu_tiers: tuple[GpuTier, ...] = Field(min_length=1, description="GPU tiers: a GPU model and its NodePools.")
    addons: AddonsConfig = Field(default_factory=AddonsConfig, description="Cluster add-ons.")
    model_services: tuple[ModelServiceConfig, ...] = Field(default=(), description="vLLM services to run.")
    batch_workers: tuple[BatchWorkerConfig, ...] = Field(default=(), description="Queue-driven batch workers.")
    tags: Annotated[dict[str, str], MAY_BE_SECRET] = Field(default_factory=dict,
                                                           description="AWS tags on every taggable resource.")
    example_values: tuple[str, ...] = Field(
        default=(),
        description="Config paths (as error messages write them, e.g. modelServices[0].model.source) whose values "
        "are examples: offline synth lists them, a real deploy stops until each is set and removed from here.",
    )

    @model_validator(mode="after")
    def _cross(self) -> StackConfig:
        rules.check_stack(self)
        check_levers(self)
        self._check_node_grace()
        for i, path in enumerate(self.example_values):
            try:
                examples.resolve(self, path)
            except examples.PathError as exc:
                raise rule_error(("exampleValues", i), str(exc)) from None
        return self

    def _check_node_grace(self) -> None:
        """A node's terminationGracePeriod must outlast its pods' drain, or Karpenter deletes them
        at the start of the drain (their own grace cannot fit) and in-flight requests are cut."""
        for i, t in enumerate(self.gpu_tiers):
            node_grace = karpenter_seconds(t.termination_grace_period)
            for s in self.services_on(t.name):
                if node_grace <= s.drain.termination_grace_seconds:
                    raise rule_error(
                        ("gpuTiers", i, "terminationGracePeriod"),
                        f"{t.termination_grace_period} does not exceed service {s.name}'s pod grace of "
                        f"{s.drain.termination_grace_seconds} s (preStop + shutdownTimeout + margin); raise it")

    def tier(self, name: str) -> GpuTier:
        return next(t for t in self.gpu_tiers if t.name == name)

    def services_on(self, tier: str) -> tuple[ModelServiceConfig, ...]:
        return tuple(s for s in self.model_services if s.tier == tier)

    def baseline_gpus(self, tier: str) -> int:
        """GPUs the services' on-demand baselines take on this tier."""
        return sum(s.scaling.min_replicas * s.gpus_per_replica for s in self.services_on(tier))

    def canary_gpus(self, tier: str) -> int:
        """GPUs the services' canaries take on this tier (canaries run on on-demand, like baselines)."""
        return sum(s.canary.replicas * s.gpus_per_replica for s in self.services_on(tier) if s.canary is not None)

    def on_demand_gpu_limit(self, tier: str) -> int:
        """The on-demand NodePool's GPU limit (the one source: Karpenter's args and capacity.md)."""
        return self.on_demand_gpu_terms(tier).total

    def on_demand_gpu_terms(self, tier: str) -> OnDemandGpuLimit:
        """The on-demand limit, term by term (see ``OnDemandGpuLimit``)."""
        t = self.tier(tier)
        burst_on_demand = burst_fallback = surge = packing = 0
        largest = max((catalog.INSTANCE_TYPES[it] for it in t.instance_types), key=lambda it: (it.gpus, it.memory_gib))
        for s in self.services_on(tier):
            gpus, burst = s.gpus_per_replica, s.scaling.max_replicas - s.scaling.min_replicas
            burst_here = 0
            if s.burst_capacity == "onDemand" or not t.spot.enabled:
                burst_on_demand += burst * gpus
                burst_here = burst
            elif s.burst_fallback == "onDemand":
                burst_fallback += burst * gpus
                burst_here = burst
            deployments = ((s.scaling.min_replicas > 0) + (s.canary is not None) + (burst_here > 0))
            surge += deployments * MAX_SURGE_REPLICAS * gpus
            replicas = (s.scaling.min_replicas + (s.canary.replicas if s.canary else 0) + burst_here
                        + deployments * MAX_SURGE_REPLICAS)
            per_node = max(1, sizing.replicas_per_node(s, largest))
            packing += math.ceil(replicas / per_node) * largest.gpus - replicas * gpus
        # Batch jobs bin-pack like replicas; they are counted GPU for GPU (a job may share a node).
        batch = sum(b.max_replicas * b.gpus_per_job for b in self.batch_workers
                    if b.tier == tier and b.capacity != "spotOnly")
        return OnDemandGpuLimit(
            baseline=self.baseline_gpus(tier), canary=self.canary_gpus(tier), burst_on_demand=burst_on_demand,
            burst_fallback=burst_fallback, surge=surge, batch=batch, packing=packing, replacement=largest.gpus,
            headroom=t.on_demand.headroom_gpus, override=t.on_demand.gpu_limit,
            buffer=buffer_node_gpus(buffer_chunk(self, t), largest.gpus))
