"""`python -m simulator.bench`: time and memory of replays and tuning (figures, not asserts).

For every service of every stack: one replay of the vendored one-hour trace under the
stack's profile, and a full --tune, each timed with wall clock; peak RSS of the process.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from components.stack import load_stack
from simulator.run import Experiment
from simulator.trace import load

REPO = Path(__file__).resolve().parent.parent

TRACE = REPO / "tests" / "upstream" / "traces" / "AzureLLMInferenceTrace_code.csv"


def main() -> int:
    trace = load(Path(TRACE))
    print(f"trace: {TRACE.name}, {len(trace.requests)} requests over {trace.duration / 60:.1f} min")
    print(f"{'stack/service':<22} {'replay s':>9} {'tune s':>8} {'evals':>6}")
    for stack in ("dev", "staging", "prod"):
        config = load_stack(stack, REPO)
        for service in config.model_services:
            experiment = Experiment(config, service, trace)
            t0 = time.perf_counter()
            experiment.run(experiment.profile("stack"))
            replay = time.perf_counter() - t0
            t0 = time.perf_counter()
            _, _, evaluations = experiment.tune(experiment.profile("stack"), service.slo.attainment_target)
            tune = time.perf_counter() - t0
            print(f"{stack + '/' + service.name:<22} {replay:>9.2f} {tune:>8.1f} {evaluations:>6}")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
