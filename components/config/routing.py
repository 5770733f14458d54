"""How requests reach a ModelService's vLLM pods: a plain Service, or the llm-d Router.

``service``: a ClusterIP Service spreads requests at random over the pods (no queue, no
timeout, no priorities). ``router``: the llm-d Router in standalone mode (an Endpoint Picker
with an Envoy sidecar) picks a pod per request from prefix-cache, queue and KV-cache scores,
and holds requests in a bounded, prioritized queue (flow control) that answers 429 when full
and sheds a request that waited past its timeout.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.config.base import DNS_LABEL, ConfigModel
from components.config.errors import rule_error
from platform_facts import llmd


class PriorityClass(ConfigModel):
    """One InferenceObjective: clients pick it with the ``x-llm-d-inference-objective`` header."""

    name: Annotated[str, Field(pattern=DNS_LABEL, max_length=30)] = Field(
        description="Class name; the InferenceObjective is named <service>-<name>.")
    priority: int = Field(ge=llmd.PRIORITY_MIN, le=llmd.PRIORITY_MAX,
                          description="InferenceObjective priority (int32); below 0 is sheddable.")


def _default_classes() -> tuple[PriorityClass, ...]:
    # Requests without the header get priority 0. "interactive" jumps the queue; "best-effort"
    # (negative: sheddable) is dropped first under saturation and queues in a smaller band.
    return (PriorityClass(name="interactive", priority=10), PriorityClass(name="best-effort", priority=-1))


class Routing(ConfigModel):
    mode: Literal["service", "router"] = Field(
        default="service", description="service: a ClusterIP Service; router: the llm-d Router (EPP + Envoy), "
        "one pod (see render/router.REPLICAS).")
    prefix_cache_weight: float = Field(default=llmd.DEFAULT_PREFIX_CACHE_WEIGHT, ge=0, le=100,
                                       description="Weight of the prefix-cache scorer.")
    queue_weight: float = Field(default=llmd.DEFAULT_QUEUE_WEIGHT, ge=0, le=100,
                                description="Weight of the queue scorer.")
    kv_cache_weight: float = Field(default=llmd.DEFAULT_KV_CACHE_WEIGHT, ge=0, le=100,
                                   description="Weight of the KV-cache utilization scorer.")
    peak_requests_per_second: float = Field(
        default=10, gt=0, le=1000, description="Design request rate; sizes the router's CPU and memory requests.")
    queue_timeout_seconds: int | None = Field(
        default=None, ge=1, le=3600,
        description="Longest a request waits in the router's queue (flow control defaultRequestTTL); "
        "default: ceil(slo.p99GenerationSeconds).")
    max_queued_requests: int | None = Field(
        default=None, ge=1, le=llmd.BAND_MAX_REQUESTS_DEFAULT,
        description="Requests the router holds at most before it answers 429; default: maxReplicas x maxNumSeqs.")
    sheddable_queue_percent: int = Field(
        default=25, ge=1, le=100, description="Share of the queue bound that sheddable (priority < 0) bands get.")
    priority_classes: tuple[PriorityClass, ...] = Field(
        default_factory=_default_classes, max_length=8, description="InferenceObjectives (name, priority).")

    @model_validator(mode="after")
    def _consistent(self) -> Routing:
        names = [c.name for c in self.priority_classes]
        for i, c in enumerate(self.priority_classes):
            if names.index(c.name) != i:
                raise rule_error(("priorityClasses", i, "name"), f"{c.name!r} appears twice; class names are unique")
        if self.prefix_cache_weight + self.queue_weight + self.kv_cache_weight == 0:
            raise rule_error(("prefixCacheWeight",), "0 with the other weights 0; at least one scorer needs a weight > 0")
        return self

    def timeout_seconds(self, p99_generation_seconds: float) -> int:
        """Queue-wait budget: a request that has waited a whole p99 generation time in the queue
        would take at least twice what users accept; shedding it (429/503) lets the client retry
        elsewhere instead of holding a slot."""
        return self.queue_timeout_seconds or math.ceil(p99_generation_seconds)

    def queue_bound(self, max_replicas: int, max_num_seqs: int) -> int:
        """Queue bound: one more full batch per replica the service can reach. A request behind
        that many waits about one generation time for a free sequence slot even at maxReplicas,
        which is the timeout above; more would only time out in the queue."""
        return self.max_queued_requests or min(max_replicas * max_num_seqs, llmd.BAND_MAX_REQUESTS_DEFAULT)
