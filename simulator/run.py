"""Run profiles, the oracle and the tuner; summarize and write the outputs."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from components.config import ModelServiceConfig, StackConfig
from components.render.vllm import cold_start_seconds
from policies.rules_stack import STABILIZATION
from simulator import profile as profiles
from simulator.perf import replica_perf
from simulator.profile import Profile
from simulator.replay import ServiceReplay
from simulator.result import Result, percentile
from simulator.trace import Trace

ORACLE_WINDOW_SECONDS = 60.0
ORACLE_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
# The tuner stays within what the policy pack accepts (scaling-gpu-scale-down-stabilization).
STABILIZATION_FLOOR = cast(dict[str, int], STABILIZATION["minStabilizationSeconds"]["default"])


@dataclass
class Run:
    profile: Profile | None
    result: Result

    def metrics(self, oracle_cost: float | None = None) -> dict[str, Any]:
        r = self.result
        ttft = r.ttfts()
        waits = [a2 - a1 for a1, a2 in zip(r.arrival, r.admitted, strict=True) if not math.isnan(a2)]
        n = len(r.arrival)
        attained = sum(1 for x in ttft if x <= r.slo_seconds)

        def rnd(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 3)

        out = {
            "requests": n,
            "served": len(ttft),
            "ttft_p50_s": rnd(percentile(ttft, 0.5)),
            "ttft_p95_s": rnd(percentile(ttft, 0.95)),
            "ttft_p99_s": rnd(percentile(ttft, 0.99)),
            "queue_wait_p99_s": rnd(percentile(waits, 0.99)),
            "slo_ttft_s": r.slo_seconds,
            "slo_attainment": round(attained / n, 4) if n else None,
            "gpu_hours": round(r.gpu_hours, 3),
            "cost_usd": round(r.cost, 2),
            "node_hours": {k: round(v / 3600, 3) for k, v in sorted(r.node_seconds.items())},
            "preemptions": r.preemptions,
            "retries": r.retries,
        }
        if oracle_cost:
            out["cost_vs_oracle"] = round(r.cost / oracle_cost, 3)
        return out

    def attainment(self) -> float:
        r = self.result
        return sum(1 for x in r.ttfts() if x <= r.slo_seconds) / max(len(r.arrival), 1)


class Experiment:
    """Everything about one service and one trace; profiles vary."""

    def __init__(self, config: StackConfig, service: ModelServiceConfig, trace: Trace, *, seed: int = 0,
                 spot_interruptions_per_hour: float = 0.0, progress: Callable[[float], None] | None = None,
                 prometheus_outages: tuple[tuple[float, float], ...] = ()):
        self.config, self.service, self.trace = config, service, trace
        self.seed, self.spot_rate, self.progress = seed, spot_interruptions_per_hour, progress
        self.outages = prometheus_outages

    def profile(self, name: str) -> Profile:
        if name == "stack":
            return profiles.from_config(self.service, cold_start_seconds(self.service.model))
        if name == "seed-default":
            return profiles.seed_default(self.service)
        raise ValueError(f"unknown profile {name!r}; known: stack, seed-default")

    def run(self, profile: Profile, schedule: Callable[[float], int] | None = None) -> Run:
        replay = ServiceReplay(self.config, self.service, self.trace, profile, seed=self.seed,
                               spot_interruptions_per_hour=self.spot_rate, schedule=schedule, progress=self.progress,
                               prometheus_outages=self.outages)
        return Run(profile, replay.replay())

    # ------------------------------------------------------------------ oracle
    def oracle(self, target: float) -> tuple[Run, float]:
        """The clairvoyant lower bound: replicas sized to each minute's actual work, ready at
        once (no provisioning or cold start). The work estimate is scaled by the smallest
        factor whose replay meets the attainment target; returns the run and the factor."""
        perf = replica_perf(self.service, self.config.tier(self.service.tier).gpu)
        batch = max(1, min(perf.max_num_seqs, 32))
        per_token = perf.step_seconds(batch) / batch
        windows: dict[int, float] = {}
        for r in self.trace.requests:
            w = int(r.arrival // ORACLE_WINDOW_SECONDS)
            windows[w] = windows.get(w, 0.0) + perf.delta * r.prompt_tokens + r.output_tokens * per_token
        best: tuple[Run, float] | None = None
        for factor in ORACLE_FACTORS:
            def schedule(t: float, f: float = factor) -> int:
                work = windows.get(int(t // ORACLE_WINDOW_SECONDS), 0.0)
                return math.ceil(f * work / ORACLE_WINDOW_SECONDS) if work else 0
            run = self.run(self.profile("stack").with_(name="oracle"), schedule=schedule)
            best = (run, factor)
            if run.attainment() >= target:
                break
        assert best is not None
        return best

    # ------------------------------------------------------------------ tuner
    def tune(self, start: Profile, target: float, rounds: int = 2) -> tuple[Profile, Run, int]:
        """Coordinate descent for the cheapest profile that meets the attainment target (or,
        failing that, the highest attainment). Returns the profile, its run, evaluations."""
        env = self.config.environment
        floor = STABILIZATION_FLOOR[env]
        sc = self.service.scaling
        min_base = sc.min_replicas if env == "prod" else (0 if sc.scale_to_zero else 1)
        space: dict[str, list[Any]] = {
            "target_waiting": [1, 2, 3, 5, 8, 12],
            "kv_target": [0.6, 0.7, 0.8, 0.9],
            "scale_down_stabilization_seconds": [s for s in (60, 120, 300, 600, 900) if s >= floor],
            "polling_seconds": [5, 10, 15, 30],
            "baseline": list(range(min_base, min(sc.max_replicas, min_base + 3) + 1)),
        }
        cache: dict[Profile, Run] = {}  # every profile evaluated, once

        def score(p: Profile) -> tuple[Any, ...]:
            if p not in cache:
                cache[p] = self.run(p)
            run = cache[p]
            ok = run.attainment() >= target
            return (0, run.result.cost) if ok else (1, -run.attainment(), run.result.cost)

        best = start.with_(name="tuned")
        for _ in range(rounds):
            for key, values in space.items():
                candidates = [best.with_(**{key: v}) for v in values]
                if key == "baseline":
                    candidates = [c.with_(scale_to_zero=c.baseline == 0 and sc.scale_to_zero) for c in candidates]
                # Ties keep the current value: only a better score moves a parameter.
                best = min([best, *candidates], key=score)
        return best, cache[best], len(cache)


# ---------------------------------------------------------------------- outputs


def write_requests_csv(path: Path, run: Run, trace: Trace) -> None:
    r = run.result
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "arrival_s", "prompt_tokens", "output_tokens", "queue_wait_s", "ttft_s", "e2e_s", "capacity"])
        for i, req in enumerate(trace.requests):
            def fmt(x: float) -> str:
                return "" if math.isnan(x) else f"{x:.3f}"
            w.writerow([req.id, f"{req.arrival:.3f}", req.prompt_tokens, req.output_tokens,
                        fmt(r.admitted[i] - req.arrival), fmt(r.first_token[i] - req.arrival),
                        fmt(r.end[i] - req.arrival), r.capacity[i]])


# Rows of the timeline figure: (key, y label, count axis). One column per profile, rows share
# their y scale across columns so the profiles compare at a glance.
TIMELINE_ROWS: tuple[tuple[str, str, bool], ...] = (
    ("requests", "load\nrequests / s", False),
    ("tokens", "load\nk tokens / s", False),
    ("metric", "autoscaler metric\nwaiting requests", True),
    ("replicas", "replicas", True),
    ("nodes", "GPU nodes", True),
    ("events", "events", False),
    ("queue", "queued requests", True),
    ("ttft", "TTFT p95 (s)\nlast 60 s", False),
)
# Event rows, top to bottom, as (kind in simulator.state.EVENT_KINDS or scale direction, label, marker, colour).
EVENT_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("scale-up", "scale up", "^", "tab:green"),
    ("scale-down", "scale down", "v", "tab:olive"),
    ("node-launch", "node launch", "P", "tab:blue"),
    ("replica-ready", "cold start done", "o", "tab:purple"),
    ("spot-notice", "spot notice", "s", "tab:orange"),
    ("spot-reclaim", "spot reclaim", "X", "tab:red"),
    ("node-removed", "node removed", "d", "tab:gray"),
)


def headline(run: Run, target: float) -> str:
    """The figures an SRE reads first: SLO attainment against its target, TTFT p95, GPU-hours, cost."""
    m = run.metrics()
    p95 = m["ttft_p95_s"]
    return (f"attainment {m['slo_attainment']:.1%} (target {target:.0%}, TTFT <= {m['slo_ttft_s']:g} s)\n"
            f"TTFT p95 {'-' if p95 is None else f'{p95:,.1f} s'}  |  {m['gpu_hours']:.1f} GPU-h  |  ${m['cost_usd']:,.2f}")


def _event_points(run: Run) -> dict[str, list[float]]:
    """Event times in minutes by event row (a scale decision's row by the sign of its change)."""
    points: dict[str, list[float]] = {kind: [] for kind, *_ in EVENT_ROWS}
    for e in run.result.events:
        kind = ("scale-up" if e.value > 0 else "scale-down") if e.kind == "scale" else e.kind
        points[kind].append(e.t / 60)
    return points


def _draw_column(axes: dict[str, Any], run: Run) -> None:
    """One profile's column of the timeline figure."""
    tl = run.result.timeline
    minutes = [row["t"] / 60 for row in tl]

    def col(key: str) -> list[float]:
        return [math.nan if row[key] is None else row[key] for row in tl]

    p = run.profile
    ax = axes["requests"]
    ax.plot(minutes, col("requests_per_s"), color="tab:gray", lw=0.8, label="requests / s (15 s mean)")
    ax = axes["tokens"]
    ax.plot(minutes, [x / 1000 for x in col("prompt_tokens_per_s")], color="tab:brown", lw=0.8, label="prompt tokens")
    ax.plot(minutes, [x / 1000 for x in col("output_tokens_per_s")], color="tab:cyan", lw=0.8, label="output tokens")
    ax = axes["metric"]
    ax.plot(minutes, col("waiting_metric"), color="tab:red", lw=0.8,
            label="waiting requests KEDA reads\n(stack: minus baseline x target)")
    if p is not None:
        target = [p.target_waiting * max(row["burst_desired"], 1) for row in tl]
        ax.step(minutes, target, where="post", color="black", ls="--", lw=0.8,
                label="scale-up line: target per replica\nx burst replicas")
    ax = axes["replicas"]
    ax.step(minutes, col("desired"), where="post", color="black", ls="--", lw=0.9, label="desired (KEDA + HPA)")
    ax.step(minutes, col("ready"), where="post", color="tab:green", label="ready")
    ax.step(minutes, col("pending"), where="post", color="tab:orange", label="starting (cold start)")
    if p is not None:
        ax.axhline(p.baseline, color="tab:blue", ls=":", lw=1, label="minReplicas (baseline)")
        ax.axhline(p.max_replicas, color="tab:red", ls=":", lw=1, label="maxReplicas")
    ax = axes["nodes"]
    ax.step(minutes, col("nodes_on_demand"), where="post", color="tab:blue", label="on-demand")
    ax.step(minutes, col("nodes_spot"), where="post", color="tab:orange", label="spot")
    ax = axes["events"]
    points = _event_points(run)
    for y, (kind, label, marker, colour) in enumerate(EVENT_ROWS):
        xs = points[kind]
        ax.plot(xs, [y] * len(xs), ls="none", marker=marker, color=colour, ms=5, alpha=0.7, label=label)
    ax = axes["queue"]
    ax.plot(minutes, col("queue"), color="tab:purple", lw=0.8, label="queued (caller + vLLM)")
    ax = axes["ttft"]
    ax.plot(minutes, col("ttft_p95"), color="tab:purple", lw=0.8, label="TTFT p95")
    ax.axhline(run.result.slo_seconds, color="red", ls="--", lw=1, label="SLO")
    ax.set_yscale("log")


def timeline_figure(runs: dict[str, Run], title: str, target: float):
    """One column per profile (same rows, shared axes): load, the autoscaler's metric, replicas
    with minReplicas/maxReplicas, nodes, events, queue and TTFT, the headline figures on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    names = list(runs)
    fig, grid = plt.subplots(len(TIMELINE_ROWS), len(names), figsize=(5.5 * len(names) + 2.5, 17),
                             sharex=True, sharey="row", squeeze=False, layout="constrained")
    for c, name in enumerate(names):
        axes = {key: grid[r][c] for r, (key, _, _) in enumerate(TIMELINE_ROWS)}
        _draw_column(axes, runs[name])
        grid[0][c].set_title(f"{name}\n{headline(runs[name], target)}", fontsize=10)
        grid[-1][c].set_xlabel("minutes from the trace start")
    for r, (key, label, count) in enumerate(TIMELINE_ROWS):
        grid[r][0].set_ylabel(label)
        for ax in grid[r]:
            ax.grid(alpha=0.3)
            if count:
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_ylim(bottom=0)
        if key == "events":  # one category per row, top to bottom
            grid[r][0].set_yticks(range(len(EVENT_ROWS)), [label for _, label, *_ in EVENT_ROWS])
            grid[r][0].set_ylim(len(EVENT_ROWS) - 0.5, -0.5)
        if key == "ttft":  # log scale for minutes-long misses, plain numbers on the ticks
            grid[r][0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        # Legends right of the last column, outside the data.
        grid[r][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=12)
    return fig


def write_timeline_png(path: Path, runs: dict[str, Run], title: str, target: float) -> None:
    """The timeline figure (``timeline_figure``) as a PNG."""
    import matplotlib.pyplot as plt

    fig = timeline_figure(runs, title, target)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def snippet(profile: Profile, service: ModelServiceConfig, metrics: dict[str, Any]) -> str:
    """The tuned values as a stack-file YAML snippet with the predicted figures."""
    lines = [
        f"# tuned by python -m simulator: SLO attainment {metrics['slo_attainment']:.1%} "
        f"(target {service.slo.attainment_target:.0%}), TTFT p95 {metrics['ttft_p95_s']}s, "
        f"${metrics['cost_usd']} for the trace",
        "scaling:",
        f"  minReplicas: {profile.baseline}",
        f"  maxReplicas: {profile.max_replicas}",
        f"  targetWaitingPerReplica: {profile.target_waiting:g}",
        f"  kvCacheTarget: {profile.kv_target:g}" if profile.kv_target is not None else "",
        f"  pollingIntervalSeconds: {profile.polling_seconds}",
        f"  scaleDownStabilizationSeconds: {profile.scale_down_stabilization_seconds}",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def dump(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
