"""How the requests waiting at the caller pick a replica (``--routing``).

- ``random``: kube-proxy's iptables mode picks a Service endpoint uniformly (today's default;
  the figures and goldens of every replay before issue 19 are this policy's);
- ``least-queue``: the Ready replica with the fewest requests waiting plus running, ties broken
  by the seeded RNG;
- ``prefix-aware``: the llm-d EPP's weighted scorers over the Ready replicas, then the
  ``max-score-picker`` (llm-d/llm-d-router @ebab687, ``pkg/epp/framework/plugins/scheduling``):

  - ``prefix-cache-scorer``: matched blocks / the prompt's blocks, from the EPP's approximate
    index (``simulator.prefix.router_index``; ``matchLengthWeight`` defaults to 0, so the ratio
    alone) — 0 for a request without block hashes;
  - ``queue-scorer``: ``(max - waiting) / (max - min)`` over the candidates' waiting requests
    (vLLM's ``num_requests_waiting``), 1 for all when they are equal;
  - ``kv-cache-utilization-scorer``: ``1 - KV usage``;
  - weights prefix : queue : KV = 2 : 2 : 1 (llm-d/llm-d#1156, production-facts section 14);
  - the picker shuffles, then takes the highest score: ties go to a random one of the best.

  The EPP sees live counts here; upstream reads them from the endpoints' scraped metrics, a
  little older (not modelled). The picked endpoint's index takes the
  request's blocks at once (``PreRequest``), so a burst sharing a prefix follows the first.

The policy applies under every profile, oracles included; the prefix cache itself
(``simulator.prefix``) works under every policy — random routing gets hits too, just fewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from platform_facts import llmd
from simulator.prefix import BLOCK_TOKENS, LruBlocks, match_longest_prefix, router_index

if TYPE_CHECKING:
    from components.config import ModelServiceConfig, StackConfig
    from simulator.state import Pod, ReplaySetup, ReplayState

Routing = Literal["random", "least-queue", "prefix-aware"]
POLICIES: tuple[str, ...] = get_args(Routing)
# The EPP prefix producer's ``maxPrefixTokensToMatch`` default (approximateprefix/README.md@ebab687).
MAX_PREFIX_TOKENS_TO_MATCH = 131072


@dataclass(frozen=True)
class EppWeights:
    """The scorer weights of the EPP's scheduling profile (defaults: ``platform_facts.llmd``, the
    ones the router's config takes)."""

    prefix: float = llmd.DEFAULT_PREFIX_CACHE_WEIGHT
    queue: float = llmd.DEFAULT_QUEUE_WEIGHT
    kv_cache: float = llmd.DEFAULT_KV_CACHE_WEIGHT


@dataclass(frozen=True)
class RoutingPolicy:
    policy: Routing = "random"
    weights: EppWeights = EppWeights()


RANDOM = RoutingPolicy()  # the default: today's figures


def parse(spec: str) -> list[Routing]:
    """``--routing``: one policy or several separated by commas, in order, without repeats."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in POLICIES]
    if bad or not names:
        raise ValueError(f"--routing {spec!r}: expected one or more of {', '.join(POLICIES)} separated by commas")
    return list(dict.fromkeys(names))  # type: ignore[arg-type]


def stack_routing(config: StackConfig, service: ModelServiceConfig) -> Routing:
    """The policy the service's own ``routing.mode`` deploys: ``router`` (the llm-d Router's EPP)
    routes ``prefix-aware``, ``service`` (a plain Kubernetes Service, kube-proxy) ``random``."""
    del config
    return "prefix-aware" if service.routing.mode == "router" else "random"


def weights_of(service: ModelServiceConfig) -> EppWeights:
    """The EPP scorer weights the service's router is rendered with (``routing.*Weight``)."""
    r = service.routing
    return EppWeights(prefix=r.prefix_cache_weight, queue=r.queue_weight, kv_cache=r.kv_cache_weight)


def route(setup: ReplaySetup, state: ReplayState) -> None:
    """Every request waiting at the caller goes to a routable replica under the setup's policy."""
    routable = [q for q in state.pods if q.routable]
    if not routable:
        return
    policy = setup.routing.policy
    if policy == "random":
        while state.gateway:
            state.rng.choice(routable).queue.append(state.gateway.popleft())
        return
    while state.gateway:
        idx = state.gateway.popleft()
        pod = least_queue(state, routable) if policy == "least-queue" else epp_pick(setup, state, routable, idx)
        pod.queue.append(idx)


def _pick(state: ReplayState, pods: list[Pod]) -> Pod:
    return pods[0] if len(pods) == 1 else state.rng.choice(pods)


def least_queue(state: ReplayState, routable: list[Pod]) -> Pod:
    """The replica with the fewest requests waiting plus running; ties by the seeded RNG."""
    loads = [len(p.queue) + len(p.running) for p in routable]
    low = min(loads)
    return _pick(state, [p for p, n in zip(routable, loads, strict=True) if n == low])


def epp_scores(setup: ReplaySetup, state: ReplayState, routable: list[Pod], hashes: tuple[int, ...]) -> list[float]:
    """The EPP's weighted score of every candidate for a request with these block hashes."""
    w, kv_tokens = setup.routing.weights, setup.perf.kv_tokens
    hashes = hashes[:MAX_PREFIX_TOKENS_TO_MATCH // BLOCK_TOKENS]
    if hashes:
        indexes = [index_of(setup, state, p) for p in routable]
        prefix = [m / len(hashes) for m in match_longest_prefix(hashes, indexes)]
    else:
        prefix = [0.0] * len(routable)
    waiting = [len(p.queue) for p in routable]
    lo, hi = min(waiting), max(waiting)
    queue = [1.0 if hi == lo else (hi - n) / (hi - lo) for n in waiting]
    kv = [1.0 - min(1.0, p.kv_used / kv_tokens) if kv_tokens else 0.0 for p in routable]
    return [w.prefix * a + w.queue * b + w.kv_cache * c for a, b, c in zip(prefix, queue, kv, strict=True)]


def epp_pick(setup: ReplaySetup, state: ReplayState, routable: list[Pod], idx: int) -> Pod:
    """The max-score pick (random among the best); the pick's index takes the request's blocks."""
    hashes = setup.requests[idx].hash_ids
    scores = epp_scores(setup, state, routable, hashes)
    best = max(scores)
    pod = _pick(state, [p for p, s in zip(routable, scores, strict=True) if s == best])
    if hashes:
        index_of(setup, state, pod).insert(hashes)
    return pod


def index_of(setup: ReplaySetup, state: ReplayState, pod: Pod) -> LruBlocks:
    """The EPP's index for one endpoint, empty when the endpoint joins the pool."""
    index = state.router_index.get(pod.id)
    if index is None:
        index = state.router_index[pod.id] = router_index(setup.perf.kv_tokens)
    return index
