"""The tuner: the cheapest scaling profile that meets the SLO on every trace and seed.

A profile is judged on every (trace, seed) replay: its ``attainment`` is the worst steady-state
attainment among the requests within ``maxModelLen`` (rejections are no matter of scaling and
are reported apart), its ``cost`` the mean cost. The search is coordinate descent over
``SPACE``: one knob at a time over all its values around the current best, the others held,
until a round changes nothing (at most ``ROUNDS``). Why not a grid: the knobs' product is
~10^5 profiles (hours at ~0.1 s a replay), while each knob is close to monotone in cost and
attainment on its own, so a few sweeps find the cheapest feasible point in ~50 replays per
baseline (``Tuner.search`` says why the baseline is searched apart); every replay is cached and
all of them make the cost/attainment Pareto front.

Floors come from where the platform states them, never copies: the baseline from
``profile.baseline_floor`` (prod refuses scale to zero), the stabilization window from the
policy pack's ``scaling-gpu-scale-down-stabilization`` default, the polling interval and the
other bounds from the config model's fields.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from components.config import Scaling
from components.render import scaling
from policies.rules_stack import STABILIZATION
from simulator import levers
from simulator.oracle import nodepool_cap
from simulator.predictive import PredictiveTrigger
from simulator.profile import Profile, baseline_floor
from simulator.run import Experiment, Run

STABILIZATION_FLOOR = cast(dict[str, int], STABILIZATION["minStabilizationSeconds"]["default"])
POLLING_FLOOR = cast(int, Scaling.model_fields["polling_interval_seconds"].metadata[0].ge)
ROUNDS = 3
SHORTFALL_PENALTY = 20.0  # cost markup per unit of attainment short of the target (1 point: +20 %)
BURSTS = (1, 2, 3, 4, 6, 8, 12, 16)  # maxReplicas - minReplicas


@dataclass(frozen=True)
class Replay:
    """What the tuner keeps of one replay: a few figures, not the per-request lists (hundreds of
    profiles x traces x seeds would not fit the memory budget)."""

    steady_attainment: float  # among the requests within maxModelLen
    attainment: float  # the whole trace, rejections as misses
    rejected: int
    cost: float

    @classmethod
    def of(cls, run: Run) -> Replay:
        return cls(run.steady_attainment(servable=True), run.attainment(), run.result.rejected, run.result.cost)


@dataclass(frozen=True)
class Point:
    """One profile judged on every trace and seed."""

    profile: Profile
    attainment: float  # worst steady-state attainment (servable requests)
    cost: float  # mean cost over the replays
    runs: tuple[Replay, ...]  # one per trace x seed, in the experiments' order

    def dominates(self, other: Point) -> bool:
        return (self.cost <= other.cost and self.attainment >= other.attainment
                and (self.cost < other.cost or self.attainment > other.attainment))


def space(experiment: Experiment) -> dict[str, list[Any]]:
    """Each knob's values, within the floors and what the NodePools hold (``maxReplicas`` is a knob)."""
    env, svc = experiment.config.environment, experiment.service
    floor, cap = baseline_floor(env, svc), nodepool_cap(experiment)
    return {  # the responsive knobs first: a descent settles them before the costly ones
        "baseline": list(range(floor, max(floor, min(cap - 1, floor + 5)) + 1)),
        "burst": [b for b in BURSTS if floor + b <= cap] or [1],
        "target_waiting": [1, 2, 3, 5, 8, 12],
        "kv_target": [0.6, 0.7, 0.8, 0.9, 0.95],
        "ttft_trigger": [False, True],
        "scale_down_stabilization_seconds": [s for s in (60, 120, 300, 600, 900) if s >= STABILIZATION_FLOOR[env]],
        "polling_seconds": [p for p in (5, 10, 15, 30) if p >= POLLING_FLOOR],
        "scale_up_pods_per_minute": [1, 2, 4, 8],
        **lever_space(experiment),
    }


def lever_space(experiment: Experiment, rps: float | None = None) -> dict[str, list[Any]]:
    """The cold-start levers that are profile knobs (issue 18): the predictive trigger off or on
    (KEDA mode; the configured requests per second per replica, else ``rps``, else what a replica
    sustains on the experiment's trace) and a capacity buffer of none or one node (with an on-demand
    pool). The loaders and the compile cache act on the cold start: tune once per set (``--levers``)."""
    svc, cfg = experiment.service, experiment.config
    out: dict[str, list[Any]] = {}
    if svc.scaling.mode == "keda":
        rate = svc.predictive_scaling.requests_per_second_per_replica or rps or levers.replica_rps(svc, cfg, experiment.trace)
        tier = cfg.tier(svc.tier)
        trigger = PredictiveTrigger(rate, scaling.lookahead_seconds(svc, tier.instance_types,
                                                                    fast_image_pull=levers.fast_image_pull(cfg)),
                                    svc.predictive_scaling.range_seconds, svc.predictive_scaling.resolution_seconds)
        out["predictive"] = [None, trigger]
    if cfg.tier(svc.tier).on_demand.enabled:
        out["buffer_nodes"] = [0, 1]
    return out


def apply(experiment: Experiment, start: Profile, key: str, value: Any) -> Profile:
    """The profile with one knob changed, and what the rendered ScaledObject derives from it."""
    svc = experiment.service
    baseline, burst = start.baseline, start.burst_max
    if key == "baseline":
        baseline = value
    elif key == "burst":
        burst = value
    elif key == "ttft_trigger":
        start = start.with_(ttft_target=svc.slo.ttft_p95_seconds if value else None)
    else:
        start = start.with_(**{key: value})
    burst = max(1, min(burst, nodepool_cap(experiment) - baseline))
    return start.with_(name="tuned", baseline=baseline, max_replicas=baseline + burst,
                       scale_to_zero=baseline == 0 and svc.scaling.scale_to_zero,
                       fallback_replicas=max(1, burst // 2), burst_above_one=burst > 1)


def knob(profile: Profile, key: str) -> Any:
    if key == "buffer_nodes" and profile.buffer_nodes is None:
        return None  # as configured: every value is a change
    if key == "burst":
        return profile.burst_max
    if key == "ttft_trigger":
        return profile.ttft_target is not None
    return getattr(profile, key)


class Tuner:
    """Coordinate descent over ``space`` on several experiments (traces x seeds) of one service."""

    def __init__(self, experiments: Sequence[Experiment], target: float):
        self.experiments, self.target = list(experiments), target
        self.space = space(self.experiments[0])
        if "predictive" in self.space:  # sized for the heaviest mix among the traces
            rps = min(levers.replica_rps(e.service, e.config, e.trace) for e in self.experiments)
            self.space.update(lever_space(self.experiments[0], rps))
        self.points: dict[Profile, Point] = {}

    def judge(self, profile: Profile) -> Point:
        if profile not in self.points:
            runs = tuple(Replay.of(e.run(profile)) for e in self.experiments)
            self.points[profile] = Point(profile, min(r.steady_attainment for r in runs),
                                         statistics.fmean(r.cost for r in runs), runs)
        return self.points[profile]

    def score(self, profile: Profile) -> float:
        """What the descent minimizes: the cost, marked up by ``SHORTFALL_PENALTY`` per unit of
        attainment below the target. A lexicographic "feasible first, else most attainment"
        drives an infeasible start to the costliest corner and strands it there; the markup
        walks toward the cheap side of the target instead. The answer is still only a feasible point."""
        p = self.judge(profile)
        return p.cost * (1 + SHORTFALL_PENALTY * max(0.0, self.target - p.attainment))

    def search(self, start: Profile) -> Point:
        """For each baseline, cheapest first, a descent over the other knobs (the baseline costs
        most and a sweep of it strands the descent at a high baseline); stops once a baseline's
        best feasible point costs more than the one below it. Returns the cheapest feasible
        profile evaluated, or, when none is, the one with the highest attainment."""
        previous: float | None = None
        for baseline in self.space["baseline"]:
            self.descend(apply(self.experiments[0], start, "baseline", baseline))
            here = [p.cost for p in self.points.values() if p.profile.baseline == baseline and self._feasible(p)]
            if here and previous is not None and min(here) >= previous:
                break
            previous = min(here) if here else None
        return self.chosen()

    def chosen(self) -> Point:
        feasible = [p for p in self.points.values() if self._feasible(p)]
        if feasible:
            return min(feasible, key=lambda p: (p.cost, -p.attainment))
        return max(self.points.values(), key=lambda p: (p.attainment, -p.cost))

    def descend(self, best: Profile) -> Profile:
        """Coordinate descent over every knob but the baseline, until a round changes nothing."""
        for _ in range(ROUNDS):
            before = best
            for key, values in self.space.items():
                if key == "baseline":
                    continue
                candidates = [apply(self.experiments[0], best, key, v) for v in values if v != knob(best, key)]
                best = min([best, *candidates], key=self.score)  # ties keep the current value
            if best == before:
                break
        return best

    def _feasible(self, point: Point) -> bool:
        return point.attainment >= self.target

    def front(self) -> list[Point]:
        """The evaluated profiles no other one dominates, cheapest first (one per cost/attainment pair)."""
        points = list(self.points.values())
        front = [p for p in points if not any(q.dominates(p) for q in points)]
        unique: dict[tuple[float, float], Point] = {}
        for p in front:
            unique.setdefault((p.cost, p.attainment), p)
        return sorted(unique.values(), key=lambda p: p.cost)
