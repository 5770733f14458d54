"""Models of batch inference: a Redis list drained by a KEDA ScaledJob."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components.config.base import DNS_LABEL, ConfigModel, ImageRef
from components.config.errors import rule_error
from components.config.serving import ModelSpec, SecretRef, check_namespace


class ExistingRedis(ConfigModel):
    address_secret: SecretRef = Field(description="Secret key holding host:port of the Redis endpoint.")
    password_secret: SecretRef = Field(description="Secret key holding the Redis password.")
    tls: bool = Field(default=True, description="Connect to Redis over TLS.")


class BatchWorkerConfig(ConfigModel):
    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=30)] = Field(description="Worker name.")
    namespace: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = Field(
        default="batch", description="Namespace of the worker and its Redis."
    )
    image: ImageRef = Field(description="Worker image with an explicit tag or digest.")
    tier: str = Field(description="Name of a gpuTiers entry.")
    gpus_per_job: int = Field(default=1, ge=1, le=8, description="GPUs per job pod (within one node).")
    cpu_per_job: int = Field(default=4, ge=1, le=192, description="vCPUs per job pod.")
    memory_gib_per_job: int = Field(default=16, ge=1, le=2048, description="Host memory per job pod.")
    model: ModelSpec | None = Field(default=None, description="Model to pre-load into the node cache.")
    queue_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9:_.-]+$", max_length=128)] | None = Field(
        default=None, description="Redis list; defaults to the worker name."
    )
    list_length: int = Field(default=5, ge=1, le=10_000, description="Queued items per job.")
    activation_list_length: int = Field(
        default=0, ge=0, le=10_000, description="Queued items above which the first job starts."
    )
    min_replicas: int = Field(default=0, ge=0, le=0, description="Jobs scale from zero.")
    max_replicas: int = Field(default=4, ge=1, le=256, description="Jobs running at once at most.")
    polling_interval_seconds: int = Field(default=30, ge=5, le=600, description="How often KEDA reads the list length.")
    backoff_limit: int = Field(default=3, ge=0, le=20, description="Retries of a failed job pod.")
    active_deadline_seconds: int = Field(default=3600, ge=60, le=7 * 86400, description="A job is stopped after this long.")
    capacity: Literal["spotPreferred", "spotOnly", "onDemand"] = Field(
        default="spotPreferred", description="Capacity type of job nodes: prefer spot, spot only, or on-demand only."
    )
    producer_namespaces: tuple[Annotated[str, Field(pattern=DNS_LABEL)], ...] = Field(
        default=(), description="Namespaces allowed to reach Redis to enqueue work (NetworkPolicy)."
    )
    redis: ExistingRedis | None = Field(default=None, description="Use an existing Redis instead of deploying one.")
    redis_storage_gib: int = Field(default=10, ge=1, le=1000, description="gp3 volume of the in-cluster Redis.")

    @field_validator("namespace")
    @classmethod
    def _own_namespace(cls, v: str) -> str:
        return check_namespace(v)

    @field_validator("image")
    @classmethod
    def _tagged(cls, v: str) -> str:
        if "@sha256:" in v:
            return v
        last = v.rsplit("/", 1)[-1]
        if ":" not in last:
            raise rule_error((), f"{v!r} has no tag; pin a version such as {v}:1.2.3")
        if last.endswith(":latest"):
            raise rule_error((), f"{v!r} uses :latest; pin a version")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> BatchWorkerConfig:
        if self.max_replicas < self.min_replicas:
            raise rule_error(("maxReplicas",), f"{self.max_replicas} is below minReplicas {self.min_replicas}")
        if self.activation_list_length >= self.list_length * self.max_replicas:
            raise rule_error(("activationListLength",),
                             f"{self.activation_list_length} would never let a job start "
                             f"(listLength {self.list_length} x maxReplicas {self.max_replicas})")
        return self

    @property
    def queue(self) -> str:
        return self.queue_name or self.name
