"""`python -m simulator.bench`: time and memory of replays and tuning (figures, not asserts).

For every service of every stack: one replay of each vendored one-hour trace under the stack's
profile (seconds per service-hour of trace; the Mooncake trace also under ``prefix-aware``
routing, and without its block hashes: the prefix-cache model's own cost), and a tune on the Azure trace, seed 0, each timed
with wall clock; peak RSS of the process. The issue's budget: a replay <= 1 s per
service-hour, a tune of one service on one trace and seed <= 3 min on 2 cores, <= 1 GiB.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from components.stack import load_stack
from simulator.routing import RoutingPolicy
from simulator.run import Experiment
from simulator.trace import Request, Trace, load
from simulator.tune import Tuner

REPO = Path(__file__).resolve().parent.parent
TRACES = REPO / "tests" / "upstream" / "traces"
AZURE = TRACES / "AzureLLMInferenceTrace_code.csv"
MOONCAKE = TRACES / "mooncake_conversation_trace.jsonl"


def _per_hour(experiment: Experiment) -> float:
    t0 = time.perf_counter()
    experiment.run(experiment.profile("stack"))
    return (time.perf_counter() - t0) / (experiment.trace.duration / 3600)


def _without_hashes(trace: Trace) -> Trace:
    return Trace(tuple(Request(r.id, r.arrival, r.prompt_tokens, r.output_tokens) for r in trace.requests), trace.start, trace.source)


def main() -> int:
    traces = {path.name: load(path) for path in (AZURE, MOONCAKE)}
    mooncake = traces[MOONCAKE.name]
    bare = _without_hashes(mooncake)
    for name, trace in traces.items():
        print(f"trace: {name}, {len(trace.requests)} requests over {trace.duration / 60:.1f} min")
    print(f"{'stack/service':<22} {'replay s/h azure':>17} {'mooncake':>9} {'no hashes':>10} {'prefix-aware':>13} "
          f"{'tune s':>8} {'profiles':>9}")
    for stack in ("dev", "staging", "prod"):
        config = load_stack(stack, REPO)
        for service in config.model_services:
            per_hour = [_per_hour(Experiment(config, service, trace)) for trace in (*traces.values(), bare)]
            per_hour.append(_per_hour(Experiment(config, service, mooncake, routing=RoutingPolicy("prefix-aware"))))
            experiment = Experiment(config, service, traces[AZURE.name])
            tuner = Tuner([experiment], service.slo.attainment_target)
            t0 = time.perf_counter()
            tuner.search(experiment.profile("stack"))
            tune = time.perf_counter() - t0
            print(f"{stack + '/' + service.name:<22} {per_hour[0]:>17.2f} {per_hour[1]:>9.2f} {per_hour[2]:>10.2f} "
                  f"{per_hour[3]:>13.2f} {tune:>8.1f} {len(tuner.points):>9}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
