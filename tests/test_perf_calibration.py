"""The step model against every published vLLM measurement in simulator/data (within +-25 %)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from platform_facts import catalog, models
from platform_facts import coldstart as cs
from simulator import perf, perf_calibration, perf_cli, perf_sim
from tests.conftest import REPO

ROWS = perf_calibration.rows()


@pytest.mark.parametrize("row", [r for r in ROWS if not r.excluded], ids=lambda r: r.id)
def test_every_included_row_is_within_25_percent(row):
    got = perf_calibration.modelled(row)
    assert abs(got / row.value - 1) <= perf_calibration.TOLERANCE, f"{row.id}: model {got:.5g} vs published {row.value:.5g}"


def test_rows_are_sourced_and_exclusions_reasoned():
    assert len(ROWS) >= 16 and sum(not r.excluded for r in ROWS) >= 8
    for r in ROWS:
        assert r.source and r.vllm and r.instance_type in catalog.INSTANCE_TYPES and models.architecture(r.model)
        assert not r.excluded or len(r.excluded) > 30, f"{r.id}: an exclusion needs its reason"


def test_decode_step_reads_weights_and_kv_and_computes_flops():
    m = perf.Model(models.architecture("meta-llama/Llama-3.1-8B-Instruct"))
    p = perf.build(m, perf.hardware(catalog.INSTANCE_TYPES["p5.48xlarge"]), 1)
    bw = 3350e9 * perf.EFF_MEMORY["h100"]
    assert p.step_seconds(1) == pytest.approx(8.03e9 * 2 / bw + perf.STEP_OVERHEAD_SECONDS)
    # 64 sequences of 2,000 tokens of context: 64 x 2000 x 128 KiB more to read.
    assert p.step_seconds(64, 128_000) == pytest.approx((16.06e9 + 128_000 * 131072) / bw + perf.STEP_OVERHEAD_SECONDS)
    # Compute-bound with a 8,192-token prefill chunk: 2 x params FLOPs per token.
    flops = 989e12 * perf.EFF_COMPUTE["h100"]
    assert p.step_seconds(0, 0, 8192) == pytest.approx(2 * 8.03e9 * 8192 / flops + perf.STEP_OVERHEAD_SECONDS)
    tp4 = perf.build(perf.Model(models.architecture("meta-llama/Llama-3.3-70B-Instruct")),
                     perf.hardware(catalog.INSTANCE_TYPES["p5.48xlarge"]), 4)
    assert tp4.overhead == pytest.approx(perf.STEP_OVERHEAD_SECONDS + 2 * 80 * perf.ALLREDUCE_SECONDS)


def test_mixtral_reads_active_experts_at_batch_one_and_all_at_large_batch():
    p = perf.build(perf.Model(models.architecture("mistralai/Mixtral-8x7B-Instruct-v0.1")),
                   perf.hardware(catalog.INSTANCE_TYPES["p5.48xlarge"]), 2)
    assert p.flops_per_token == pytest.approx(2 * 12.9e9 / 2)
    assert p.step_seconds(1) < p.step_seconds(8) == pytest.approx(p.step_seconds(64), rel=0.01)


def test_l4_and_l40s_follow_from_bandwidth_through_the_same_model():
    m = perf.Model(models.architecture("meta-llama/Llama-3.1-8B-Instruct"))
    l4 = perf.build(m, perf.hardware(catalog.INSTANCE_TYPES["g6.xlarge"]), 1)
    l40s = perf.build(m, perf.hardware(catalog.INSTANCE_TYPES["g6e.xlarge"]), 1)
    ratio = (l4.step_seconds(1) - l4.overhead) / (l40s.step_seconds(1) - l40s.overhead)
    assert ratio == pytest.approx(864 / 300)


def test_closed_loop_queues_beyond_max_num_seqs_like_vllm():
    m = perf.Model(models.architecture("meta-llama/Llama-3.1-8B-Instruct"))
    p = perf.build(m, perf.hardware(catalog.INSTANCE_TYPES["g6e.xlarge"]), 1, max_num_seqs=4)
    out = perf_sim.closed_loop(p, 8, 16, 100, 10)
    assert out.max_running == 4 and out.queued == 4 and len(out.e2e) == 16
    one = perf_sim.closed_loop(p, 1, 1, 100, 10)  # prefill of 100 tokens, then 9 decode steps
    assert one.ttft[0] == pytest.approx(p.step_seconds(0, 0, 100))
    assert one.e2e[0] == pytest.approx(one.ttft[0] + sum(p.step_seconds(1, 100 + i) for i in range(9)))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "simulator", "perf", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_perf_command_prints_one_json_object():
    proc = _cli("--instance-type", "p5.48xlarge", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--tp", "1",
                "--concurrency", "8", "--requests", "8", "--input-tokens", "32", "--output-tokens", "128")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"ttft_s", "tpot_s", "e2e_latency_s", "output_tokens_per_s", "requests_per_s", "kv_cache_tokens"} <= set(out)
    assert out["e2e_latency_s"] == pytest.approx(out["ttft_s"] + 127 * out["tpot_s"], rel=1e-3)


@pytest.mark.parametrize(("args", "message"), [
    (["--instance-type", "p9.huge", "--model", "meta-llama/Llama-3.1-8B-Instruct"], "not a GPU instance type"),
    (["--instance-type", "g6e.12xlarge", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--tp", "8"], "has 4 GPU(s)"),
    (["--instance-type", "g6e.12xlarge", "--model", "org/unknown"], "give its architecture: --layers"),
    (["--instance-type", "g6.xlarge", "--model", "meta-llama/Llama-3.3-70B-Instruct"], "fewer than one request"),
])
def test_perf_command_errors(args, message):
    parsed = perf_cli._parser().parse_args([*args, "--concurrency", "1", "--requests", "1", "--input-tokens", "10",
                                            "--output-tokens", "10"])
    with pytest.raises(ValueError, match=re.escape(message)):
        perf_cli.run(parsed)


def test_unknown_model_with_its_architecture_runs():
    parsed = perf_cli._parser().parse_args(
        ["--instance-type", "g6e.xlarge", "--model", "org/unknown", "--layers", "28", "--kv-heads", "4", "--head-dim", "128",
         "--hidden-size", "3584", "--params-billion", "7.6", "--concurrency", "2", "--requests", "4", "--input-tokens", "100",
         "--output-tokens", "20"])
    assert perf_cli.run(parsed)["kv_cache_tokens"] > 0


def test_calibration_table_prints():
    proc = _cli("--calibration")
    assert proc.returncode == 0 and "ci-lat-70b" in proc.stdout and "excluded" in proc.stdout


def test_worst_cold_start_phases_cover_the_expected_ones():
    assert cs.WORST_IMPORTS_SECONDS >= cs.EXPECTED_IMPORTS_SECONDS
    assert cs.WORST_NVME_READ_GIB_PER_S <= cs.EXPECTED_NVME_GIB_PER_S
    assert cs.WORST_S3_SYNC_GIB_PER_S <= cs.EXPECTED_S3_GIB_PER_S
    assert cs.WORST_IMAGE_PULL_SECONDS >= cs.EXPECTED_IMAGE_PULL_SECONDS
    assert cs.WORST_READINESS_SECONDS >= cs.EXPECTED_READINESS_SECONDS
    for arch in models.ARCHITECTURES.values():
        assert cs.WORST_ENGINE_INIT_SECONDS >= cs.expected_engine_init_seconds(arch.layers)
    for family, seconds in cs.EXPECTED_NODE_READY_SECONDS.items():
        assert cs.WORST_NODE_READY_SECONDS[family] >= seconds
    for gib in (1.0, 15.0, 61.0, 140.0):
        assert cs.worst_load_seconds(gib) >= cs.expected_load_seconds(gib, 80)


def test_cold_start_phases_reproduce_the_published_breakdowns():
    # llm-d: Qwen3-32B (61 GiB, 64 layers) on H100: imports 73 s + weights 130 s + engine init 73 s.
    qwen = models.architecture("Qwen/Qwen3-32B")
    assert cs.expected_load_seconds(61, qwen.layers) - cs.EXPECTED_READINESS_SECONDS == pytest.approx(73 + 130 + 73, rel=0.05)
    # data-on-eks: engine init 33.8 s for a 32-layer 8B-class model.
    assert cs.expected_engine_init_seconds(32) == pytest.approx(33.8, rel=0.05)
