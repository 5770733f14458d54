"""Typed stack configuration: plain data, validated once, frozen.

A stack file (``stacks/Pulumi.<env>.yaml``) holds ``aws:region`` and the keys of the
``gpu-platform`` namespace; :func:`load_stack_config` turns them into a :class:`StackConfig`
or raises :class:`ConfigError` with one line per problem, each naming the config path
(camelCase, as written in the stack file), the bad value and what is allowed.

Every default lives here, once, in a field. Components never re-validate or re-default.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from platform_facts import catalog
from platform_facts.aws import KUBERNETES_VERSIONS, SPOT_NOTICE_SECONDS

NAMESPACE = "gpu-platform"

Environment = Literal["dev", "staging", "prod"]
# Karpenter's duration pattern for expireAfter / consolidateAfter (NodePool CRD v1.14.1).
KARPENTER_DURATION = r"^([0-9]+(s|m|h))+$"
# Prometheus duration (model.ParseDuration): units ms, s, m, h, d, w, y.
PROMETHEUS_DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# vLLM needs room for the KV cache and activations beyond the weights on every GPU.
MIN_KV_CACHE_GIB_PER_GPU = 2.0

_M = typing.TypeVar("_M", bound="_Model")
DnsName = Annotated[str, Field(pattern=DNS_LABEL, max_length=40)]
ImageRef = Annotated[str, Field(min_length=1, max_length=255)]


class ConfigError(Exception):
    """A stack configuration that cannot be used; ``messages`` has one line per problem."""

    def __init__(self, messages: list[str]):
        self.messages = messages
        super().__init__("\n".join(messages))


def _fail(path: str, message: str) -> ValueError:
    """An error for ``path`` (relative to the validated model, or absolute at the top)."""
    return ValueError(f"@{path}: {message}")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )


def karpenter_seconds(duration: str) -> int:
    """Seconds in a Karpenter duration such as ``1h30m``."""
    unit = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * unit[u] for n, u in re.findall(r"([0-9]+)(s|m|h)", duration))


# --------------------------------------------------------------------------- cluster


class ExistingVpc(_Model):
    """Use a VPC you already have instead of creating one."""

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]+$", description="ID of the VPC.")
    private_subnet_ids: tuple[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")], ...] = Field(
        min_length=2, description="Private subnets for nodes, in at least two zones."
    )
    public_subnet_ids: tuple[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")], ...] = Field(
        default=(), description="Public subnets for internet-facing load balancers (optional)."
    )


class NetworkConfig(_Model):
    cidr: str = Field(default="10.0.0.0/16", description="VPC CIDR block (/16 to /20).")
    availability_zones: int = Field(default=3, ge=2, le=6, description="Zones to span.")
    nat_gateways: Literal["single", "perAz"] = Field(
        default="single",
        description="One shared NAT gateway (cheap, one zone's outage cuts egress) or one per zone.",
    )
    existing: ExistingVpc | None = Field(
        default=None, description="Use this VPC and its subnets instead of creating a VPC."
    )

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an IPv4 CIDR such as 10.0.0.0/16") from None
        if not 16 <= net.prefixlen <= 20:
            raise ValueError(f"{v!r}: the prefix must be /16 to /20 to fit the node subnets")
        return v


class EndpointConfig(_Model):
    private_access: bool = Field(default=True, description="Reach the API server from inside the VPC.")
    public_access: bool = Field(default=True, description="Expose the API server publicly.")
    public_access_cidrs: tuple[str, ...] = Field(
        default=(), description="CIDRs allowed on the public endpoint; empty means 0.0.0.0/0."
    )
    allow_public_from_anywhere: bool = Field(
        default=False,
        description="Allow a public endpoint open to 0.0.0.0/0 in prod (refused unless true).",
    )

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, cidr in enumerate(v):
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise _fail(f"[{i}]", f"{cidr!r} is not a CIDR") from None
        return v

    @property
    def open_to_world(self) -> bool:
        return self.public_access and (not self.public_access_cidrs or "0.0.0.0/0" in self.public_access_cidrs)

    @model_validator(mode="after")
    def _consistent(self) -> EndpointConfig:
        if not self.public_access and not self.private_access:
            raise _fail("publicAccess", "false with privateAccess false leaves no way to reach the API server")
        if self.public_access_cidrs and not self.public_access:
            raise _fail("publicAccessCidrs", "set only when publicAccess is true")
        return self


class SystemNodesConfig(_Model):
    """The managed node group that runs the controllers (tainted CriticalAddonsOnly)."""

    instance_types: tuple[str, ...] = Field(default=("m7i.xlarge",), min_length=1)
    min_size: int = Field(default=2, ge=2, le=20, description="At least 2 (Karpenter runs 2 replicas).")
    desired_size: int = Field(default=2, ge=2, le=20)
    max_size: int = Field(default=4, ge=2, le=20)
    disk_size_gib: int = Field(default=50, ge=20, le=1000)

    @model_validator(mode="after")
    def _sizes(self) -> SystemNodesConfig:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise _fail(
                "desiredSize",
                f"{self.desired_size} must lie between minSize {self.min_size} and maxSize {self.max_size}",
            )
        return self


class ClusterConfig(_Model):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=32)] = Field(
        description="EKS cluster name; also prefixes IAM roles and the interruption queue (<= 32)."
    )
    kubernetes_version: Literal[KUBERNETES_VERSIONS] = Field(  # type: ignore[valid-type]
        default="1.35", description="EKS control-plane version."
    )
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    admin_role_arns: tuple[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")], ...] = (
        Field(default=(), description="Extra IAM roles given cluster-admin through access entries.")
    )
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    system_nodes: SystemNodesConfig = Field(default_factory=SystemNodesConfig)
    create_spot_service_linked_role: bool = Field(
        default=False, description="Create AWSServiceRoleForEC2Spot (exists once per account)."
    )


# --------------------------------------------------------------------------- GPU tiers


class DisruptionBudget(_Model):
    nodes: str = Field(pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$", description="Nodes that may be disrupted at once.")
    reasons: tuple[Literal["Underutilized", "Empty", "Drifted"], ...] = ()
    schedule: str | None = Field(default=None, description="Cron (UTC) when this budget applies.")
    duration: str | None = Field(default=None, pattern=r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$")

    @model_validator(mode="after")
    def _together(self) -> DisruptionBudget:
        if (self.schedule is None) != (self.duration is None):
            raise _fail("schedule", "schedule and duration must be set together")
        return self


class OnDemandPool(_Model):
    enabled: bool = Field(default=True, description="Create the on-demand NodePool (holds service baselines).")
    weight: int = Field(default=100, ge=1, le=100, description="Karpenter weight; must exceed the spot pool's.")
    headroom_gpus: int = Field(default=0, ge=0, le=512, description="GPUs above the computed baselines.")
    gpu_limit: int | None = Field(
        default=None, ge=0, le=4096,
        description="Override the computed limit (sum of baseline and on-demand burst GPUs + headroom).",
    )


class SpotPool(_Model):
    enabled: bool = Field(default=True, description="Create the spot NodePool for burst replicas.")
    weight: int = Field(default=10, ge=1, le=100)
    gpu_limit: int = Field(default=8, ge=0, le=4096, description="nvidia.com/gpu limit of the spot pool.")


class TimeSlicing(_Model):
    replicas: int = Field(ge=2, le=48, description="Shares advertised per physical GPU.")


class MigConfig(_Model):
    strategy: Literal["single", "mixed"] = "single"
    profiles: dict[str, int] = Field(
        min_length=1, description="MIG profile -> instances per GPU, e.g. {'1g.10gb': 7}."
    )

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, v: dict[str, int]) -> dict[str, int]:
        for name, count in v.items():
            if not re.fullmatch(r"[1-7]g\.[0-9]+gb", name):
                raise _fail(name, "is not a MIG profile such as 1g.10gb or 3g.40gb")
            if not 1 <= count <= 7:
                raise _fail(name, f"{count} instances per GPU; allowed 1..7")
        return v

    @model_validator(mode="after")
    def _single(self) -> MigConfig:
        if self.strategy == "single" and len(self.profiles) > 1:
            raise _fail("profiles", f"strategy single allows one profile size, got {sorted(self.profiles)}; use mixed")
        return self


class GpuTier(_Model):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=20)] = Field(description="Tier name, e.g. l40s.")
    gpu: Literal[tuple(catalog.GPUS)] = Field(  # type: ignore[valid-type]
        description="GPU model (karpenter.k8s.aws/instance-gpu-name)."
    )
    instance_types: tuple[str, ...] = Field(min_length=1, description="Instance types Karpenter may launch.")
    ami_alias: str = Field(
        default="al2023@latest", pattern=r"^al2023@(latest|v[0-9]{8})$",
        description="EC2NodeClass AMI alias; pin a version (al2023@v20260801) in prod.",
    )
    root_volume_gib: int = Field(default=100, ge=20, le=16000)
    metadata_hop_limit: int = Field(default=1, ge=1, le=2, description="IMDSv2 hop limit (2 only if a pod needs IMDS).")
    on_demand: OnDemandPool = Field(default_factory=OnDemandPool)
    spot: SpotPool = Field(default_factory=SpotPool)
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = "WhenEmpty"
    consolidate_after: str = Field(default="10m", pattern=KARPENTER_DURATION, description=">= 5m for GPU pools.")
    expire_after: str = Field(default="720h", pattern=r"^(([0-9]+(s|m|h))+|Never)$")
    disruption_budgets: tuple[DisruptionBudget, ...] = Field(
        default=(DisruptionBudget(nodes="1"),), min_length=1, max_length=50
    )
    time_slicing: TimeSlicing | None = None
    mig: MigConfig | None = None

    @model_validator(mode="after")
    def _tier(self) -> GpuTier:
        for i, it in enumerate(self.instance_types):
            fact = catalog.INSTANCE_TYPES.get(it)
            if fact is None:
                raise _fail(f"instanceTypes[{i}]", f"{it!r} is not in the catalog; known: {', '.join(catalog.INSTANCE_TYPES)}")
            if fact.gpu != self.gpu:
                raise _fail(f"instanceTypes[{i}]", f"{it} has {fact.gpu} GPUs, not {self.gpu}")
        if karpenter_seconds(self.consolidate_after) < 300:
            raise _fail("consolidateAfter", f"{self.consolidate_after} is under 5m; GPU nodes take minutes to come back")
        if not self.on_demand.enabled and not self.spot.enabled:
            raise _fail("onDemand.enabled", "a tier needs at least one of onDemand and spot")
        if self.on_demand.enabled and self.spot.enabled and self.on_demand.weight <= self.spot.weight:
            raise _fail("spot.weight", f"{self.spot.weight} must be below onDemand.weight {self.on_demand.weight}")
        if self.mig and not catalog.GPUS[self.gpu].mig_capable:
            capable = ", ".join(g for g, f in catalog.GPUS.items() if f.mig_capable)
            raise _fail("mig", f"{self.gpu} does not support MIG; only {capable} do")
        if self.mig and self.time_slicing:
            raise _fail("timeSlicing", "time-slicing and MIG cannot share a tier; pick one")
        return self

    @property
    def max_gpus_per_node(self) -> int:
        return max(catalog.INSTANCE_TYPES[t].gpus for t in self.instance_types)

    @property
    def gpu_gib(self) -> float:
        return catalog.GPUS[self.gpu].mib / 1024


# --------------------------------------------------------------------------- add-ons


class MonitoringConfig(_Model):
    retention: str = Field(default="15d", pattern=PROMETHEUS_DURATION, description="Prometheus retention.")
    storage_gib: int = Field(default=50, ge=10, le=16000, description="gp3 PVC for Prometheus.")
    grafana_enabled: bool = True
    scrape_interval_seconds: int = Field(default=15, ge=5, le=120)


class GpuOperatorConfig(_Model):
    dcgm_exporter: bool = Field(default=True, description="Export GPU metrics (DCGM) to Prometheus.")


class KedaConfig(_Model):
    operator_replicas: int = Field(default=2, ge=1, le=5)


class AddonsConfig(_Model):
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    gpu_operator: GpuOperatorConfig = Field(default_factory=GpuOperatorConfig)
    keda: KedaConfig = Field(default_factory=KedaConfig)


# --------------------------------------------------------------------------- model services


class SecretRef(_Model):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=253)]
    key: str = Field(min_length=1, max_length=253)


class ModelSpec(_Model):
    id: str = Field(min_length=1, description="Model id as clients name it, e.g. meta-llama/Llama-3.1-8B-Instruct.")
    source: str = Field(
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+|hf://[^\s/]+/[^\s]+)$",
        description="s3://bucket/prefix (synced to the node cache) or hf://org/name.",
    )
    parameters_billion: float = Field(gt=0, le=2000, description="Parameters, for memory and load-time sizing.")
    dtype: Literal[tuple(catalog.DTYPE_BYTES)] = "bfloat16"  # type: ignore[valid-type]

    @property
    def weights_gib(self) -> float:
        return catalog.weights_gib(self.parameters_billion, self.dtype)


class Slo(_Model):
    ttft_p95_seconds: float = Field(default=2.0, gt=0, le=120, description="Time-to-first-token target (p95).")
    p99_generation_seconds: float = Field(default=30.0, gt=0, le=600, description="p99 request duration.")
    attainment_target: float = Field(default=0.95, gt=0, le=1, description="Share of requests within the TTFT SLO.")


class ActiveHours(_Model):
    """When a scale-to-zero service keeps one replica up (KEDA cron trigger)."""

    timezone: str = Field(default="Etc/UTC", min_length=1, description="IANA time zone.")
    start: str = Field(default="0 8 * * 1-5", pattern=r"^\S+( \S+){4}$", description="Cron: wake up.")
    end: str = Field(default="0 20 * * 1-5", pattern=r"^\S+( \S+){4}$", description="Cron: allow scale to zero again.")


class Scaling(_Model):
    mode: Literal["keda", "hpa"] = Field(default="keda", description="KEDA ScaledObject or a plain HPA on the adapter.")
    min_replicas: int = Field(default=1, ge=0, le=64, description="Baseline replicas, always on on-demand capacity.")
    max_replicas: int = Field(default=2, ge=1, le=64, description="Baseline + burst replicas at most.")
    scale_to_zero: bool = Field(default=False, description="Allow 0 replicas when idle (needs minReplicas 0).")
    target_waiting_per_replica: float = Field(default=5, gt=0, le=1000, description="Queued requests per replica.")
    kv_cache_target: float = Field(default=0.8, gt=0, le=1, description="KV-cache usage that adds a replica.")
    ttft_trigger: bool = Field(default=True, description="Also scale on TTFT p95 against the SLO.")
    polling_interval_seconds: int = Field(default=15, ge=5, le=300)
    cooldown_seconds: int = Field(default=300, ge=30, le=7200, description="KEDA wait before 1 -> 0.")
    scale_down_stabilization_seconds: int = Field(default=300, ge=0, le=3600)
    scale_up_pods_per_minute: int = Field(default=2, ge=1, le=64)
    scale_down_pods_per_period: int = Field(default=1, ge=1, le=64)
    scale_down_period_seconds: int = Field(default=120, ge=15, le=1800)
    keep_alive: bool = Field(default=True, description="Trigger on running requests so in-flight work keeps a replica.")
    active_hours: ActiveHours | None = Field(default=None, description="Hours when one replica stays up (scale to zero).")
    wake_query: str | None = Field(
        default=None, min_length=1,
        description="PromQL on demand seen outside vLLM (gateway or client requests); > 0 wakes a service at zero.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.max_replicas < self.min_replicas:
            raise _fail("maxReplicas", f"{self.max_replicas} is below minReplicas {self.min_replicas}")
        if self.scale_to_zero and self.min_replicas != 0:
            raise _fail("scaleToZero", f"true needs minReplicas 0, got {self.min_replicas}")
        if self.min_replicas == 0 and not self.scale_to_zero:
            raise _fail("minReplicas", "0 needs scaleToZero: true (say it explicitly)")
        if self.scale_to_zero and not self.keep_alive:
            raise _fail("keepAlive", "scale to zero without a keep-alive trigger can drop in-flight requests; set true")
        if self.scale_to_zero and self.active_hours is None and self.wake_query is None:
            raise _fail("scaleToZero", "nothing could wake the service at zero replicas (vLLM's metrics vanish with "
                        "its pods); set activeHours and/or wakeQuery")
        return self


class Drain(_Model):
    pre_stop_seconds: int = Field(default=15, ge=0, le=120, description="Sleep so endpoints drop the pod before SIGTERM.")
    shutdown_timeout_seconds: int = Field(default=60, ge=1, le=3600, description="vLLM --shutdown-timeout.")
    margin_seconds: int = Field(default=10, ge=0, le=120)

    @property
    def termination_grace_seconds(self) -> int:
        return self.pre_stop_seconds + self.shutdown_timeout_seconds + self.margin_seconds


class Cache(_Model):
    medium: Literal["hostPath", "emptyDir"] = Field(
        default="hostPath", description="hostPath on the NVMe RAID (survives restarts) or a per-pod emptyDir."
    )
    size_gib: int = Field(default=200, ge=10, le=30000)


class Canary(_Model):
    """A second revision behind the same Service; traffic share follows the replica ratio."""

    image: ImageRef | None = Field(default=None, description="vLLM image of the canary (default: the pinned one).")
    model: ModelSpec | None = Field(default=None, description="Model of the canary (default: the service's).")
    extra_args: tuple[str, ...] = Field(default=(), description="vllm serve arguments of the canary.")
    replicas: int = Field(default=1, ge=1, le=8)
    max_share_percent: int = Field(default=25, ge=1, le=50, description="Cap on canary / (baseline + canary).")


class ModelServiceConfig(_Model):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=30)] = Field(description="Service name (never 'vllm').")
    namespace: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = "inference"
    model: ModelSpec
    tier: str = Field(description="Name of a gpuTiers entry.")
    tensor_parallel_size: int = Field(default=1, ge=1, le=8)
    gpu_memory_utilization: float = Field(default=0.90, ge=0.5, le=0.98)
    max_num_seqs: int = Field(default=256, ge=1, le=4096)
    max_model_len: int = Field(default=8192, ge=256, le=1_048_576)
    extra_args: tuple[str, ...] = Field(default=(), description="Appended to vllm serve's arguments.")
    hf_token_secret: SecretRef | None = Field(default=None, description="Secret holding a Hugging Face token.")
    burst_capacity: Literal["spot", "onDemand"] = Field(
        default="spot", description="Burst replicas prefer spot (falling back to on-demand) or stay on-demand."
    )
    slo: Slo = Field(default_factory=Slo)
    scaling: Scaling = Field(default_factory=Scaling)
    drain: Drain = Field(default_factory=Drain)
    cache: Cache = Field(default_factory=Cache)
    pre_pull: bool = Field(default=False, description="DaemonSet that pulls the image and warms the cache on tier nodes.")
    pending_alert_minutes: int = Field(default=10, ge=1, le=120, description="Alert when GPU pods stay Pending this long.")
    canary: Canary | None = None

    @field_validator("name")
    @classmethod
    def _not_vllm(cls, v: str) -> str:
        if v == "vllm":
            raise ValueError("'vllm' is refused: Kubernetes would inject VLLM_PORT=tcp://..., which vLLM rejects")
        return v

    @model_validator(mode="after")
    def _drain(self) -> ModelServiceConfig:
        need = math.ceil(2 * self.slo.p99_generation_seconds)
        if self.drain.shutdown_timeout_seconds < need:
            raise _fail(
                "drain.shutdownTimeoutSeconds",
                f"{self.drain.shutdown_timeout_seconds} is below 2 x slo.p99GenerationSeconds = {need}",
            )
        if self.tensor_parallel_size & (self.tensor_parallel_size - 1):
            raise _fail("tensorParallelSize", f"{self.tensor_parallel_size}; allowed 1, 2, 4 or 8")
        if self.scaling.mode == "hpa" and self.scaling.scale_to_zero:
            raise _fail("scaling.mode", "hpa cannot scale to zero; use keda or set scaleToZero false")
        if self.scaling.mode == "hpa" and self.scaling.max_replicas <= self.scaling.min_replicas:
            raise _fail("scaling.maxReplicas", "hpa mode scales burst replicas above the baseline; set maxReplicas > minReplicas")
        if self.pre_pull and self.cache.medium != "hostPath":
            raise _fail("prePull", "warms a node cache, so it needs cache.medium hostPath (an emptyDir dies with its pod)")
        if self.canary is not None:
            share = 100 * self.canary.replicas / (self.scaling.min_replicas + self.canary.replicas)
            if share > self.canary.max_share_percent:
                raise _fail("canary.replicas", f"{self.canary.replicas} canary replicas next to {self.scaling.min_replicas} "
                            f"baseline replicas take {share:.0f}% of traffic; the cap is {self.canary.max_share_percent}%")
        return self

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size

    @property
    def cpu_per_replica(self) -> int:
        """vCPUs requested per replica: 4 per GPU (tokenization, scheduling, detokenization)."""
        return 4 * self.gpus_per_replica

    @property
    def memory_gib_per_replica(self) -> int:
        """Host memory per replica: at least 8 GiB per GPU, and enough to stage the weights
        through host memory while loading (weights x 1.2 + 4 GiB)."""
        return max(8 * self.gpus_per_replica, math.ceil(self.model.weights_gib * 1.2) + 4)

    @property
    def uses_spot(self) -> bool:
        return self.burst_capacity == "spot" and self.scaling.max_replicas > self.scaling.min_replicas


# --------------------------------------------------------------------------- batch


class ExistingRedis(_Model):
    address_secret: SecretRef = Field(description="Secret key holding host:port of the Redis endpoint.")
    password_secret: SecretRef = Field(description="Secret key holding the Redis password.")
    tls: bool = True


class BatchWorkerConfig(_Model):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=30)]
    namespace: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = "batch"
    image: ImageRef = Field(description="Worker image with an explicit tag or digest.")
    tier: str
    gpus_per_job: int = Field(default=1, ge=1, le=8)
    cpu_per_job: int = Field(default=4, ge=1, le=192, description="vCPUs per job pod.")
    memory_gib_per_job: int = Field(default=16, ge=1, le=2048, description="Host memory per job pod.")
    model: ModelSpec | None = Field(default=None, description="Model to pre-load into the node cache.")
    queue_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9:_.-]+$", max_length=128)] | None = Field(
        default=None, description="Redis list; defaults to the worker name."
    )
    list_length: int = Field(default=5, ge=1, le=10_000, description="Queued items per job.")
    activation_list_length: int = Field(default=0, ge=0, le=10_000)
    min_replicas: int = Field(default=0, ge=0, le=0, description="Jobs scale from zero.")
    max_replicas: int = Field(default=4, ge=1, le=256)
    polling_interval_seconds: int = Field(default=30, ge=5, le=600)
    backoff_limit: int = Field(default=3, ge=0, le=20)
    active_deadline_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    capacity: Literal["spotPreferred", "spotOnly", "onDemand"] = "spotPreferred"
    producer_namespaces: tuple[Annotated[str, Field(pattern=DNS_LABEL)], ...] = ()
    redis: ExistingRedis | None = Field(default=None, description="Use an existing Redis instead of deploying one.")
    redis_storage_gib: int = Field(default=10, ge=1, le=1000, description="gp3 volume of the in-cluster Redis.")

    @field_validator("image")
    @classmethod
    def _tagged(cls, v: str) -> str:
        if "@sha256:" in v:
            return v
        last = v.rsplit("/", 1)[-1]
        if ":" not in last:
            raise ValueError(f"{v!r} has no tag; pin a version such as {v}:1.2.3")
        if last.endswith(":latest"):
            raise ValueError(f"{v!r} uses :latest; pin a version")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> BatchWorkerConfig:
        if self.max_replicas < self.min_replicas:
            raise _fail("maxReplicas", f"{self.max_replicas} is below minReplicas {self.min_replicas}")
        if self.activation_list_length >= self.list_length * self.max_replicas:
            raise _fail("activationListLength", f"{self.activation_list_length} would never let a job start "
                        f"(listLength {self.list_length} x maxReplicas {self.max_replicas})")
        return self

    @property
    def queue(self) -> str:
        return self.queue_name or self.name


# --------------------------------------------------------------------------- stack


class StackConfig(_Model):
    environment: Environment = Field(description="dev, staging or prod; policies key off it.")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", description="From aws:region.")
    cluster: ClusterConfig
    gpu_tiers: tuple[GpuTier, ...] = Field(min_length=1)
    addons: AddonsConfig = Field(default_factory=AddonsConfig)
    model_services: tuple[ModelServiceConfig, ...] = ()
    batch_workers: tuple[BatchWorkerConfig, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict, description="AWS tags on every taggable resource.")

    @model_validator(mode="after")
    def _cross(self) -> StackConfig:
        _unique("gpuTiers", [t.name for t in self.gpu_tiers])
        _unique("modelServices", [s.name for s in self.model_services])
        _unique("batchWorkers", [b.name for b in self.batch_workers])
        tiers = {t.name: t for t in self.gpu_tiers}
        prod = self.environment == "prod"
        if prod and self.cluster.endpoint.open_to_world and not self.cluster.endpoint.allow_public_from_anywhere:
            raise _fail(
                "cluster.endpoint.publicAccessCidrs",
                "prod refuses a public endpoint open to 0.0.0.0/0; list your CIDRs, "
                "set publicAccess false, or set allowPublicFromAnywhere true",
            )
        strategies = {t.mig.strategy for t in self.gpu_tiers if t.mig is not None}
        if len(strategies) > 1:
            first = next(i for i, t in enumerate(self.gpu_tiers) if t.mig is not None)
            raise _fail(f"gpuTiers[{first}].mig.strategy",
                        "MIG tiers disagree on strategy; the GPU Operator applies one strategy cluster-wide")
        for i, t in enumerate(self.gpu_tiers):
            if prod and t.ami_alias.endswith("@latest"):
                raise _fail(f"gpuTiers[{i}].amiAlias", f"{t.ami_alias}: prod pins an AMI version, e.g. al2023@v20260801")
        for i, s in enumerate(self.model_services):
            _check_service(f"modelServices[{i}]", s, tiers, prod)
        for i, b in enumerate(self.batch_workers):
            tier = _tier_of(f"batchWorkers[{i}]", b.tier, tiers)
            if b.gpus_per_job > tier.max_gpus_per_node:
                raise _fail(f"batchWorkers[{i}].gpusPerJob", f"{b.gpus_per_job} exceeds the {tier.max_gpus_per_node} GPUs of the largest {tier.name} instance")
            _check_job_fits(f"batchWorkers[{i}]", b, tier)
            if b.capacity == "spotOnly" and not tier.spot.enabled:
                raise _fail(f"batchWorkers[{i}].capacity", f"spotOnly but tier {tier.name} has no spot pool")
            if b.capacity == "onDemand" and not tier.on_demand.enabled:
                raise _fail(f"batchWorkers[{i}].capacity", f"onDemand but tier {tier.name} has no on-demand pool")
        for i, t in enumerate(self.gpu_tiers):
            if t.on_demand.gpu_limit is not None and t.on_demand.gpu_limit < self.baseline_gpus(t.name):
                raise _fail(
                    f"gpuTiers[{i}].onDemand.gpuLimit",
                    f"{t.on_demand.gpu_limit} is below the {self.baseline_gpus(t.name)} GPUs the services' "
                    "baselines need on this tier; raise it or drop it to use the computed limit",
                )
        return self

    def tier(self, name: str) -> GpuTier:
        return next(t for t in self.gpu_tiers if t.name == name)

    def services_on(self, tier: str) -> tuple[ModelServiceConfig, ...]:
        return tuple(s for s in self.model_services if s.tier == tier)

    def baseline_gpus(self, tier: str) -> int:
        """GPUs the services' on-demand baselines take on this tier."""
        return sum(s.scaling.min_replicas * s.gpus_per_replica for s in self.services_on(tier))

    def on_demand_gpu_limit(self, tier: str) -> int:
        """The on-demand NodePool's GPU limit: baselines, on-demand-only burst, and headroom."""
        t = self.tier(tier)
        if t.on_demand.gpu_limit is not None:
            return t.on_demand.gpu_limit
        burst_on_demand = sum(
            (s.scaling.max_replicas - s.scaling.min_replicas) * s.gpus_per_replica
            for s in self.services_on(tier)
            if s.burst_capacity == "onDemand" or not t.spot.enabled
        )
        return self.baseline_gpus(tier) + burst_on_demand + t.on_demand.headroom_gpus


def _unique(path: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, n in enumerate(names):
        if n in seen:
            raise _fail(f"{path}[{i}].name", f"{n!r} is used twice; names must be unique")
        seen.add(n)


def _tier_of(path: str, name: str, tiers: dict[str, GpuTier]) -> GpuTier:
    if name not in tiers:
        raise _fail(f"{path}.tier", f"{name!r} is not a gpuTiers name; defined: {', '.join(tiers)}")
    return tiers[name]


def _check_service(path: str, s: ModelServiceConfig, tiers: dict[str, GpuTier], prod: bool) -> None:
    tier = _tier_of(path, s.tier, tiers)
    tp = s.tensor_parallel_size
    if tp > tier.max_gpus_per_node:
        raise _fail(
            f"{path}.tensorParallelSize",
            f"{tp} exceeds the {tier.max_gpus_per_node} GPUs of the largest {tier.name} instance; "
            "tensor parallelism stays within one node",
        )
    per_gpu = s.model.weights_gib / tp
    usable = tier.gpu_gib * s.gpu_memory_utilization - MIN_KV_CACHE_GIB_PER_GPU
    if per_gpu > usable:
        fits = [n for n in (1, 2, 4, 8) if n <= tier.max_gpus_per_node and s.model.weights_gib / n <= usable]
        hint = f"use tensorParallelSize >= {fits[0]}" if fits else "use a tier with larger GPUs"
        raise _fail(
            f"{path}.model",
            f"{s.model.parameters_billion:g}B at {s.model.dtype} needs ~{s.model.weights_gib:.0f} GiB, "
            f"{per_gpu:.1f} GiB per GPU at tensorParallelSize {tp}; a {tier.gpu} GPU offers "
            f"{tier.gpu_gib:.1f} GiB x {s.gpu_memory_utilization} minus {MIN_KV_CACHE_GIB_PER_GPU:g} GiB KV cache "
            f"= {usable:.1f} GiB; {hint}",
        )
    fits = [it for it in tier.instance_types if replica_fits(s, catalog.INSTANCE_TYPES[it])]
    if not fits:
        raise _fail(
            f"{path}.tier",
            f"no {tier.name} instance type fits one replica ({tp} GPU, {s.cpu_per_replica} vCPU, "
            f"{s.memory_gib_per_replica} GiB after system reservations); add a larger type to instanceTypes",
        )
    if s.scaling.min_replicas > 0 and not tier.on_demand.enabled:
        raise _fail(
            f"{path}.tier",
            f"{tier.name} has no on-demand pool, but the service's {s.scaling.min_replicas} baseline "
            "replicas must never depend on spot; enable gpuTiers[].onDemand or pick another tier",
        )
    if s.burst_capacity == "spot" and s.scaling.max_replicas > s.scaling.min_replicas and not tier.spot.enabled:
        raise _fail(f"{path}.burstCapacity", f"spot, but tier {tier.name} has no spot pool; set onDemand")
    if s.uses_spot and s.drain.termination_grace_seconds > SPOT_NOTICE_SECONDS:
        raise _fail(
            f"{path}.drain",
            f"preStop {s.drain.pre_stop_seconds} + shutdownTimeout {s.drain.shutdown_timeout_seconds} + margin "
            f"{s.drain.margin_seconds} = {s.drain.termination_grace_seconds} s does not fit the "
            f"{SPOT_NOTICE_SECONDS} s spot notice; shorten the drain or set burstCapacity: onDemand",
        )
    if prod and s.scaling.scale_to_zero:
        raise _fail(f"{path}.scaling.scaleToZero", "prod forbids scale to zero; keep an on-demand baseline")


def allocatable(it: catalog.InstanceType) -> tuple[float, float]:
    """vCPU and GiB left for our pods. Reservations follow the EKS AMI's kubelet formulas,
    rounded up: ~0.5 vCPU and ~10 % of memory plus 1 GiB for the kubelet, system daemons
    and the node's DaemonSets (device plugin, DCGM, CNI)."""
    return it.vcpu - 0.5, it.memory_gib * 0.9 - 1


def replica_fits(s: ModelServiceConfig, it: catalog.InstanceType) -> bool:
    """Whether a replica fits the instance's allocatable resources (see :func:`allocatable`)."""
    cpu, memory_gib = allocatable(it)
    return it.gpus >= s.gpus_per_replica and cpu >= s.cpu_per_replica and memory_gib >= s.memory_gib_per_replica


def _check_job_fits(path: str, b: BatchWorkerConfig, tier: GpuTier) -> None:
    """A job pod must fit one instance type of its tier, by the rule replicas follow; else
    the ScaledJob creates pods that stay Pending on every node Karpenter can offer."""
    room = [allocatable(catalog.INSTANCE_TYPES[t]) for t in tier.instance_types
            if catalog.INSTANCE_TYPES[t].gpus >= b.gpus_per_job]
    if any(cpu >= b.cpu_per_job and mem >= b.memory_gib_per_job for cpu, mem in room):
        return
    max_cpu, max_mem = math.floor(max(c for c, _ in room)), math.floor(max(m for _, m in room))
    types = ", ".join(tier.instance_types)
    if b.cpu_per_job > max_cpu:
        raise _fail(f"{path}.cpuPerJob", f"{b.cpu_per_job} does not fit tier {tier.name} ({types}): at most {max_cpu} "
                    "vCPU after system reservations; lower it or add a larger type to instanceTypes")
    if b.memory_gib_per_job > max_mem:
        raise _fail(f"{path}.memoryGibPerJob", f"{b.memory_gib_per_job} does not fit tier {tier.name} ({types}): at most "
                    f"{max_mem} GiB after system reservations; lower it or add a larger type to instanceTypes")
    raise _fail(f"{path}.cpuPerJob", f"{b.cpu_per_job} vCPU and {b.memory_gib_per_job} GiB fit no single {tier.name} "
                f"instance type ({types}); lower one or add a larger type to instanceTypes")


# --------------------------------------------------------------------------- loading


def load_model(model: type[_M], data: Any, prefix: str) -> _M:
    """Validate ``data`` as ``model``; errors name paths under ``prefix`` (e.g. ``service``)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(sorted({f"{prefix}.{_format(e)}" if e["loc"] else f"{prefix}: {_format(e).lstrip(': ')}"
                                  for e in exc.errors()})) from None


def check_service_on_tier(path: str, service: ModelServiceConfig, tier: GpuTier, environment: str) -> None:
    """The cross-field checks of a service against the tier it runs on (raises ConfigError)."""
    try:
        _check_service(path, service, {tier.name: tier}, environment == "prod")
    except ValueError as exc:
        raise ConfigError([_format({"loc": (), "msg": str(exc), "type": "value_error"})]) from None


def load_stack_config(values: Mapping[str, Any], region: str | None) -> StackConfig:
    """Validate the ``gpu-platform`` namespace values (keys without the prefix) and ``aws:region``."""
    data = dict(values)
    if region is None:
        raise ConfigError(["aws:region: required, e.g. us-east-1"])
    data["region"] = region
    try:
        return StackConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(sorted({_format(e) for e in exc.errors()})) from None


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _format(err: Mapping[str, Any]) -> str:
    loc = tuple(err["loc"])
    path = _path(loc)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if msg.startswith("@"):
        sub, _, msg = msg[1:].partition(": ")
        path = f"{path}{sub}" if sub.startswith("[") else (f"{path}.{sub}" if path else sub)
    if path == "region":
        path = "aws:region"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        return f"{path}: unknown key; allowed keys: {', '.join(allowed)}{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
    value = err.get("input")
    shown = "" if isinstance(value, (Mapping, list, tuple)) or kind.startswith("value_error") else f" (got {value!r})"
    return f"{path}: {msg}{shown}"


def _model_in(annotation: Any) -> type[_Model] | None:
    """The model class inside an annotation such as ``tuple[X, ...]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, _Model):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, tuple, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found:
                return found
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[_Model] | None = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if f.alias == part or n == part), None)
        model = _model_in(field.annotation) if field else None
    if model is None:
        return []
    return sorted(f.alias or n for n, f in model.model_fields.items() if n != "region")


def stack_file_schema() -> dict[str, Any]:
    """JSON Schema of a stack file (``stacks/Pulumi.<env>.yaml``), for editors."""
    inner = StackConfig.model_json_schema(by_alias=True)
    defs = inner.pop("$defs", {})
    props = {f"{NAMESPACE}:{k}": v for k, v in inner["properties"].items() if k != "region"}
    props["aws:region"] = inner["properties"]["region"]
    required = [f"{NAMESPACE}:{k}" for k in inner.get("required", []) if k != "region"] + ["aws:region"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "gpu-platform stack file",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": props,
                "required": sorted(required),
                "patternProperties": {r"^(?!gpu-platform:)[A-Za-z0-9_-]+:": {}},
                "additionalProperties": False,
            },
            "encryptionsalt": {"type": "string"},
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
        },
        "required": ["config"],
        "$defs": defs,
    }
