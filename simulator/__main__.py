"""`python -m simulator --stack <stack> --service <name> --trace <file> [...]`

Replays a request trace through the service's scaling loop (vLLM replicas, Prometheus,
KEDA, the HPA, Karpenter, spot interruptions, cost) and writes, to ``--out``
(default ``build/sim/<stack>-<service>``):

- ``summary.json``: for the stack's profile, the seed default and the two clairvoyant
  references (``oracle``: unconstrained, node shares; ``constrained-oracle``: within the
  service's limits, whole nodes): TTFT p50/p95/p99, queue-wait p99, SLO attainment over the
  whole trace, its first ``--transient-minutes`` and the rest (steady state), requests
  rejected as longer than ``maxModelLen``, GPU-hours, cost, cost against both oracles; with
  ``--tune``, the tuned profile, the Pareto front and the stack-file snippet;
- ``summary.json`` ``routing``: the policy every replay above used (``--routing``, the first
  when several; default the stack's, ``simulator.routing.stack_routing``) and, per policy
  named, the stack profile's TTFT p50/p95, attainment (whole, transient, steady), cost and
  prefix-cache hit ratio;
- ``requests.csv``: one row per request under ``--profile`` (with the prompt tokens the prefix
  cache saved);
- ``timeline.png``: a column per profile (stack, seed default, tuned) on shared axes;
- ``pareto.png`` (``--tune``): cost against worst steady-state attainment of every profile tried.

Traces: Azure CSV, generic CSV or Mooncake JSONL (``simulator.trace``). ``--trace`` repeats:
the replays use the first; the tuner judges a profile on every trace and every ``--seeds``.
Deterministic for a seed. Exit 2 on a bad stack, service or trace.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from components.config import ConfigError
from components.stack import load_stack
from simulator import levers, oracle, report, routing
from simulator.run import TRANSIENT_MINUTES, Experiment, Run, dump, write_requests_csv
from simulator.trace import Trace, load
from simulator.tune import Tuner
from synth import cli

REPO = Path(__file__).resolve().parent.parent


def _progress(enabled: bool):
    if not enabled:
        return None
    state = {"last": -1}

    def show(fraction: float) -> None:
        pct = int(fraction * 100)
        if pct != state["last"]:
            state["last"] = pct
            bar = "#" * (pct // 4)
            print(f"\r[{bar:<25}] {pct:3d}%", end="", file=sys.stderr, flush=True)

    return show


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.splitlines()[0])
    ap.add_argument("--stack", required=True)
    ap.add_argument("--service", help="a model service of the stack (without it: the stack's services are listed)")
    ap.add_argument("--trace", required=True, type=Path, action="append",
                    help="Azure CSV, generic CSV or Mooncake JSONL; repeat to tune on several traces (replays use the first)")
    ap.add_argument("--profile", default="stack", help="profile for requests.csv: stack | seed-default | tuned (with --tune)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", help="seeds the tuner judges every profile on, e.g. 0,1,2 (default: --seed)")
    ap.add_argument("--lever-report", action="store_true",
                    help="replay the stack profile with each cold-start lever on and off, on every --trace (simulator.lever_report)")
    ap.add_argument("--levers", default="", metavar="LEVER,...",
                    help="turn these cold-start levers on for the service before replaying or tuning: "
                         "runaiNvme, runaiS3, fastsafetensors, compileCache, fastImagePull, capacityBuffer, predictive")
    ap.add_argument("--tune", action="store_true", help="search for the cheapest profile that meets the SLO target")
    ap.add_argument("--transient-minutes", type=float, default=TRANSIENT_MINUTES,
                    help="the warm-up reported apart from the steady state (default 10)")
    ap.add_argument("--warm-start", action="store_true",
                    help="start from the first window's steady state: the burst replicas the controllers hold after "
                         "replaying the first --transient-minutes once start Ready")
    ap.add_argument("--routing", help=f"{' | '.join(routing.POLICIES)}, or several separated by commas to compare them "
                    "(every replay uses the first; default: as the service is deployed, prefix-aware with its "
                    "router's weights for routing.mode router, random for service)")
    ap.add_argument("--speedup", type=float, default=1.0)
    ap.add_argument("--rate-multiplier", type=float, default=1.0)
    ap.add_argument("--spot-interruptions-per-hour", type=float, default=0.05,
                    help="per spot node (default 0.05: one reclaim per 20 node-hours)")
    ap.add_argument("--prometheus-outage", action="append", default=[], metavar="START:END",
                    help="seconds of the trace during which Prometheus queries fail (repeatable): exercises KEDA fallback")
    ap.add_argument("--progress", action="store_true", default=None, help="progress bar (default: when stderr is a tty)")
    return ap


def _outages(specs: list[str]) -> tuple[tuple[float, float], ...]:
    outages = []
    for spec in specs:
        start, sep, end = spec.partition(":")
        if not sep or float(start) >= float(end):
            raise ValueError("--prometheus-outage takes START:END seconds with START < END")
        outages.append((float(start), float(end)))
    return tuple(outages)


def _seeds(args: argparse.Namespace) -> list[int]:
    if args.seeds is None:
        return [args.seed]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds takes integers separated by commas, e.g. 0,1,2; got {args.seeds!r}") from None
    if not seeds:
        raise ValueError("--seeds names no seed")
    return seeds


def _policies(args: argparse.Namespace, config, service) -> list[routing.Routing]:
    return routing.parse(args.routing) if args.routing is not None else [routing.stack_routing(config, service)]


def _experiment(args: argparse.Namespace, config, service, trace: Trace, seed: int, progress=None,
                policy: routing.Routing | None = None) -> Experiment:
    policy = policy or _policies(args, config, service)[0]
    return Experiment(config, service, trace, seed=seed, spot_interruptions_per_hour=args.spot_interruptions_per_hour,
                      progress=progress, prometheus_outages=_outages(args.prometheus_outage),
                      transient_minutes=args.transient_minutes, warm_start=args.warm_start,
                      routing=routing.RoutingPolicy(policy, routing.weights_of(service)))


def _every_experiment(args: argparse.Namespace, config, service, traces: list[Trace]) -> list[Experiment]:
    """One experiment per trace x seed: what the tuner judges a profile on."""
    return [_experiment(args, config, service, t, s) for t in traces for s in _seeds(args)]


def _routing(args: argparse.Namespace, config, service, trace: Trace, stack: Run) -> dict:
    """The stack profile under every policy named: the first is the replays' own."""
    policies = _policies(args, config, service)
    per = {policies[0]: stack.routing_metrics()}
    for policy in policies[1:]:
        experiment = _experiment(args, config, service, trace, args.seed, policy=policy)
        per[policy] = experiment.run(experiment.profile("stack")).routing_metrics()
    return {"policy": policies[0], "block_tokens": routing.BLOCK_TOKENS,
            "trace_has_block_hashes": any(r.hash_ids for r in trace.requests), "policies": per}


def _summary(args: argparse.Namespace, experiment: Experiment, service, trace: Trace) -> tuple[dict, dict[str, Run]]:
    """Replay the stack and seed-default profiles against both oracles."""
    target = service.slo.attainment_target
    free, factor = oracle.unconstrained(experiment, target)
    bound, bound_factor = oracle.constrained(experiment, target)
    runs = {name: experiment.run(experiment.profile(name)) for name in ("stack", "seed-default")}
    costs = (free.result.cost, bound.result.cost)
    summary = {
        "stack": args.stack, "service": args.service, "trace": args.trace[0].name, "seed": args.seed,
        "speedup": args.speedup, "rate_multiplier": args.rate_multiplier,
        "spot_interruptions_per_hour": args.spot_interruptions_per_hour,
        "prometheus_outages": [list(o) for o in experiment.outages],
        "transient_minutes": args.transient_minutes, "warm_start": args.warm_start,
        "requests": len(trace.requests), "max_model_len": service.max_model_len,
        "rejected": runs["stack"].result.rejected,
        "slo": {"ttft_p95_s": service.slo.ttft_p95_seconds, "attainment_target": target},
        "profiles": {name: run.metrics(*costs) for name, run in runs.items()},
    }
    summary["profiles"]["oracle"] = {**free.metrics(*costs), "work_factor": factor,
                                     "kind": "unconstrained clairvoyant bound: no replica or NodePool limits, node shares billed"}
    summary["profiles"]["constrained-oracle"] = {
        **bound.metrics(*costs), "work_factor": bound_factor, "replica_cap": oracle.replica_cap(experiment),
        "kind": "clairvoyant, zero provisioning delay, within the policy floor, maxReplicas and NodePool limits, whole nodes"}
    return summary, runs


def _tune(args: argparse.Namespace, config, service, traces: list[Trace], runs: dict[str, Run], summary: dict, out: Path) -> str:
    """Tune on every trace x seed; add the front and the chosen profile to the summary; the printout."""
    seeds = _seeds(args)
    experiments = _every_experiment(args, config, service, traces)
    tuner = Tuner(experiments, service.slo.attainment_target)
    t0 = time.perf_counter()
    start = tuner.judge(experiments[0].profile("stack"))
    chosen = tuner.search(start.profile)
    seconds = time.perf_counter() - t0
    front = tuner.front()
    rows = report.pareto_rows(front, chosen)
    judged_on = f"{', '.join(a.name for a in args.trace)} (seeds {','.join(map(str, seeds))})"
    text = report.snippet(args.stack, service, chosen, judged_on)
    first = _experiment(args, config, service, traces[0], args.seed).run(chosen.profile)  # for the timeline
    runs["tuned"] = first
    costs = (summary["profiles"]["oracle"]["cost_usd"], summary["profiles"]["constrained-oracle"]["cost_usd"])
    summary["profiles"]["tuned"] = {**first.metrics(*costs), "evaluations": len(tuner.points)}
    summary["tune"] = {"traces": [a.name for a in args.trace], "seeds": seeds, "evaluations": len(tuner.points),
                       "replays": len(tuner.points) * len(experiments), "seconds": round(seconds, 1),
                       "stack_profile": {"attainment_steady_worst": round(start.attainment, 4), "cost_usd_mean": round(start.cost, 2)},
                       "pareto_front": rows}
    summary["tuned_snippet"] = text
    report.write_pareto_png(out / "pareto.png", list(tuner.points.values()), front, chosen, start,
                            f"{args.stack}/{args.service}: {judged_on}", service.slo.attainment_target)
    return (f"Pareto front ({len(tuner.points)} profiles x {len(experiments)} replays in {seconds:.0f} s; "
            f"* chosen):\n{report.pareto_table(rows)}{text}")


def _judge(args: argparse.Namespace, config, service, traces: list[Trace], summary: dict) -> str:
    """With several traces or seeds and no ``--tune``: the stack profile judged as the tuner judges
    a profile (worst steady-state attainment of the servable requests, mean cost, over every
    trace x seed), in ``summary.json``'s ``stack_judged``; the printout line."""
    seeds = _seeds(args)
    if len(traces) * len(seeds) < 2:
        return ""
    experiments = _every_experiment(args, config, service, traces)
    point = Tuner(experiments, service.slo.attainment_target).judge(experiments[0].profile("stack"))
    summary["stack_judged"] = {"traces": [a.name for a in args.trace], "seeds": seeds,
                               "attainment_steady_worst": round(point.attainment, 4),
                               "cost_usd_mean": round(point.cost, 2)}
    return (f"stack profile on {len(experiments)} replays ({len(traces)} traces x seeds {','.join(map(str, seeds))}): "
            f"worst steady-state attainment {point.attainment:.2%} (servable requests), mean cost ${point.cost:.2f}\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "perf":
        from simulator import perf_cli

        return perf_cli.main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        config = load_stack(args.stack, REPO)
        services = {s.name: s for s in config.model_services}
        if args.service not in services:
            given = "pass --service (make simulate: SERVICE=<name>)" if args.service is None else f"--service {args.service!r}"
            raise ValueError(f"{given}: the {args.stack} stack has {', '.join(services) or 'no services'}")
        traces = [load(p, speedup=args.speedup, rate_multiplier=args.rate_multiplier, seed=args.seed) for p in args.trace]
        _outages(args.prometheus_outage)
        _seeds(args)
        _policies(args, config, services[args.service])
        if not args.transient_minutes >= 0:
            raise ValueError(f"--transient-minutes must be >= 0, got {args.transient_minutes}")
    except ConfigError as exc:
        print("simulator: invalid stack config:\n  " + "\n  ".join(exc.messages), file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    service = services[args.service]
    try:
        rps = min(levers.replica_rps(service, config, t) for t in traces)  # the heaviest mix's
        for lever in (x.strip() for x in args.levers.split(",") if x.strip()):
            config, service = levers.with_lever(config, service, lever, rps)
    except ValueError as exc:
        print(f"simulator: --levers: {exc}", file=sys.stderr)
        return 2
    services[args.service] = service
    if args.lever_report:
        return _lever_report(args, config, services[args.service], traces)
    return _write(args, config, services[args.service], traces)


def _lever_report(args: argparse.Namespace, config, service, traces: list[Trace]) -> int:
    from simulator import lever_report

    rep = lever_report.report(config, service, {p.name: t for p, t in zip(args.trace, traces, strict=True)},
                              lambda c, s, t: _experiment(args, c, s, t, args.seed))
    out = args.out or REPO / "build" / "sim" / f"{args.stack}-{args.service}"
    out.mkdir(parents=True, exist_ok=True)
    dump(out / "levers.json", rep)
    print(f"{args.stack}/{args.service}, stack profile, seed {args.seed}:")
    print(lever_report.table(rep), end="")
    print(f"-> {out / 'levers.json'}")
    return 0


def _write(args: argparse.Namespace, config, service, traces: list[Trace]) -> int:
    show = _progress(sys.stderr.isatty() if args.progress is None else args.progress)
    experiment = _experiment(args, config, service, traces[0], args.seed, show)
    summary, runs = _summary(args, experiment, service, traces[0])
    summary["routing"] = _routing(args, config, service, traces[0], runs["stack"])
    out = args.out or REPO / "build" / "sim" / f"{args.stack}-{args.service}"
    out.mkdir(parents=True, exist_ok=True)
    tuned = _tune(args, config, service, traces, runs, summary, out) if args.tune else _judge(args, config, service, traces, summary)
    chosen = runs.get(args.profile) or runs["stack"]
    dump(out / "summary.json", summary)
    write_requests_csv(out / "requests.csv", chosen, traces[0])
    title = f"{args.stack}/{args.service} on {args.trace[0].name} (seed {args.seed}, routing {summary['routing']['policy']})"
    report.write_timeline_png(out / "timeline.png", runs, title, service.slo.attainment_target)
    if show:
        print(file=sys.stderr)
    print(f"{summary['rejected']} of {summary['requests']} requests rejected (longer than maxModelLen {service.max_model_len})")
    for name, m in summary["profiles"].items():
        steady = m["slo_attainment_steady"]
        servable = m["slo_attainment_steady_servable"]
        print(f"{name:>18}: attainment {m['slo_attainment']:.1%} (steady {'-' if steady is None else f'{steady:.1%}'}, "
              f"servable {'-' if servable is None else f'{servable:.1%}'})  "
              f"TTFT p95 {m['ttft_p95_s']}s  GPU-h {m['gpu_hours']}  ${m['cost_usd']}  "
              f"x{m.get('cost_vs_oracle', 1):.2f} oracle  x{m.get('cost_vs_constrained_oracle', 1):.2f} constrained")
    for policy, m in summary["routing"]["policies"].items():
        print(f"{'routing ' + policy:>24}: attainment {m['slo_attainment']:.1%}  TTFT p95 {m['ttft_p95_s']}s  "
              f"${m['cost_usd']}  prefix hit {m['prefix_hit_ratio']:.1%}")
    print(tuned, end="")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
