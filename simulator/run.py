"""Run profiles of one service on one trace and summarize each run."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import ModelServiceConfig, StackConfig
from components.render import scaling
from components.render.vllm import cold_start_seconds
from simulator import levers
from simulator import profile as profiles
from simulator.profile import Profile
from simulator.replay import ServiceReplay
from simulator.result import Result, percentile
from simulator.routing import RANDOM, RoutingPolicy
from simulator.trace import Trace

TRANSIENT_MINUTES = 10.0  # the warm-up the headline attainment is split from (--transient-minutes)


@dataclass
class Run:
    profile: Profile | None
    result: Result
    transient_seconds: float = TRANSIENT_MINUTES * 60

    def metrics(self, oracle_cost: float | None = None, constrained_oracle_cost: float | None = None) -> dict[str, Any]:
        r = self.result
        ttft = r.ttfts()
        waits = [a2 - a1 for a1, a2 in zip(r.arrival, r.admitted, strict=True) if not math.isnan(a2)]

        def rnd(x: float | None, digits: int = 3) -> float | None:
            return None if x is None or math.isnan(x) else round(x, digits)

        out = {
            "requests": len(r.arrival),
            "served": len(ttft),
            "rejected": r.rejected,
            "ttft_p50_s": rnd(percentile(ttft, 0.5)),
            "ttft_p95_s": rnd(percentile(ttft, 0.95)),
            "ttft_p99_s": rnd(percentile(ttft, 0.99)),
            "queue_wait_p99_s": rnd(percentile(waits, 0.99)),
            "slo_ttft_s": r.slo_seconds,
            "slo_attainment": rnd(r.attainment(), 4),
            "slo_attainment_transient": rnd(r.attainment(until=self.transient_seconds), 4),
            "slo_attainment_steady": rnd(r.attainment(since=self.transient_seconds), 4),
            # What the tuner and the lever report judge: the steady state of the requests within
            # maxModelLen (a rejected request is a miss above, and no scaling serves it).
            "slo_attainment_steady_servable": rnd(r.attainment(since=self.transient_seconds, servable=True), 4),
            "gpu_hours": round(r.gpu_hours, 3),
            "cost_usd": round(r.cost, 2),
            "node_hours": {k: round(v / 3600, 3) for k, v in sorted(r.node_seconds.items())},
            "preemptions": r.preemptions,
            "retries": r.retries,
        }
        if oracle_cost:
            out["cost_vs_oracle"] = round(r.cost / oracle_cost, 3)
        if constrained_oracle_cost:
            out["cost_vs_constrained_oracle"] = round(r.cost / constrained_oracle_cost, 3)
        return out

    def routing_metrics(self) -> dict[str, Any]:
        """What a routing policy changes: TTFT, attainment, cost and the prefix cache's hit ratio."""
        m = self.metrics()
        keys = ("ttft_p50_s", "ttft_p95_s", "slo_attainment", "slo_attainment_transient", "slo_attainment_steady",
                "gpu_hours", "cost_usd", "preemptions")
        return {"routing": self.result.routing, **{k: m[k] for k in keys},
                "prefix_cached_tokens": sum(self.result.cached_tokens),
                "prefix_hit_ratio": round(self.result.prefix_hit_ratio(), 4)}

    def attainment(self) -> float:
        return self.result.attainment() or 0.0

    def steady_attainment(self, servable: bool = False) -> float:
        """The steady state's attainment (the whole trace's when it is shorter than the warm-up);
        with ``servable``, among the requests within ``maxModelLen`` only."""
        steady = self.result.attainment(since=self.transient_seconds, servable=servable)
        return (self.result.attainment(servable=servable) or 0.0) if steady is None else steady


class Experiment:
    """Everything about one service and one trace; profiles vary."""

    def __init__(self, config: StackConfig, service: ModelServiceConfig, trace: Trace, *, seed: int = 0,
                 spot_interruptions_per_hour: float = 0.0, progress: Callable[[float], None] | None = None,
                 prometheus_outages: tuple[tuple[float, float], ...] = (), transient_minutes: float = TRANSIENT_MINUTES,
                 warm_start: bool = False, routing: RoutingPolicy = RANDOM):
        self.config, self.service, self.trace = config, service, trace
        self.routing = routing
        self.seed, self.spot_rate, self.progress = seed, spot_interruptions_per_hour, progress
        self.outages = prometheus_outages
        self.transient_seconds = transient_minutes * 60
        self.warm_start = warm_start

    def profile(self, name: str) -> Profile:
        if name == "stack":
            lookahead = scaling.lookahead_seconds(self.service, self.config.tier(self.service.tier).instance_types,
                                                  fast_image_pull=levers.fast_image_pull(self.config))
            return profiles.from_config(self.service, cold_start_seconds(self.service.model), lookahead_seconds=lookahead)
        if name == "seed-default":
            return profiles.seed_default(self.service)
        raise ValueError(f"unknown profile {name!r}; known: stack, seed-default")

    def run(self, profile: Profile, schedule: Callable[[float], int] | None = None, *, whole_nodes: bool = False) -> Run:
        replay = ServiceReplay(self.config, self.service, self.trace, profile, seed=self.seed,
                               spot_interruptions_per_hour=self.spot_rate, schedule=schedule, progress=self.progress,
                               prometheus_outages=self.outages, whole_nodes=whole_nodes,
                               warm_start_seconds=self.transient_seconds if self.warm_start else 0.0,
                               routing_policy=self.routing)
        return Run(profile, replay.replay(), self.transient_seconds)

    def oracle(self, target: float) -> tuple[Run, float]:
        """The unconstrained clairvoyant bound (``simulator.oracle.unconstrained``)."""
        from simulator import oracle

        return oracle.unconstrained(self, target)


def write_requests_csv(path: Path, run: Run, trace: Trace) -> None:
    r = run.result
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "arrival_s", "prompt_tokens", "output_tokens", "queue_wait_s", "ttft_s", "e2e_s", "capacity",
                    "cached_tokens"])
        for i, req in enumerate(trace.requests):
            def fmt(x: float) -> str:
                return "" if math.isnan(x) else f"{x:.3f}"
            w.writerow([req.id, f"{req.arrival:.3f}", req.prompt_tokens, req.output_tokens,
                        fmt(r.admitted[i] - req.arrival), fmt(r.first_token[i] - req.arrival),
                        fmt(r.end[i] - req.arrival), r.capacity[i], r.cached_tokens[i]])


def dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
