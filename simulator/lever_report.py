"""The lever report (issue 18 item 7): the stack profile replayed with each cold-start lever
toggled, one at a time and all that pay together, per trace:

    python -m simulator --stack prod --service chat-8b --trace A --trace B --lever-report

Each lever the stack lacks is turned on alone (``+lever``), each it has turned off alone
(``-lever``). A lever *pays* on a trace when having it raises steady-state attainment (servable
requests) by at least ``PAYS_POINTS`` or keeps it within ``PAYS_POINTS`` for less cost (for a
``-lever`` row: the stack against the row); "all that pay" turns on every lever the stack lacks
that pays on every trace (the fastest paying loader only).
"""

from __future__ import annotations

from collections.abc import Callable

from components.config import ModelServiceConfig, StackConfig
from simulator import levers, oracle
from simulator.run import Experiment
from simulator.trace import Trace

PAYS_POINTS = 0.002  # 0.2 points of steady-state attainment


def _row(name: str, config: StackConfig, service: ModelServiceConfig, make: Callable[..., Experiment],
         costs: tuple[float, float]) -> dict:
    exp = make(config, service)
    run = exp.run(exp.profile("stack"))
    m = run.metrics(*costs)
    cold = levers.burst_cold_start(config, service)
    return {"variant": name, "steady": run.steady_attainment(servable=True), "whole": m["slo_attainment"],
            "cost": m["cost_usd"], "vs_constrained": m["cost_vs_constrained_oracle"], "cold_start_s": cold["seconds"],
            "cold_start": cold}


def _pays(row: dict, base: dict) -> bool:
    gain = row["steady"] - base["steady"]
    return gain >= PAYS_POINTS or (gain > -PAYS_POINTS and row["cost"] < base["cost"])


def trace_rows(config: StackConfig, service: ModelServiceConfig, trace: Trace, make: Callable[..., Experiment]) -> list[dict]:
    """The stack as configured, then each lever it does not have yet turned on alone, then each it
    has turned off alone."""
    base_exp = make(config, service)
    target = service.slo.attainment_target
    costs = (oracle.unconstrained(base_exp, target)[0].result.cost, oracle.constrained(base_exp, target)[0].result.cost)
    rps = levers.replica_rps(service, config, trace)
    rows = [_row("stack", config, service, make, costs)]
    for lever in levers.LEVERS:
        if levers.has_lever(config, service, lever):
            continue
        cfg, svc = levers.with_lever(config, service, lever, rps)
        rows.append(_row(f"+{lever}", cfg, svc, make, costs))
    for lever in levers.LEVERS:
        if levers.has_lever(config, service, lever):
            cfg, svc = levers.without_lever(config, service, lever)
            rows.append(_row(f"-{lever}", cfg, svc, make, costs))
    for row in rows[1:]:
        row["pays"] = _pays(row, rows[0]) if row["variant"].startswith("+") else _pays(rows[0], row)
    return rows


def paying(per_trace: list[list[dict]]) -> list[str]:
    """Levers that pay on every trace; of the loaders only the one with the shortest cold start."""
    names = [r["variant"][1:] for r in per_trace[0][1:] if r["variant"].startswith("+")]
    ok = [n for n in names if all(next(r for r in rows if r["variant"] == f"+{n}")["pays"] for rows in per_trace)]
    loaders = sorted((n for n in ok if n in levers.LOADER_LEVERS),
                     key=lambda n: next(r for r in per_trace[0] if r["variant"] == f"+{n}")["cold_start_s"])
    return [n for n in ok if n not in levers.LOADER_LEVERS] + loaders[:1]


def report(config: StackConfig, service: ModelServiceConfig, named: dict[str, Trace],
           make: Callable[[StackConfig, ModelServiceConfig, Trace], Experiment]) -> dict:
    """Every trace's rows and the levers that pay on all of them, replayed together."""
    traces = list(named.values())
    per_trace = [trace_rows(config, service, t, lambda c, s, t=t: make(c, s, t)) for t in traces]
    chosen = paying(per_trace)
    if chosen:
        cfg, svc = config, service
        for lever in chosen:
            cfg, svc = levers.with_lever(cfg, svc, lever, levers.replica_rps(service, config, traces[0]))
        for t, rows in zip(traces, per_trace, strict=True):
            exp = make(config, service, t)
            target = service.slo.attainment_target
            costs = (oracle.unconstrained(exp, target)[0].result.cost, oracle.constrained(exp, target)[0].result.cost)
            rows.append({**_row("all that pay", cfg, svc, lambda c, s, t=t: make(c, s, t), costs), "pays": None})
    return {"levers_that_pay": chosen, "traces": list(named), "rows": per_trace}


def table(rep: dict) -> str:
    lines = []
    for name, rows in zip(rep["traces"], rep["rows"], strict=True):
        lines.append(f"{name}:")
        lines.append(f"  {'variant':<18} {'steady':>8} {'whole':>8} {'cost $':>8} {'x c-oracle':>10} {'burst cold start':>17} pays")
        for r in rows:
            pays = "" if r.get("pays") is None else ("yes" if r["pays"] else "no")
            lines.append(f"  {r['variant']:<18} {r['steady']:>8.2%} {r['whole']:>8.2%} {r['cost']:>8.2f} "
                         f"{r['vs_constrained']:>10.2f} {r['cold_start_s']:>15.0f} s {pays}")
    lines.append(f"levers that pay on every trace: {', '.join(rep['levers_that_pay']) or 'none'}")
    return "\n".join(lines) + "\n"
