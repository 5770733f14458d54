"""What the simulator shows: the timeline figure, the tuner's Pareto front (table and figure)
and the tuned profile as a stack-file snippet."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from components.config import ModelServiceConfig
from simulator.profile import Profile
from simulator.run import Run
from simulator.tune import Point

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
    """The figures an SRE reads first: SLO attainment (whole trace and steady state) against its
    target, TTFT p95, GPU-hours, cost."""
    m = run.metrics()
    p95 = m["ttft_p95_s"]
    steady = m["slo_attainment_steady"]
    return (f"attainment {m['slo_attainment']:.1%}, steady {'-' if steady is None else f'{steady:.1%}'} "
            f"(target {target:.0%}, TTFT <= {m['slo_ttft_s']:g} s)\n"
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


def pareto_rows(front: list[Point], chosen: Point) -> list[dict[str, Any]]:
    """The front as rows for summary.json and the table: the knobs and the figures."""
    return [{
        "chosen": p is chosen, "attainment_steady_worst": round(p.attainment, 4), "cost_usd_mean": round(p.cost, 2),
        "minReplicas": p.profile.baseline, "maxReplicas": p.profile.max_replicas,
        "targetWaitingPerReplica": p.profile.target_waiting, "kvCacheTarget": p.profile.kv_target,
        "ttftTrigger": p.profile.ttft_target is not None, "pollingIntervalSeconds": p.profile.polling_seconds,
        "scaleDownStabilizationSeconds": p.profile.scale_down_stabilization_seconds,
        "scaleUpPodsPerMinute": p.profile.scale_up_pods_per_minute,
        "predictive": p.profile.predictive is not None, "bufferNodes": p.profile.buffer_nodes,
    } for p in front]


def pareto_table(rows: list[dict[str, Any]]) -> str:
    """The Pareto front as a fixed-width table, cheapest first; ``*`` marks the chosen profile."""
    columns = [k for k in rows[0] if k != "chosen"] if rows else []
    heads = {"attainment_steady_worst": "steady(worst)", "cost_usd_mean": "cost $(mean)"}
    names = [heads.get(c, c.replace("PerReplica", "").replace("Seconds", "S").replace("PodsPerMinute", "/min")) for c in columns]
    widths = [max(len(n), *(len(_cell(r[c])) for r in rows)) for n, c in zip(names, columns, strict=True)]
    lines = ["  " + " ".join(n.rjust(w) for n, w in zip(names, widths, strict=True))]
    for r in rows:
        mark = "* " if r["chosen"] else "  "
        lines.append(mark + " ".join(_cell(r[c]).rjust(w) for c, w in zip(columns, widths, strict=True)))
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def write_pareto_png(path: Path, points: list[Point], front: list[Point], chosen: Point, start: Point, title: str,
                     target: float) -> None:
    """Every evaluated profile (grey), the front (line), the chosen one (star) and the stack's (square)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), layout="constrained")
    ax.scatter([p.cost for p in points], [100 * p.attainment for p in points], s=12, color="tab:gray", alpha=0.5,
               label="evaluated profiles")
    ax.plot([p.cost for p in front], [100 * p.attainment for p in front], "o-", color="tab:blue", ms=4, label="Pareto front")
    ax.plot([start.cost], [100 * start.attainment], "s", color="tab:orange", ms=9, label="stack profile")
    ax.plot([chosen.cost], [100 * chosen.attainment], "*", color="tab:red", ms=15, label="chosen")
    ax.axhline(100 * target, color="red", ls="--", lw=1, label="attainment target")
    ax.set_xlabel("mean cost over traces and seeds (USD)")
    ax.set_ylabel("worst steady-state SLO attainment (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def snippet(stack: str, service: ModelServiceConfig, chosen: Point, judged_on: str) -> str:
    """The chosen profile as a stack-file YAML snippet naming its service, with its figures."""
    p = chosen.profile
    runs = chosen.runs
    rejected = max(r.rejected for r in runs)
    lines = [
        f"# {stack}/{service.name}, tuned by python -m simulator on {judged_on}:",
        f"#   steady-state SLO attainment >= {chosen.attainment:.2%} on every replay (requests within maxModelLen; "
        f"target {service.slo.attainment_target:.0%}, TTFT <= {service.slo.ttft_p95_seconds:g} s),",
        f"#   whole trace >= {min(r.attainment for r in runs):.2%} with {rejected} rejected (longer than maxModelLen), "
        f"mean cost ${chosen.cost:,.2f} per replay",
        "modelServices:",
        f"  - name: {service.name}",
        "    scaling:",
        f"      minReplicas: {p.baseline}",
        f"      maxReplicas: {p.max_replicas}",
        f"      targetWaitingPerReplica: {p.target_waiting:g}",
        f"      kvCacheTarget: {p.kv_target:g}" if p.kv_target is not None else "",
        f"      ttftTrigger: {'true' if p.ttft_target is not None else 'false'}",
        f"      pollingIntervalSeconds: {p.polling_seconds}",
        f"      scaleDownStabilizationSeconds: {p.scale_down_stabilization_seconds}",
        f"      scaleUpPodsPerMinute: {p.scale_up_pods_per_minute}",
        *_lever_lines(service, p),
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _lever_lines(service: ModelServiceConfig, p: Profile) -> list[str]:
    """The levers the tuner chose, as stack-file lines (the buffer is the tier's: a comment)."""
    lines = []
    if p.predictive is not None:
        lines += ["    predictiveScaling:", "      enabled: true", f"      requestsPerSecondPerReplica: {p.predictive.rps_per_replica:g}"]
    elif service.predictive_scaling.enabled:
        lines += ["    predictiveScaling:", "      enabled: false"]
    if p.buffer_nodes is not None:
        lines.append(f"# gpuTiers[{service.tier}].capacityBuffer: " + (
            f"{{service: {service.name}, replicas: {p.buffer_nodes}}}" if p.buffer_nodes else "none"))
    return lines
