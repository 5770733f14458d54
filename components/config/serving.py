"""Models of served models: the model, its SLO, scaling, drain, cache and canary."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components import sizing
from components.config.base import DNS_LABEL, ConfigModel, ImageRef
from components.config.errors import rule_error
from components.config.levers import CompileCache, Loader, PredictiveScaling
from components.config.routing import Routing
from components.config.secrets import VllmArgs
from platform_facts import catalog
from platform_facts import vllm as vllm_facts
from platform_facts.kubernetes import RESERVED_NAMESPACES

# The `vllm serve` flags the platform generates (render/vllm.py ``vllm_args``), each with the
# key that sets it. argparse keeps the last value of a flag, so an extraArgs copy would win
# silently, and the pod would no longer match what the platform sized, probes and scrapes.
GENERATED_FLAGS = {
    "--model": "model.source (the cached copy is passed as the model)",
    "--served-model-name": "model.id",
    "--tensor-parallel-size": "tensorParallelSize",
    "--gpu-memory-utilization": "gpuMemoryUtilization",
    "--max-num-seqs": "maxNumSeqs",
    "--max-model-len": "maxModelLen",
    "--port": "nothing: the Service, the probes and the ServiceMonitor use port 8000",
    "--shutdown-timeout": "drain.shutdownTimeoutSeconds",
    "--dtype": "model.dtype",
    "--load-format": "loader.format",
    "--model-loader-extra-config": "loader.concurrency and loader.memoryLimitGib",
}
# Flags that multiply the GPUs a replica uses beyond the tensorParallelSize its pod requests.
GPU_COUNT_FLAGS = ("--pipeline-parallel-size", "--data-parallel-size", "--data-parallel-size-local")


def _flag_name(arg: str) -> str | None:
    """The long flag an argument sets, as vLLM's parser reads it: ``--max_model_len=4096`` and
    ``-tp4`` count too. None for values and the ``--`` separator."""
    if not arg.startswith("-") or arg in ("-", "--") or arg[1:2].isdigit():
        return None
    name = arg.split("=", 1)[0]
    if not name.startswith("--"):
        # argparse also reads a short flag glued to its value: -tp4.
        return next((long for short, long in vllm_facts.SHORT_FLAGS.items()
                     if name == short or (name.startswith(short) and name[len(short):].isdigit())), name)
    # vLLM's FlexibleArgumentParser reads underscores as dashes.
    return "--" + name[2:].replace("_", "-")


def _refused_flag(name: str) -> str | None:
    """The generated or GPU-count flag that ``name`` sets, exactly or as an argparse abbreviation."""
    refused = (*GENERATED_FLAGS, *GPU_COUNT_FLAGS)
    if name in refused:
        return name
    if name.startswith("--") and len(name) > 3:
        return next((f for f in refused if f.startswith(name)), None)
    return None


def check_extra_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse extra arguments that set a flag the platform generates or that change the GPU count."""
    for i, arg in enumerate(args):
        name = _flag_name(arg)
        flag = _refused_flag(name) if name else None
        if flag is None:
            continue
        if flag in GPU_COUNT_FLAGS:
            raise rule_error((i,), f"{arg!r} sets {flag}: the replica would use more GPUs than the tensorParallelSize "
                             "its pod requests; remove it and size the replica with tensorParallelSize")
        raise rule_error((i,), f"{arg!r} sets {flag}, which the platform generates from {GENERATED_FLAGS[flag]}; "
                         "set that instead (extraArgs may only add flags the platform does not set)")
    return args


def check_namespace(namespace: str) -> str:
    if namespace in RESERVED_NAMESPACES:
        raise rule_error((), f"{namespace!r} is reserved ({', '.join(RESERVED_NAMESPACES)}): the platform creates "
                         "the namespace of every workload and would take over a system or add-on namespace; "
                         "use a namespace of your own")
    return namespace


def _source_problem(source: str) -> str | None:
    """Why an s3:// or hf:// source is not a literal path, or None."""
    if any(ord(c) < 32 or ord(c) == 127 for c in source):
        return "contains a control character"
    if wild := sorted(set(source) & set("*?$")):
        return (f"contains {', '.join(map(repr, wild))}: IAM reads * and ? as wildcards and ${{...}} as a policy "
                "variable, so the read grant on the prefix would reach beyond the model; write the prefix literally")
    scheme, _, rest = source.partition("://")
    path = rest.partition("/")[2] if scheme == "s3" else rest
    segments = path.removesuffix("/").split("/")
    if "" in segments:
        return "has an empty path segment (//); S3 keys are literal, so the grant and the cache path would differ"
    if bad := next((seg for seg in segments if seg in (".", "..")), None):
        return (f"has a {bad!r} segment; S3 keys are literal (no . or ..), and the node cache directory would "
                "leave /models; write the prefix without it")
    return None


class SecretRef(ConfigModel):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=253)] = Field(description="Secret name.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the Secret.")


class ModelSpec(ConfigModel):
    id: str = Field(min_length=1, description="Model id as clients name it, e.g. meta-llama/Llama-3.1-8B-Instruct.")
    source: str = Field(
        pattern=r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+|hf://[^\s/]+/[^\s]+)$",
        description="s3://bucket/prefix (synced to the node cache) or hf://org/name.",
    )
    parameters_billion: float = Field(gt=0, le=2000, description="Parameters, for memory and load-time sizing.")
    dtype: Literal[tuple(catalog.DTYPE_BYTES)] = Field(  # type: ignore[valid-type]
        default="bfloat16", description="Weight data type; sets bytes per parameter."
    )
    revision: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$",
        description="hf:// only: branch, tag or commit to fetch (default main); pin a commit for repeatable "
                    "deploys. Each revision gets its own cache directory. For s3:// put the version in the "
                    "prefix (s3://bucket/org/model/<revision>/).",
    )
    kms_key_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$",
        description="s3:// only: the KMS key of an SSE-KMS bucket; the cache reader may decrypt with it "
                    "through S3. Without it, any key, but only through S3 and only for the model's objects.",
    )

    @model_validator(mode="after")
    def _source_options(self) -> ModelSpec:
        if self.revision is not None and not self.source.startswith("hf://"):
            raise rule_error(("revision",), "applies to hf:// sources; for s3:// put the version in the prefix")
        if self.kms_key_arn is not None and not self.source.startswith("s3://"):
            raise rule_error(("kmsKeyArn",), "applies to s3:// sources only")
        return self

    @field_validator("source")
    @classmethod
    def _literal_path(cls, v: str) -> str:
        if (problem := _source_problem(v)) is not None:
            raise rule_error((), f"{v!r} {problem}")
        return v

    @property
    def weights_gib(self) -> float:
        return catalog.weights_gib(self.parameters_billion, self.dtype)


class Slo(ConfigModel):
    ttft_p95_seconds: float = Field(default=2.0, gt=0, le=120, description="Time-to-first-token target (p95).")
    p99_generation_seconds: float = Field(default=30.0, gt=0, le=600, description="p99 request duration.")
    attainment_target: float = Field(default=0.95, gt=0, le=1, description="Share of requests within the TTFT SLO.")


class ActiveHours(ConfigModel):
    """When a scale-to-zero service keeps one replica up (KEDA cron trigger)."""

    timezone: str = Field(default="Etc/UTC", min_length=1, description="IANA time zone.")
    start: str = Field(default="0 8 * * 1-5", pattern=r"^\S+( \S+){4}$", description="Cron: wake up.")
    end: str = Field(default="0 20 * * 1-5", pattern=r"^\S+( \S+){4}$", description="Cron: allow scale to zero again.")


class Scaling(ConfigModel):
    mode: Literal["keda", "hpa"] = Field(default="keda", description="KEDA ScaledObject or a plain HPA on the adapter.")
    min_replicas: int = Field(default=1, ge=0, le=64, description="Baseline replicas, always on on-demand capacity.")
    max_replicas: int = Field(default=2, ge=1, le=64, description="Baseline + burst replicas at most.")
    scale_to_zero: bool = Field(default=False, description="Allow 0 replicas when idle (needs minReplicas 0).")
    target_waiting_per_replica: float = Field(default=5, gt=0, le=1000, description="Queued requests per replica.")
    kv_cache_target: float = Field(default=0.8, gt=0, le=1, description="KV-cache usage that adds a replica.")
    ttft_trigger: bool = Field(default=True, description="Also scale on TTFT p95 against the SLO.")
    polling_interval_seconds: int = Field(default=15, ge=5, le=300, description="How often KEDA queries the triggers.")
    cooldown_seconds: int = Field(default=300, ge=30, le=7200, description="KEDA wait before 1 -> 0.")
    scale_down_stabilization_seconds: int = Field(
        default=300, ge=0, le=3600, description="HPA scale-down stabilization window."
    )
    scale_up_pods_per_minute: int = Field(default=2, ge=1, le=64, description="Replicas the HPA may add per minute.")
    scale_down_pods_per_period: int = Field(
        default=1, ge=1, le=64, description="Replicas the HPA may remove per scaleDownPeriodSeconds."
    )
    scale_down_period_seconds: int = Field(default=120, ge=15, le=1800, description="Period of the scale-down policy.")
    keep_alive: bool = Field(default=True, description="Trigger on running requests so in-flight work keeps a replica.")
    active_hours: ActiveHours | None = Field(default=None, description="Hours when one replica stays up (scale to zero).")
    wake_query: str | None = Field(
        default=None, min_length=1,
        description="PromQL on demand seen outside vLLM (gateway or client requests); > 0 wakes a service at zero.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.max_replicas < self.min_replicas:
            raise rule_error(("maxReplicas",), f"{self.max_replicas} is below minReplicas {self.min_replicas}")
        if self.scale_to_zero and self.min_replicas != 0:
            raise rule_error(("scaleToZero",), f"true needs minReplicas 0, got {self.min_replicas}")
        if self.min_replicas == 0 and not self.scale_to_zero:
            raise rule_error(("minReplicas",), "0 needs scaleToZero: true (say it explicitly)")
        if self.scale_to_zero and not self.keep_alive:
            raise rule_error(("keepAlive",),
                             "scale to zero without a keep-alive trigger can drop in-flight requests; set true")
        return self


class Drain(ConfigModel):
    pre_stop_seconds: int = Field(default=15, ge=0, le=120, description="Sleep so endpoints drop the pod before SIGTERM.")
    shutdown_timeout_seconds: int = Field(default=60, ge=1, le=3600, description="vLLM --shutdown-timeout.")
    margin_seconds: int = Field(default=10, ge=0, le=120, description="Added to preStop + shutdown for the grace period.")

    @property
    def termination_grace_seconds(self) -> int:
        return self.pre_stop_seconds + self.shutdown_timeout_seconds + self.margin_seconds


class Cache(ConfigModel):
    medium: Literal["hostPath", "emptyDir"] = Field(
        default="hostPath", description="hostPath on the NVMe RAID (survives restarts) or a per-pod emptyDir."
    )
    size_gib: int = Field(default=200, ge=10, le=30000, description="Size limit of an emptyDir cache.")


class Canary(ConfigModel):
    """A second revision behind the same Service; traffic share follows the replica ratio.

    Also behind the llm-d Router: its InferencePool has no weights and standalone mode has no
    HTTPRoute (weights between two pools need a Gateway), so the canary is one more endpoint of
    the one pool and the scorers (queue, KV cache, prefix) spread requests by load, which tracks
    the share of capacity, i.e. the replica ratio that ``maxSharePercent`` caps."""

    image: ImageRef | None = Field(default=None, description="vLLM image of the canary (default: the pinned one).")
    model: ModelSpec | None = Field(default=None, description="Model of the canary (default: the service's).")
    extra_args: VllmArgs = Field(default=(), description="vllm serve arguments of the canary.")
    replicas: int = Field(default=1, ge=1, le=8, description="Canary replicas.")
    max_share_percent: int = Field(default=25, ge=1, le=50, description="Cap on canary / (baseline + canary).")

    @field_validator("extra_args")
    @classmethod
    def _extra_args(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return check_extra_args(v)


class ModelServiceConfig(ConfigModel):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=30)] = Field(description="Service name (never 'vllm').")
    namespace: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = Field(
        default="inference", description="Namespace of the service."
    )
    model: ModelSpec = Field(description="The model served.")
    tier: str = Field(description="Name of a gpuTiers entry.")
    tensor_parallel_size: int = Field(default=1, ge=1, le=8, description="GPUs per replica (1, 2, 4 or 8), on one node.")
    gpu_memory_utilization: float = Field(
        default=0.90, ge=0.5, le=0.98, description="vLLM --gpu-memory-utilization: share of GPU memory vLLM may use."
    )
    max_num_seqs: int = Field(default=256, ge=1, le=4096, description="vLLM --max-num-seqs: sequences per batch.")
    max_model_len: int = Field(default=8192, ge=256, le=1_048_576, description="vLLM --max-model-len: context length.")
    extra_args: VllmArgs = Field(
        default=(), description="Appended to vllm serve's arguments; flags the platform sets from other keys, and "
        "plain-text credentials, are refused."
    )
    hf_token_secret: SecretRef | None = Field(default=None, description="Secret holding a Hugging Face token.")
    api_key_secret: SecretRef | None = Field(
        default=None,
        description="Secret holding the API key clients must send (Authorization: Bearer <key>) to /v1/...; "
        "vLLM reads it as VLLM_API_KEY. /health and /metrics stay open (probes, Prometheus).",
    )
    consumer_namespaces: tuple[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)], ...] = Field(
        default=(),
        description="Namespaces whose pods may call the service on its port (NetworkPolicy); every other "
        "namespace, the service's own included, is refused. Prometheus (namespace monitoring) may always scrape.",
    )
    burst_capacity: Literal["spot", "onDemand"] = Field(
        default="spot", description="Burst replicas prefer spot (falling back to on-demand) or stay on-demand."
    )
    burst_fallback: Literal["onDemand", "none"] = Field(
        default="onDemand",
        description="With burstCapacity spot: onDemand lets burst replicas fall back to on-demand nodes when spot "
        "is short, and the tier's on-demand GPU limit counts the whole burst for it; none keeps the burst on spot "
        "only (it waits for spot), and the limit counts nothing for it.",
    )
    slo: Slo = Field(default_factory=Slo, description="Latency targets; scaling and drain derive from them.")
    scaling: Scaling = Field(default_factory=Scaling, description="Replica bounds and autoscaling triggers.")
    drain: Drain = Field(default_factory=Drain, description="Graceful shutdown of a replica.")
    cache: Cache = Field(default_factory=Cache, description="Where the model weights are cached on the node.")
    pre_pull: bool = Field(default=False, description="DaemonSet that pulls the image and warms the cache on tier nodes.")
    pending_alert_minutes: int = Field(default=10, ge=1, le=120, description="Alert when GPU pods stay Pending this long.")
    canary: Canary | None = Field(default=None, description="A second revision behind the same Service.")
    loader: Loader = Field(default_factory=Loader, description="How vLLM loads the weights (cold-start lever).")
    compile_cache: CompileCache = Field(default_factory=CompileCache, description="Keep vLLM's compile cache on the node.")
    predictive_scaling: PredictiveScaling = Field(default_factory=PredictiveScaling,
                                                  description="Scale on the request rate predicted one cold start ahead.")
    routing: Routing = Field(default_factory=Routing, description="Plain Service or the llm-d Router in front.")

    @field_validator("name")
    @classmethod
    def _not_vllm(cls, v: str) -> str:
        if v == "vllm":
            raise rule_error((), "'vllm' is refused: Kubernetes would inject VLLM_PORT=tcp://..., which vLLM rejects")
        return v

    @field_validator("namespace")
    @classmethod
    def _own_namespace(cls, v: str) -> str:
        return check_namespace(v)

    @field_validator("extra_args")
    @classmethod
    def _extra_args(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return check_extra_args(v)

    @model_validator(mode="after")
    def _consistent(self) -> ModelServiceConfig:
        need = math.ceil(2 * self.slo.p99_generation_seconds)
        if self.drain.shutdown_timeout_seconds < need:
            raise rule_error(("drain", "shutdownTimeoutSeconds"),
                             f"{self.drain.shutdown_timeout_seconds} is below 2 x slo.p99GenerationSeconds = {need}")
        if self.tensor_parallel_size not in sizing.TENSOR_PARALLEL_SIZES:
            raise rule_error(("tensorParallelSize",), f"{self.tensor_parallel_size}; allowed 1, 2, 4 or 8")
        self._check_wake()
        if self.scaling.mode == "hpa" and self.scaling.scale_to_zero:
            raise rule_error(("scaling", "mode"), "hpa cannot scale to zero; use keda or set scaleToZero false")
        if self.scaling.mode == "hpa" and self.scaling.max_replicas <= self.scaling.min_replicas:
            raise rule_error(("scaling", "maxReplicas"),
                             "hpa mode scales burst replicas above the baseline; set maxReplicas > minReplicas")
        self._check_cache_size()
        if self.pre_pull and self.cache.medium != "hostPath":
            raise rule_error(("prePull",),
                             "warms a node cache, so it needs cache.medium hostPath (an emptyDir dies with its pod)")
        if self.canary is not None:
            share = 100 * self.canary.replicas / (self.scaling.min_replicas + self.canary.replicas)
            if share > self.canary.max_share_percent:
                raise rule_error(("canary", "replicas"),
                                 f"{self.canary.replicas} canary replicas next to {self.scaling.min_replicas} "
                                 f"baseline replicas take {share:.0f}% of traffic; the cap is {self.canary.max_share_percent}%")
        return self

    def _check_wake(self) -> None:
        """At zero replicas vLLM's metrics vanish with its pods: something else must wake it.
        Behind the router, requests held at zero pods do (render/router_monitoring.py)."""
        sc = self.scaling
        if sc.scale_to_zero and sc.active_hours is None and sc.wake_query is None and self.routing.mode != "router":
            raise rule_error(("scaling", "scaleToZero"), "nothing could wake the service at zero replicas (vLLM's "
                             "metrics vanish with its pods); set activeHours and/or wakeQuery, or routing.mode router")

    def _check_cache_size(self) -> None:
        """An emptyDir cache must hold the weights: kubelet evicts a pod whose emptyDir outgrows
        its sizeLimit, so the download would restart forever."""
        if self.cache.medium != "emptyDir":
            return
        for model in (self.model, self.canary.model if self.canary else None):
            if model is None:
                continue
            need = math.ceil(model.weights_gib * sizing.CACHE_MARGIN)
            if self.cache.size_gib < need:
                which = "the canary's model" if model is not self.model else "the model"
                raise rule_error(("cache", "sizeGib"),
                                 f"{self.cache.size_gib} GiB cannot hold {which} ({model.parameters_billion:g}B at "
                                 f"{model.dtype}, ~{model.weights_gib:.0f} GiB of weights, {need} GiB with a "
                                 f"{sizing.CACHE_MARGIN - 1:.0%} margin): kubelet evicts the pod when its emptyDir "
                                 f"outgrows the limit; set sizeGib >= {need} or use cache.medium hostPath")

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size

    @property
    def cpu_per_replica(self) -> int:
        """vCPUs requested per replica: 4 per GPU (tokenization, scheduling, detokenization)."""
        return sizing.replica_vcpu(self.gpus_per_replica)

    @property
    def memory_gib_per_replica(self) -> int:
        """Host memory per replica: at least 8 GiB per GPU, and enough to stage the weights
        through host memory while loading (weights x 1.2 + 4 GiB)."""
        return sizing.replica_memory_gib(self.model.weights_gib, self.gpus_per_replica)

    @property
    def uses_spot(self) -> bool:
        return self.burst_capacity == "spot" and self.scaling.max_replicas > self.scaling.min_replicas
