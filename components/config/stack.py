"""The whole stack: every area's models, checked together by the cross-field rules."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from components.config import rules
from components.config.addons import AddonsConfig
from components.config.base import ConfigModel
from components.config.batch import BatchWorkerConfig
from components.config.cluster import ClusterConfig
from components.config.secrets import MAY_BE_SECRET
from components.config.serving import ModelServiceConfig
from components.config.tiers import GpuTier

Environment = Literal["dev", "staging", "prod"]


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

    @model_validator(mode="after")
    def _cross(self) -> StackConfig:
        rules.check_stack(self)
        return self

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
        """The on-demand NodePool's GPU limit: baselines, canaries, on-demand-only burst, and headroom."""
        t = self.tier(tier)
        if t.on_demand.gpu_limit is not None:
            return t.on_demand.gpu_limit
        burst_on_demand = sum(
            (s.scaling.max_replicas - s.scaling.min_replicas) * s.gpus_per_replica
            for s in self.services_on(tier)
            if s.burst_capacity == "onDemand" or not t.spot.enabled
        )
        return self.baseline_gpus(tier) + self.canary_gpus(tier) + burst_on_demand + t.on_demand.headroom_gpus
