"""`python -m simulator --stack <stack> --service <name> --trace <csv> [...]`

Replays a request trace through the service's scaling loop (vLLM replicas, Prometheus,
KEDA, the HPA, Karpenter, spot interruptions, cost) and writes, to ``--out``
(default ``build/sim/<stack>-<service>``):

- ``summary.json``: for the stack's profile, the seed default and the clairvoyant oracle:
  TTFT p50/p95/p99, queue-wait p99, SLO attainment, GPU-hours, cost, cost / oracle cost
  (and the tuned profile with ``--tune``);
- ``requests.csv``: one row per request under ``--profile``;
- ``timeline.png``: a column per profile (stack, seed default, tuned) on shared axes: the
  load, the autoscaler's metric, replicas with minReplicas/maxReplicas, nodes by capacity
  type, events (scale decisions, node launches, cold starts, spot reclaims), queue depth
  and TTFT p95 over time, with attainment, TTFT p95, GPU-hours and cost on top.

Deterministic for a seed. Exit 2 on a bad stack, service or trace.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.config import ConfigError
from components.stack import load_stack
from simulator.run import (
    Experiment,
    dump,
    snippet,
    write_requests_csv,
    write_timeline_png,
)
from simulator.trace import load
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
    ap.add_argument("--trace", required=True, type=Path)
    ap.add_argument("--profile", default="stack", help="profile for requests.csv: stack | seed-default | tuned (with --tune)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tune", action="store_true", help="search for the cheapest profile that meets the SLO target")
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


def _summary(args: argparse.Namespace, experiment: Experiment, service, trace) -> tuple[dict, dict]:
    """Replay the stack and seed-default profiles (and tune when asked) against both oracles."""
    target = service.slo.attainment_target
    oracle, factor = experiment.oracle(target)
    runs = {name: experiment.run(experiment.profile(name)) for name in ("stack", "seed-default")}
    oracle_cost = oracle.result.cost
    summary = {
        "stack": args.stack, "service": args.service, "trace": args.trace.name, "seed": args.seed,
        "speedup": args.speedup, "rate_multiplier": args.rate_multiplier,
        "spot_interruptions_per_hour": args.spot_interruptions_per_hour,
        "prometheus_outages": [list(o) for o in experiment.outages],
        "requests": len(trace.requests), "slo": {"ttft_p95_s": service.slo.ttft_p95_seconds, "attainment_target": target},
        "profiles": {name: run.metrics(oracle_cost) for name, run in runs.items()},
    }
    summary["profiles"]["oracle"] = {**oracle.metrics(oracle_cost), "work_factor": factor}
    if args.tune:
        start = runs["stack"].profile
        assert start is not None  # a replay of a named profile carries it
        tuned, tuned_run, evaluations = experiment.tune(start, target)
        metrics = tuned_run.metrics(oracle_cost)
        summary["profiles"]["tuned"] = {**metrics, "evaluations": evaluations}
        summary["tuned_snippet"] = snippet(tuned, service, metrics)
        runs["tuned"] = tuned_run
    return summary, runs


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
        trace = load(args.trace, speedup=args.speedup, rate_multiplier=args.rate_multiplier, seed=args.seed)
        outages = _outages(args.prometheus_outage)
    except ConfigError as exc:
        print("simulator: invalid stack config:\n  " + "\n  ".join(exc.messages), file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2

    service = services[args.service]
    show = _progress(sys.stderr.isatty() if args.progress is None else args.progress)
    experiment = Experiment(config, service, trace, seed=args.seed,
                            spot_interruptions_per_hour=args.spot_interruptions_per_hour, progress=show,
                            prometheus_outages=outages)
    summary, runs = _summary(args, experiment, service, trace)
    out = args.out or REPO / "build" / "sim" / f"{args.stack}-{args.service}"
    out.mkdir(parents=True, exist_ok=True)
    chosen = runs.get(args.profile) or runs["stack"]
    dump(out / "summary.json", summary)
    write_requests_csv(out / "requests.csv", chosen, trace)
    write_timeline_png(out / "timeline.png", runs, f"{args.stack}/{args.service} on {args.trace.name} (seed {args.seed})",
                       service.slo.attainment_target)
    if show:
        print(file=sys.stderr)
    for name, m in summary["profiles"].items():
        print(f"{name:>13}: attainment {m['slo_attainment']:.1%}  TTFT p95 {m['ttft_p95_s']}s  "
              f"GPU-h {m['gpu_hours']}  ${m['cost_usd']}  x{m.get('cost_vs_oracle', 1):.2f} oracle")
    if args.tune:
        print(summary["tuned_snippet"], end="")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    cli.run(main)
