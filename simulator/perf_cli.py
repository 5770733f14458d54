"""`python -m simulator perf`: the step model held against one benchmark, as one JSON object.

    python -m simulator perf --instance-type p5.48xlarge --model meta-llama/Llama-3.1-8B-Instruct \\
        --tp 1 --concurrency 64 --requests 640 --input-tokens 1000 --output-tokens 200

prints ``ttft_s``, ``tpot_s``, ``e2e_latency_s`` (means over the requests), ``output_tokens_per_s``,
``requests_per_s`` (over the whole run) and ``kv_cache_tokens``, for a closed loop of
``--concurrency`` requests in flight, ``--requests`` in all. The instance type decides the GPU;
``--tp`` GPUs of it serve the model. A model outside ``platform_facts.models`` needs its
architecture (``--layers --kv-heads --head-dim --hidden-size --params-billion --dtype``).
Requests beyond ``max_num_seqs`` or the KV cache queue, as in vLLM (``queued`` says how many
at most). ``--calibration`` prints the calibration table instead. Exit 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

from platform_facts import catalog, models
from simulator import perf, perf_calibration, perf_sim

ARCH_FLAGS = ("layers", "kv_heads", "head_dim", "hidden_size", "params_billion")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator perf", description=__doc__.split("\n\n")[0])
    p.add_argument("--calibration", action="store_true", help="print the model against every published measurement")
    p.add_argument("--instance-type")
    p.add_argument("--model")
    p.add_argument("--tp", type=int, default=1)
    for flag in ("concurrency", "requests", "input-tokens", "output-tokens"):
        p.add_argument(f"--{flag}", type=int)
    for flag in ("layers", "kv-heads", "head-dim", "hidden-size"):
        p.add_argument(f"--{flag}", type=int)
    p.add_argument("--params-billion", type=float)
    p.add_argument("--active-params-billion", type=float, help="mixture of experts: parameters per token")
    p.add_argument("--dtype", default="bfloat16", choices=sorted(catalog.DTYPE_BYTES))
    return p


def _arch(args: argparse.Namespace) -> models.ModelArch:
    given = {f: getattr(args, f) for f in ARCH_FLAGS}
    if all(v is not None for v in given.values()):
        return models.ModelArch(given["layers"], given["kv_heads"], given["head_dim"], given["hidden_size"],
                                given["params_billion"], args.active_params_billion, "given on the command line")
    arch = models.architecture(args.model)
    if arch is None:
        missing = " ".join("--" + f.replace("_", "-") for f, v in given.items() if v is None)
        raise ValueError(f"--model {args.model!r} is not in platform_facts.models (known: "
                         f"{', '.join(sorted(models.ARCHITECTURES))}); give its architecture: {missing}")
    return arch


def _check(args: argparse.Namespace) -> catalog.InstanceType:
    need = ("instance_type", "model", "concurrency", "requests", "input_tokens", "output_tokens")
    if missing := [n for n in need if getattr(args, n) is None]:
        raise ValueError("missing " + " ".join("--" + n.replace("_", "-") for n in missing))
    it = catalog.INSTANCE_TYPES.get(args.instance_type)
    if it is None:
        raise ValueError(f"--instance-type {args.instance_type!r} is not a GPU instance type of the catalog; "
                         f"allowed: {', '.join(catalog.INSTANCE_TYPES)}")
    if args.tp < 1 or args.tp > it.gpus or it.gpus % args.tp:
        raise ValueError(f"--tp {args.tp}: {it.name} has {it.gpus} GPU(s); tp must divide that number")
    for n in ("concurrency", "requests", "input_tokens", "output_tokens"):
        if getattr(args, n) < 1:
            raise ValueError(f"--{n.replace('_', '-')} {getattr(args, n)}: must be >= 1")
    return it


def run(args: argparse.Namespace) -> dict[str, float | int]:
    it = _check(args)
    model = perf.Model(_arch(args), args.dtype)
    replica = perf.build(model, perf.hardware(it), args.tp)
    if replica.kv_tokens < args.input_tokens + args.output_tokens:
        raise ValueError(f"{model.weights_gib:.0f} GiB of weights on {args.tp} x {it.gpu} ({it.name}) leave room for "
                         f"{replica.kv_tokens} KV tokens, fewer than one request of {args.input_tokens + args.output_tokens}")
    out = perf_sim.closed_loop(replica, args.concurrency, args.requests, args.input_tokens, args.output_tokens)
    result = perf_sim.summary(out, args.requests, replica.kv_tokens)
    result.update(max_running=out.max_running, queued=out.queued, preemptions=out.preemptions)
    return result


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.calibration:
        print(perf_calibration.render(perf_calibration.table()))
        return 0
    try:
        result = run(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
