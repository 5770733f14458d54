"""What a service replay knows (``ReplaySetup``, fixed) and what changes every tick (``ReplayState``).

The step functions in ``replica``, ``capacity`` and ``control`` read the setup and change
the state; nothing else carries state between ticks.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

from platform_facts import catalog
from simulator import hpa
from simulator.cron import ActiveWindow
from simulator.disruption import PoolDisruption
from simulator.perf import ColdStart, ReplicaPerf
from simulator.prefix import LruBlocks
from simulator.profile import Profile
from simulator.routing import RANDOM, RoutingPolicy
from simulator.trace import Request

if TYPE_CHECKING:
    from simulator.packing import Spread

DT = 1.0  # seconds per tick
Capacity = Literal["on-demand", "spot"]
Role = Literal["baseline", "burst"]


@dataclass(frozen=True)
class ReplaySetup:
    """One service on one instance type under one profile: everything that does not change."""

    requests: tuple[Request, ...]
    profile: Profile
    perf: ReplicaPerf
    cold: ColdStart
    instance: catalog.InstanceType
    replicas_per_node: int
    gpu_limits: dict[Capacity, int]  # per NodePool; 0 when the pool is disabled
    disruption: dict[Capacity, PoolDisruption]  # per enabled NodePool, as rendered
    spread: dict[Role, Spread | None]  # each role's hostname topology spread, as rendered
    pre_stop_seconds: int
    shutdown_timeout_seconds: int
    scrape_seconds: float
    spot_interruptions_per_hour: float
    prometheus_outages: tuple[tuple[float, float], ...]  # (start, end) seconds when queries fail
    active_window: ActiveWindow | None
    schedule: Callable[[float], int] | None  # oracle: replicas wanted at t, ready at once
    progress: Callable[[float], None] | None
    slo_seconds: float
    # Issue 17: vLLM's --max-model-len (longer requests are rejected at arrival; None: no limit)
    # and the first window whose steady state the replay starts from (0: only the baseline warm).
    max_model_len: int | None = None
    warm_start_seconds: float = 0.0
    whole_nodes: bool = False  # the constrained oracle: replicas packed on whole, wholly billed nodes
    routing: RoutingPolicy = RANDOM  # issue 19: how requests pick a replica (``simulator.routing``)
    buffer_nodes: int = 0  # issue 18: whole on-demand nodes the tier's capacity buffer keeps up (simulator.levers)

    @property
    def instant(self) -> bool:
        """The oracle: replicas follow the schedule and are Ready the moment they are wanted."""
        return self.schedule is not None

    def hourly_price(self, capacity: Capacity) -> float:
        """On-demand list price; spot at the middle of the catalog's range."""
        it = self.instance
        return it.on_demand_hourly if capacity == "on-demand" else (it.spot_hourly_low + it.spot_hourly_high) / 2

    def prometheus_down(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.prometheus_outages)


@dataclass
class Sequence:
    """A request a replica is decoding: the tokens it still owes and the KV cache it holds."""

    request: int  # index into the trace
    tokens_left: float
    kv_tokens: float


@dataclass
class Node:
    id: int
    capacity: Capacity
    launched: float
    ready_at: float
    slots: int
    pods: list[Pod] = field(default_factory=list)
    interrupt_at: float = math.inf
    noticed: bool = False
    gone_at: float | None = None
    empty_since: float | None = None
    image_cached: bool = False
    model_cached: bool = False
    share: float = 1.0  # the unconstrained oracle bills a replica as its share of a node
    compiled_at: float = math.inf  # when the first pod of the model started compiling here (compile cache)
    buffer: bool = False  # held by the capacity buffer's placeholders: never empty, until a pod takes it

    @property
    def live(self) -> bool:
        return self.gone_at is None


@dataclass
class Pod:
    id: int
    role: Role
    created: float
    node: Node | None = None
    start_at: float | None = None
    ready: bool = False
    terminating: bool = False
    drain_deadline: float = math.inf
    gone: bool = False
    queue: deque[int] = field(default_factory=deque)  # request indices waiting in vLLM
    running: list[Sequence] = field(default_factory=list)
    kv_used: float = 0.0
    debt: float = 0.0  # seconds of prefill that spilled past the last tick
    cache: LruBlocks | None = None  # the prefix cache (``simulator.prefix``), made at the first request with block hashes

    @property
    def routable(self) -> bool:
        return self.ready and not self.terminating and not self.gone

    @property
    def busy(self) -> bool:
        return bool(self.queue or self.running)


class PodGauges(NamedTuple):
    """What Prometheus holds for one Ready pod after a scrape (the role is a target label)."""

    waiting: int
    running: int
    kv_usage: float
    role: Role


class Event(NamedTuple):
    """Something an operator would see in the cluster's events, for the timeline picture only
    (no step reads it back): ``kind`` is one of ``EVENT_KINDS``."""

    t: float
    kind: str
    value: float  # scale: the change in burst replicas (+ up, - down); replica-ready: its cold start in seconds; else 0


EVENT_KINDS = ("scale", "node-launch", "replica-ready", "spot-notice", "spot-reclaim", "node-removed")


class FirstToken(NamedTuple):
    at: float
    ttft: float


@dataclass
class Outcomes:
    """Per request (by trace index): when it was admitted, saw its first token, ended, and where."""

    arrival: list[float]
    admitted: list[float]
    first_token: list[float]
    end: list[float]
    capacity: list[str]
    cached: list[int]  # prompt tokens the prefix cache saved at the prefill that gave the first token

    @classmethod
    def pending(cls, requests: tuple[Request, ...]) -> Outcomes:
        n = len(requests)
        return cls([r.arrival for r in requests], [math.nan] * n, [math.nan] * n, [math.nan] * n, [""] * n, [0] * n)


@dataclass
class ReplayState:
    """Everything that changes while the replay runs."""

    outcomes: Outcomes
    rng: random.Random
    burst_desired: int  # the burst Deployment's replicas, as KEDA and the HPA set them
    pods: list[Pod] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    gateway: deque[int] = field(default_factory=deque)  # requests waiting at the caller
    next_arrival: int = 0
    last_id: int = 0
    preemptions: int = 0
    retries: int = 0
    node_seconds: dict[Capacity, float] = field(default_factory=lambda: {"on-demand": 0.0, "spot": 0.0})
    cost: float = 0.0
    first_tokens: deque[FirstToken] = field(default_factory=deque)
    timeline: list[dict] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    sampled_arrivals: int = 0  # requests arrived by the previous timeline sample
    # Prometheus, as of the last scrape
    scraped: dict[int, PodGauges] = field(default_factory=dict)
    window_ttft: list[float] = field(default_factory=list)
    successes: deque[tuple[float, float]] = field(default_factory=deque)  # (t, requests completed): the predictive trigger's counter
    ends_pending: list[float] = field(default_factory=list)  # a heap of end times no scrape has counted yet
    ends_counted: int = 0  # requests ended by the last scrape (vllm:request_success_total)
    # KEDA and the HPA
    hpa: hpa.HpaState = field(default_factory=hpa.HpaState)
    last_active: float = -math.inf
    failures: int = 0  # consecutive failed metric reads (KEDA's fallback counter)
    next_scrape: float = 0.0
    next_poll: float = 0.0
    next_hpa: float = 0.0
    next_sample: float = 0.0
    router_index: dict[int, LruBlocks] = field(default_factory=dict)  # the EPP's prefix index, by pod id

    def new_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def live_nodes(self, capacity: Capacity) -> list[Node]:
        return [nd for nd in self.nodes if nd.live and nd.capacity == capacity]
