"""Hold the step model against the published vLLM measurements in ``data/vllm_measurements.csv``.

Each row is one published figure (model, GPU, TP, vLLM version, input/output lengths,
concurrency, requests, metric, value, source). The closed loop of ``simulator.perf_sim`` runs
the row's benchmark and gives the same metric; a row may be excluded only with its reason in
the ``excluded`` column (a scheduler mode we do not model, a client-side ceiling, ...).
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from platform_facts import catalog, models
from simulator import perf, perf_sim

DATA = Path(__file__).parent / "data" / "vllm_measurements.csv"
TOLERANCE = 0.25


@dataclass(frozen=True)
class Row:
    id: str
    model: str
    instance_type: str
    tp: int
    vllm: str
    input_tokens: int
    output_tokens: int
    concurrency: int
    requests: int
    metric: str
    value: float
    excluded: str
    source: str


def rows() -> list[Row]:
    with DATA.open(newline="") as f:
        return [Row(r["id"], r["model"], r["instance_type"], int(r["tp"]), r["vllm"], int(r["input_tokens"]),
                    int(r["output_tokens"]), int(r["concurrency"]), int(r["requests"]), r["metric"], float(r["value"]),
                    r["excluded"], r["source"]) for r in csv.DictReader(f)]


def modelled(row: Row) -> float:
    """The row's metric as the model gives it."""
    arch = models.architecture(row.model)
    if arch is None:
        raise ValueError(f"{row.id}: {row.model} is not in platform_facts.models")
    replica = perf.build(perf.Model(arch), perf.hardware(catalog.INSTANCE_TYPES[row.instance_type]), row.tp)
    out = perf_sim.closed_loop(replica, row.concurrency, row.requests, row.input_tokens, row.output_tokens)
    return float(perf_sim.summary(out, row.requests, replica.kv_tokens)[row.metric])


def table() -> list[dict[str, object]]:
    """Every row, model against measurement."""
    result = []
    for r in rows():
        m = modelled(r)
        result.append({"id": r.id, "gpu": catalog.INSTANCE_TYPES[r.instance_type].gpu, "tp": r.tp, "vllm": r.vllm,
                       "in/out": f"{r.input_tokens}/{r.output_tokens}", "c": r.concurrency, "metric": r.metric,
                       "published": r.value, "model": round(m, 5), "error": round(m / r.value - 1, 3),
                       "excluded": r.excluded})
    return result


def render(lines: list[dict[str, object]]) -> str:
    head = f"{'id':18} {'gpu':5} {'tp':>2} {'vllm':16} {'in/out':8} {'c':>4} {'metric':20} {'published':>10} {'model':>10} {'error':>7}"
    out = [head]
    for x in lines:
        flag = "  excluded: " + str(x["excluded"])[:60] if x["excluded"] else ""
        out.append(f"{x['id']!s:18} {x['gpu']!s:5} {x['tp']!s:>2} {x['vllm']!s:16} {x['in/out']!s:8} {x['c']!s:>4} "
                   f"{x['metric']!s:20} {x['published']!s:>10} {x['model']!s:>10} {float(str(x['error'])):>+7.1%}{flag}")
    return "\n".join(out)


def fit(grid: dict[str, tuple[float, ...]] | None = None) -> list[tuple[float, float, dict[str, float]]]:
    """Grid search of the memory efficiencies, step overhead and all-reduce latency: the settings
    by squared log error over the included rows (best first), with the worst row's |log error|.
    Slow (a minute); run by hand: ``python -c 'from simulator.perf_calibration import fit; print(fit()[:5])'``."""
    grid = grid or {"h100": (0.7, 0.75, 0.8, 0.85, 0.9), "a100": (0.7, 0.75, 0.8, 0.85, 0.9),
                    "overhead": (0.0003, 0.0006, 0.0009, 0.0012), "allreduce": (10e-6, 20e-6, 30e-6, 40e-6)}
    included = [r for r in rows() if not r.excluded]
    saved = dict(perf.EFF_MEMORY), perf.STEP_OVERHEAD_SECONDS, perf.ALLREDUCE_SECONDS
    results = []
    try:
        for h100, a100, overhead, allreduce in itertools.product(*grid.values()):
            perf.EFF_MEMORY.update(h100=h100, a100=a100)
            perf.STEP_OVERHEAD_SECONDS, perf.ALLREDUCE_SECONDS = overhead, allreduce
            errors = [math.log(modelled(r) / r.value) for r in included]
            results.append((sum(e * e for e in errors), max(abs(e) for e in errors),
                            {"h100": h100, "a100": a100, "overhead": overhead, "allreduce": allreduce}))
    finally:
        perf.EFF_MEMORY.clear()
        perf.EFF_MEMORY.update(saved[0])
        perf.STEP_OVERHEAD_SECONDS, perf.ALLREDUCE_SECONDS = saved[1], saved[2]
    return sorted(results, key=lambda x: x[0])
