"""Clairvoyant cost references for a service on a trace.

Both controllers know each minute's work in advance and get replicas Ready the moment they want
them (no node launch, no cold start). The work of a window is its prefill plus its decode at a
batch of 32 (``window_work``); the replicas a window gets are that work over the window's
length times a factor, and each oracle takes the smallest factor in ``FACTORS`` whose replay
meets the attainment target among the requests within ``maxModelLen`` (rejections are no
matter of capacity), or, when none does, the largest.

- ``unconstrained``: the bound as before issue 17. No ``minReplicas``/``maxReplicas``, no NodePool
  limit, each replica billed as its share of a node (half a p5 for a tp-4 70B replica).
- ``constrained``: what a clairvoyant controller within the service's limits would pay:
  between the policy floor (``profile.baseline_floor``) and ``maxReplicas``, within the NodePools'
  GPU limits, replicas packed on whole nodes and every live node billed whole.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from components.render.capacity import placement
from simulator.perf import replica_perf
from simulator.profile import baseline_floor

if TYPE_CHECKING:
    from simulator.run import Experiment, Run

WINDOW_SECONDS = 60.0
FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
DECODE_BATCH = 32  # the batch the work estimate assumes for decode steps (capped by max_num_seqs)


def window_work(experiment: Experiment) -> dict[int, float]:
    """Replica-seconds of work per window: prefill at ``delta`` per prompt token, decode at the
    per-token share of a step at ``DECODE_BATCH``; rejected requests do no work."""
    svc, config = experiment.service, experiment.config
    perf = replica_perf(svc, config.tier(svc.tier).gpu)
    batch = max(1, min(perf.max_num_seqs, DECODE_BATCH))
    per_token = perf.step_seconds(batch) / batch
    windows: dict[int, float] = {}
    for r in experiment.trace.requests:
        if r.prompt_tokens + r.output_tokens > svc.max_model_len:
            continue
        w = int(r.arrival // WINDOW_SECONDS)
        windows[w] = windows.get(w, 0.0) + perf.delta * r.prompt_tokens + r.output_tokens * per_token
    return windows


def unconstrained(experiment: Experiment, target: float) -> tuple[Run, float]:
    """Replicas sized to each window's work, no limits, node shares billed."""
    windows = window_work(experiment)
    profile = experiment.profile("stack").with_(name="oracle")

    def run(factor: float) -> Run:
        def schedule(t: float) -> int:
            work = windows.get(int(t // WINDOW_SECONDS), 0.0)
            return math.ceil(factor * work / WINDOW_SECONDS) if work else 0
        return experiment.run(profile, schedule=schedule)

    return _smallest_factor(run, target)


def nodepool_cap(experiment: Experiment) -> int:
    """The most replicas of this service the NodePools' GPU limits hold (on-demand plus spot)."""
    config, svc = experiment.config, experiment.service
    tier = config.tier(svc.tier)
    place = placement(svc, tier)
    gpus = (config.on_demand_gpu_limit(tier.name) if tier.on_demand.enabled else 0) + (tier.spot.gpu_limit if tier.spot.enabled else 0)
    return gpus // place.instance.gpus * place.replicas_per_node


def replica_cap(experiment: Experiment) -> int:
    """The most replicas the service may run: ``maxReplicas``, within what the NodePools hold."""
    return min(experiment.service.scaling.max_replicas, nodepool_cap(experiment))


def constrained(experiment: Experiment, target: float) -> tuple[Run, float]:
    """Replicas sized to each window's work between the policy floor and ``replica_cap``, on whole nodes."""
    windows = window_work(experiment)
    floor = baseline_floor(experiment.config.environment, experiment.service)
    cap = replica_cap(experiment)
    profile = experiment.profile("stack").with_(name="constrained-oracle", baseline=floor)

    def run(factor: float) -> Run:
        def schedule(t: float) -> int:
            work = windows.get(int(t // WINDOW_SECONDS), 0.0)
            return min(cap, max(floor, math.ceil(factor * work / WINDOW_SECONDS)))
        return experiment.run(profile, schedule=schedule, whole_nodes=True)

    return _smallest_factor(run, target)


def _smallest_factor(run, target: float) -> tuple[Run, float]:
    best: tuple[Run, float] | None = None
    for factor in FACTORS:
        replay = run(factor)
        best = (replay, factor)
        if (replay.result.attainment(servable=True) or 0.0) >= target:
            break
    assert best is not None
    return best
