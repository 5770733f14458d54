"""Models of GPU capacity: a tier per GPU model, each with an on-demand and a spot NodePool."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components import sizing
from components.config.base import DNS_LABEL, KARPENTER_DURATION, ConfigModel, karpenter_seconds
from components.config.errors import rule_error
from components.config.levers import CapacityBufferConfig, Reservations
from platform_facts import catalog


class DisruptionBudget(ConfigModel):
    nodes: str = Field(pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$", description="Nodes that may be disrupted at once.")
    reasons: tuple[Literal["Underutilized", "Empty", "Drifted"], ...] = Field(
        default=(), description="Disruption reasons this budget limits; empty means all."
    )
    schedule: str | None = Field(default=None, description="Cron (UTC) when this budget applies.")
    duration: str | None = Field(
        default=None, pattern=r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$",
        description="How long the budget applies from each schedule hit, e.g. 8h.",
    )
    keep_empty_nodes: bool = Field(
        default=False,
        description="Acknowledge that a scheduled nodes: 0 budget without reasons also stops Karpenter from "
        "removing empty nodes, so idle GPU nodes stay up (and billed) while it applies.",
    )

    @model_validator(mode="after")
    def _together(self) -> DisruptionBudget:
        if (self.schedule is None) != (self.duration is None):
            raise rule_error(("schedule",), "schedule and duration must be set together")
        freeze = self.nodes in ("0", "0%") and self.schedule is not None
        if freeze and not self.reasons and not self.keep_empty_nodes:
            raise rule_error(("reasons",), f"a scheduled nodes: {self.nodes} budget without reasons applies to every "
                             "reason, Empty included: idle GPU nodes stay up while it applies; list the reasons it "
                             "freezes (e.g. [Underutilized, Drifted]) or set keepEmptyNodes: true")
        if self.keep_empty_nodes and (self.reasons or not freeze):
            raise rule_error(("keepEmptyNodes",), "only acknowledges a scheduled nodes: 0 budget without reasons; "
                             "remove it")
        return self


class OnDemandPool(ConfigModel):
    enabled: bool = Field(default=True, description="Create the on-demand NodePool (holds service baselines).")
    weight: int = Field(default=100, ge=1, le=100, description="Karpenter weight; must exceed the spot pool's.")
    headroom_gpus: int = Field(default=0, ge=0, le=512, description="GPUs above the computed baselines.")
    gpu_limit: int | None = Field(
        default=None, ge=0, le=4096,
        description="Override the computed limit (sum of baseline and on-demand burst GPUs + headroom).",
    )


class SpotPool(ConfigModel):
    enabled: bool = Field(default=True, description="Create the spot NodePool for burst replicas.")
    weight: int = Field(default=10, ge=1, le=100, description="Karpenter weight; below the on-demand pool's.")
    gpu_limit: int = Field(default=8, ge=0, le=4096, description="nvidia.com/gpu limit of the spot pool.")


class TimeSlicing(ConfigModel):
    replicas: int = Field(ge=2, le=48, description="Shares advertised per physical GPU.")


class MigConfig(ConfigModel):
    strategy: Literal["single", "mixed"] = Field(
        default="single", description="GPU Operator MIG strategy (one profile size per GPU, or several)."
    )
    profiles: dict[str, int] = Field(
        min_length=1, description="MIG profile -> instances per GPU, e.g. {'1g.10gb': 7}."
    )

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, v: dict[str, int]) -> dict[str, int]:
        for name, count in v.items():
            if not re.fullmatch(r"[1-7]g\.[0-9]+gb", name):
                raise rule_error((name,), "is not a MIG profile such as 1g.10gb or 3g.40gb")
            if not 1 <= count <= 7:
                raise rule_error((name,), f"{count} instances per GPU; allowed 1..7")
        return v

    @model_validator(mode="after")
    def _single(self) -> MigConfig:
        if self.strategy == "single" and len(self.profiles) > 1:
            raise rule_error(("profiles",),
                             f"strategy single allows one profile size, got {sorted(self.profiles)}; use mixed")
        return self


class GpuTier(ConfigModel):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=20)] = Field(description="Tier name, e.g. l40s.")
    gpu: Literal[tuple(catalog.GPUS)] = Field(  # type: ignore[valid-type]
        description="GPU model (karpenter.k8s.aws/instance-gpu-name)."
    )
    instance_types: tuple[str, ...] = Field(min_length=1, description="Instance types Karpenter may launch.")
    ami_alias: str = Field(
        default="al2023@latest", pattern=r"^al2023@(latest|v[0-9]{8})$",
        description="EC2NodeClass AMI alias; pin a version (al2023@v20260801) in prod.",
    )
    root_volume_gib: int = Field(default=100, ge=20, le=16000, description="Encrypted gp3 root volume of each node.")
    metadata_hop_limit: int = Field(default=1, ge=1, le=2, description="IMDSv2 hop limit (2 only if a pod needs IMDS).")
    on_demand: OnDemandPool = Field(default_factory=OnDemandPool, description="The on-demand NodePool (baselines).")
    spot: SpotPool = Field(default_factory=SpotPool, description="The spot NodePool (burst).")
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        default="WhenEmpty", description="When Karpenter may remove or replace a node of this tier."
    )
    consolidate_after: str = Field(default="10m", pattern=KARPENTER_DURATION, description=">= 5m for GPU pools.")
    expire_after: str = Field(
        default="720h", pattern=r"^(([0-9]+(s|m|h))+|Never)$",
        description="Node lifetime before replacement, or Never. Expiry is forceful: disruption budgets do not "
        "hold it back (not even a nodes: 0 freeze) and no replacement is launched first; the node drains at "
        "once, paced only by PodDisruptionBudgets, and is gone after at most terminationGracePeriod.",
    )
    termination_grace_period: str = Field(
        default="1h", pattern=KARPENTER_DURATION,
        description="NodePool terminationGracePeriod: how long a draining node may wait for its pods (blocking "
        "PDBs included) before they are deleted and the instance terminated; must exceed every pod's own "
        "terminationGracePeriodSeconds. Changing it drifts the tier's existing nodes.",
    )
    disruption_budgets: tuple[DisruptionBudget, ...] = Field(
        default=(DisruptionBudget(nodes="1"),), min_length=1, max_length=50,
        description="Karpenter disruption budgets of the tier's NodePools.",
    )
    time_slicing: TimeSlicing | None = Field(default=None, description="Share each GPU by time-slicing.")
    mig: MigConfig | None = Field(default=None, description="Partition each GPU with MIG (A100/H100 class).")
    capacity_buffer: CapacityBufferConfig | None = Field(
        default=None, description="Warm spare GPU capacity on the on-demand pool for burst replicas.")
    reservations: Reservations | None = Field(
        default=None, description="Capacity reservations (ODCRs, Capacity Blocks) the on-demand pool prefers.")

    @model_validator(mode="after")
    def _tier(self) -> GpuTier:
        for i, it in enumerate(self.instance_types):
            fact = catalog.INSTANCE_TYPES.get(it)
            if fact is None:
                raise rule_error(("instanceTypes", i),
                                 f"{it!r} is not in the catalog; known: {', '.join(catalog.INSTANCE_TYPES)}")
            if fact.gpu != self.gpu:
                raise rule_error(("instanceTypes", i), f"{it} has {fact.gpu} GPUs, not {self.gpu}")
        if karpenter_seconds(self.consolidate_after) < 300:
            raise rule_error(("consolidateAfter",),
                             f"{self.consolidate_after} is under 5m; GPU nodes take minutes to come back")
        self._check_pools()
        if self.mig and not catalog.GPUS[self.gpu].mig_capable:
            capable = ", ".join(g for g, f in catalog.GPUS.items() if f.mig_capable)
            raise rule_error(("mig",), f"{self.gpu} does not support MIG; only {capable} do")
        if self.mig and self.time_slicing:
            raise rule_error(("timeSlicing",), "time-slicing and MIG cannot share a tier; pick one")
        return self

    def _check_pools(self) -> None:
        if not self.on_demand.enabled and not self.spot.enabled:
            raise rule_error(("onDemand", "enabled"), "a tier needs at least one of onDemand and spot")
        if self.on_demand.enabled and self.spot.enabled and self.on_demand.weight <= self.spot.weight:
            raise rule_error(("spot", "weight"), f"{self.spot.weight} must be below onDemand.weight {self.on_demand.weight}")

    @property
    def max_gpus_per_node(self) -> int:
        return max(catalog.INSTANCE_TYPES[t].gpus for t in self.instance_types)

    @property
    def gpu_gib(self) -> float:
        """GPU memory per GPU: the smallest of the tier's instance types (Karpenter may launch any)."""
        return min(sizing.gpu_gib(t) for t in self.instance_types)
