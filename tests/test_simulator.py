"""The scaling simulator: replica model, KEDA, Karpenter, determinism, outputs."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from collections import deque

import pytest

from platform_facts import catalog
from simulator import perf as perf_mod
from simulator.profile import from_config, seed_default
from simulator.replay import ServiceReplay
from simulator.run import Experiment
from simulator.trace import Request, Trace
from simulator.trace import load as load_trace
from tests.conftest import REPO, load, load_plain_prod, stack_values

TRACE = REPO / "tests" / "upstream" / "traces" / "AzureLLMInferenceTrace_code.csv"


def synthetic(requests: list[tuple[float, int, int]]) -> Trace:
    from datetime import datetime, timezone

    return Trace(tuple(Request(i, a, p, o) for i, (a, p, o) in enumerate(requests)),
                 datetime(2024, 1, 1, 12, tzinfo=timezone.utc), "synthetic")


def test_trace_formats(tmp_path):
    azure = load_trace(TRACE)
    assert len(azure.requests) == 8819 and azure.requests[0].arrival == 0.0
    assert 3400 < azure.duration < 3450  # 57.3 minutes
    generic = tmp_path / "g.csv"
    generic.write_text("arrival_seconds,prompt_tokens,output_tokens\n0,100,10\n2.5,200,20\n")
    g = load_trace(generic, speedup=2)
    assert [r.arrival for r in g.requests] == [0.0, 1.25]
    doubled = load_trace(generic, rate_multiplier=2, seed=1)
    assert len(doubled.requests) == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="unknown trace header"):
        load_trace(bad)


GENERIC_HEADER = "arrival_seconds,prompt_tokens,output_tokens\n"
AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "empty trace file"),
    (GENERIC_HEADER, "no requests after the header"),
    (GENERIC_HEADER + "0,100,10\n1,-5,10\n", ":3: prompt_tokens '-5' must be a finite number >= 0"),
    (GENERIC_HEADER + "0,100,-1\n", ":2: output_tokens '-1' must be a finite number >= 0"),
    (GENERIC_HEADER + "-3,100,10\n", ":2: arrival_seconds '-3' must be a finite number >= 0"),
    (GENERIC_HEADER + "0,100,10\n\nsoon,100,10\n", ":4: arrival_seconds 'soon' is not a number"),
    (GENERIC_HEADER + "0,1e3,10\n", ":2: prompt_tokens '1e3' is not an integer"),
    (GENERIC_HEADER + "0,nan,10\n", ":2: prompt_tokens 'nan' is not an integer"),
    (GENERIC_HEADER + "inf,100,10\n", ":2: arrival_seconds 'inf' must be a finite number >= 0"),
    (GENERIC_HEADER + "0,100\n", ":2: expected 3 fields (arrival_seconds,prompt_tokens,output_tokens), got 2"),
    (AZURE_HEADER + "2023-11-16 18:17:03.98,10,x\n", ":2: GeneratedTokens 'x' is not an integer"),
    (AZURE_HEADER + "yesterday,10,10\n", ":2: TIMESTAMP 'yesterday' is not a time"),
])
def test_bad_traces_name_the_file_line_and_field(tmp_path, text, fragment):
    assert_trace_rejected(tmp_path / "t.csv", text, fragment)


def assert_trace_rejected(path, text: str, fragment: str) -> None:
    """Loading ``text`` from ``path`` fails with an error that starts with the file's name and says ``fragment``."""
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_trace(path)
    assert str(err.value).startswith(str(path)) and fragment in str(err.value)


@pytest.mark.parametrize("option", [{"speedup": 0}, {"speedup": -1}, {"rate_multiplier": -0.5},
                                    {"rate_multiplier": math.inf}])
def test_trace_rejects_non_positive_rates(option):
    with pytest.raises(ValueError, match="must be a positive number"):
        load_trace(TRACE, **option)


@pytest.mark.parametrize(("args", "fragment"), [
    (["--rate-multiplier", "-1"], "rate multiplier must be a positive number, got -1.0"),
    (["--trace", "EMPTY"], "empty trace file"),
])
def test_cli_rejects_a_bad_trace_with_exit_2(tmp_path, args, fragment):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    args = [str(empty) if a == "EMPTY" else a for a in args]
    trace = [] if "--trace" in args else ["--trace", str(TRACE)]
    proc = subprocess.run([sys.executable, "-m", "simulator", "--stack", "prod", "--service", "chat-8b", *trace, *args,
                           "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr


def test_cli_without_a_service_lists_the_stacks_services(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "simulator", "--stack", "prod", "--trace", str(TRACE),
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "pass --service (make simulate: SERVICE=<name>): the prod stack has chat-8b, reason-70b" in proc.stderr


def test_replica_profile_hand_computed():
    svc = load("prod").model_services[0]  # Llama-3.1-8B bf16 on L40S, tp 1
    p = perf_mod.replica_perf(svc, catalog.INSTANCE_TYPES["g6e.xlarge"])
    weights = 8.03e9 * 2  # bytes (the catalogued architecture)
    bw = 864e9 * perf_mod.EFF_MEMORY_DEFAULT  # L40S: no published measurement, the default efficiency
    assert p.step_seconds(1) == pytest.approx(weights / bw + perf_mod.STEP_OVERHEAD_SECONDS, rel=1e-9)  # ~24 ms
    # Each context token adds its KV cache (128 KiB) to what a step reads.
    assert p.step_seconds(1, 10_000) - p.step_seconds(1) == pytest.approx(10_000 * 131072 / bw)
    assert p.delta == pytest.approx(2 * 8.03e9 / (362e12 * perf_mod.EFF_COMPUTE_DEFAULT))
    # (44.7 GiB x 0.9 - 2 - 14.96) / 128 KiB per token: ~190 k tokens (facts: 190-200 k).
    assert 185_000 < p.kv_tokens < 200_000


def test_single_request_latency_matches_the_model():
    cfg = load("prod")
    svc = cfg.model_services[0]
    trace = synthetic([(10.0, 1000, 101)])
    replay = ServiceReplay(cfg, svc, trace, from_config(svc, 300))
    p = replay.perf
    assert p == perf_mod.replica_perf(svc, replay.instance)
    result = replay.replay()
    ttft = result.first_token[0] - 10.0
    assert ttft == pytest.approx(1000 * p.delta, abs=1e-6)  # prefill of 1000 tokens
    e2e = result.end[0] - 10.0
    # 100 decode steps of one sequence whose context grows from 1,001 to 1,101 tokens (read at
    # each tick's start, so within the KV read of one tick's growth).
    assert e2e == pytest.approx(1000 * p.delta + 100 * p.step_seconds(1, 1051), rel=1e-3)


def test_deterministic_for_a_seed():
    cfg = load("prod")
    svc = cfg.model_services[0]
    trace = load_trace(TRACE)
    a = Experiment(cfg, svc, trace, seed=3, spot_interruptions_per_hour=0.5).run(from_config(svc, 300)).metrics()
    b = Experiment(cfg, svc, trace, seed=3, spot_interruptions_per_hour=0.5).run(from_config(svc, 300)).metrics()
    assert a == b


def _burst_trace(start: float, seconds: int, per_second: int, prompt: int = 2000, output: int = 200):
    return [(start + s + k / per_second, prompt, output) for s in range(seconds) for k in range(per_second)]


def test_nothing_wakes_a_service_at_zero_without_a_wake_signal():
    # Why config validation demands activeHours or wakeQuery with scaleToZero.
    cfg = load("dev")
    svc = cfg.model_services[0]
    trace = synthetic(_burst_trace(100, 30, 4))
    result = ServiceReplay(cfg, svc, trace, from_config(svc, 0).with_(active_hours=None, wake=False)).replay()
    assert result.ttfts() == [] and max(row["ready"] for row in result.timeline) == 0


def test_active_hours_keep_one_replica_in_the_window():
    cfg = load("dev")  # activeHours 07:00-19:00 UTC on weekdays; the synthetic trace starts Monday 12:00
    svc = cfg.model_services[0]
    result = ServiceReplay(cfg, svc, synthetic([(5.0, 100, 10)]), from_config(svc, 0)).replay()
    assert min(row["ready"] for row in result.timeline if row["t"] > 0) == 1


def test_keda_activation_and_cooldown_to_zero():
    cfg = load("dev")  # scale to zero, cooldown 120 s, max 2
    svc = cfg.model_services[0]
    prof = from_config(svc, 0).with_(active_hours=None, wake=True)
    trace = synthetic(_burst_trace(100, 30, 4) + [(3000.0, 10, 1)])
    replay = ServiceReplay(cfg, svc, trace, prof)
    result = replay.replay()
    ready = [(row["t"], row["ready"]) for row in result.timeline]
    assert all(r == 0 for t, r in ready if t < 100)  # idle at zero before the burst
    up = next(t for t, r in ready if r > 0)
    assert up > 100 + replay.cold.node_ready  # cold start: node, image, model, engine
    last_busy = max(e for e in result.end if not math.isnan(e) and e < 3000)
    down = next(t for t, r in ready if t > up and r == 0)
    # Back to zero only after the cooldown (and the HPA's stabilization on the way down).
    assert down >= last_busy + prof.cooldown_seconds


def test_keep_alive_holds_a_replica_while_requests_run():
    cfg = load("dev")
    svc = cfg.model_services[0]
    # Long generations: the queue empties fast but requests keep running for minutes.
    # ~540 s of decode each on an L4: longer than cooldown (120 s) plus the drain (75 s).
    trace = synthetic([(100 + i, 100, 6000) for i in range(4)])
    with_keep = ServiceReplay(cfg, svc, trace, from_config(svc, 0).with_(active_hours=None, wake=True)).replay()
    assert not any(math.isnan(e) for e in with_keep.end) and with_keep.retries == 0
    # Without a baseline the KV-cache trigger (KV in use, activation 0) also reads running work.
    kv_only = ServiceReplay(cfg, svc, trace, from_config(svc, 0).with_(active_hours=None, wake=True,
                                                                     keep_alive_per_replica=None)).replay()
    assert kv_only.retries == 0
    without = ServiceReplay(cfg, svc, trace, from_config(svc, 0).with_(active_hours=None, wake=True,
                                                                     keep_alive_per_replica=None, kv_target=None)).replay()
    assert without.retries > 0  # scaled to zero under running requests: they were cut and retried


def test_karpenter_respects_nodepool_limits_and_prefers_spot_for_burst():
    def tight(v: dict) -> None:
        v["gpuTiers"][0]["spot"].update(gpuLimit=2)
        v["gpuTiers"][0]["onDemand"].update(gpuLimit=3)  # override the computed limit (12)

    cfg = load_plain_prod(tight)  # chat-8b on 2..8
    svc = cfg.model_services[0]
    trace = synthetic(_burst_trace(60, 900, 12))
    result = ServiceReplay(cfg, svc, trace, from_config(svc, 0)).replay()
    spot = max(row["nodes_spot"] for row in result.timeline)
    on_demand = max(row["nodes_on_demand"] for row in result.timeline)
    assert spot == 2  # the spot limit (2 GPUs, 1 per node)
    assert on_demand == 3  # the on-demand limit (gpuLimit 3): 2 baseline + 1 burst spilled there
    assert max(row["pending"] for row in result.timeline) > 0  # the rest stays Pending


def test_keda_fallback_during_a_prometheus_outage():
    cfg = load_plain_prod()
    svc = cfg.model_services[0]
    trace = synthetic([(10.0 * i, 100, 10) for i in range(120)])  # light load: one replica is plenty
    # No separate baseline: the autoscaled Deployment never drops below 1, so its HPA is active
    # (at zero replicas the HPA is off and a fallback has nothing to act on).
    prof = from_config(svc, 0).with_(baseline=0, fallback_replicas=3)

    def replicas(result) -> int:
        return max(row["ready"] + row["pending"] for row in result.timeline if 300 <= row["t"] < 900)

    assert replicas(ServiceReplay(cfg, svc, trace, prof).replay()) == 1
    outage = ((300.0, 900.0),)
    assert replicas(ServiceReplay(cfg, svc, trace, prof, prometheus_outages=outage).replay()) == 3
    # Without a fallback the HPA holds what it had while the metric is missing.
    assert replicas(ServiceReplay(cfg, svc, trace, prof.with_(fallback_replicas=None), prometheus_outages=outage).replay()) == 1


def test_on_demand_burst_never_uses_spot():
    cfg = load("prod")
    svc = cfg.model_services[1]  # reason-70b: burstCapacity onDemand
    result = ServiceReplay(cfg, svc, synthetic(_burst_trace(60, 300, 2, 4000, 300)), from_config(svc, 0)).replay()
    assert result.node_seconds["spot"] == 0 and result.node_seconds["on-demand"] > 0


def test_spot_interruptions_cost_retries_not_requests():
    cfg = load("prod")
    svc = cfg.model_services[0]
    trace = load_trace(TRACE)
    calm = Experiment(cfg, svc, trace, seed=1, spot_interruptions_per_hour=0).run(from_config(svc, 300))
    stormy = Experiment(cfg, svc, trace, seed=1, spot_interruptions_per_hour=6).run(from_config(svc, 300))
    assert calm.metrics()["served"] == stormy.metrics()["served"] == len(trace.requests)
    assert stormy.result.node_seconds != calm.result.node_seconds


def test_stack_profile_beats_the_seed_default_and_the_oracle_is_a_lower_bound():
    cfg = load("prod")
    svc = cfg.model_services[0]
    experiment = Experiment(cfg, svc, load_trace(TRACE))
    stack, seed = experiment.run(experiment.profile("stack")), experiment.run(experiment.profile("seed-default"))
    oracle, _ = experiment.oracle(svc.slo.attainment_target)
    assert stack.attainment() > seed.attainment()
    assert oracle.attainment() >= svc.slo.attainment_target
    assert oracle.result.cost < min(stack.result.cost, seed.result.cost)


def test_profiles_read_the_config_models():
    # Unset knobs: the config's defaults (5 waiting per replica, KV cache 0.8), no predictive trigger.
    plain = load_plain_prod().model_services[0]  # chat-8b on 2..8, scaleDownStabilizationSeconds 600
    p = from_config(plain, 123)
    assert (p.baseline, p.max_replicas, p.target_waiting, p.kv_target) == (2, 8, 5, 0.8)
    assert p.scale_down_stabilization_seconds == 600 and p.behavior is not None and p.predictive is None
    s = seed_default(plain)
    assert (s.target_waiting, s.cooldown_seconds, s.polling_seconds, s.behavior) == (5, 300, 15, None)
    # The stack as committed: every knob its file sets, as the file spells it.
    values, _ = stack_values("prod")
    raw = next(v for v in values["modelServices"] if v["name"] == "chat-8b")
    sc, rps = raw["scaling"], raw["predictiveScaling"]["requestsPerSecondPerReplica"]
    svc = load("prod").model_services[0]
    p = from_config(svc, 123)
    assert (p.baseline, p.max_replicas, p.target_waiting, p.kv_target) == (
        sc["minReplicas"], sc["maxReplicas"], sc["targetWaitingPerReplica"], sc["kvCacheTarget"])
    assert (p.polling_seconds, p.scale_down_stabilization_seconds, p.scale_up_pods_per_minute) == (
        sc["pollingIntervalSeconds"], sc["scaleDownStabilizationSeconds"], sc["scaleUpPodsPerMinute"])
    assert p.ttft_target == raw["slo"]["ttftP95Seconds"] and sc["ttftTrigger"] and p.behavior is not None
    assert p.predictive is None  # without the rendered lookahead, the profile of the other triggers alone
    predictive = from_config(svc, 123, lookahead_seconds=390).predictive
    assert predictive is not None and (predictive.rps_per_replica, predictive.lookahead_seconds) == (rps, 390)


def test_cli_writes_the_three_outputs(tmp_path):
    out = tmp_path / "sim"
    proc = subprocess.run([sys.executable, "-m", "simulator", "--stack", "prod", "--service", "chat-8b",
                           "--trace", str(TRACE), "--out", str(out), "--seed", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["profiles"]) == {"stack", "seed-default", "oracle", "constrained-oracle"}
    for m in summary["profiles"].values():
        assert {"ttft_p50_s", "ttft_p95_s", "ttft_p99_s", "queue_wait_p99_s", "slo_attainment", "slo_attainment_transient",
                "slo_attainment_steady", "rejected", "gpu_hours", "cost_usd", "cost_vs_oracle", "cost_vs_constrained_oracle"} <= set(m)
    assert summary["profiles"]["oracle"]["cost_vs_oracle"] == 1.0
    assert summary["profiles"]["constrained-oracle"]["cost_vs_constrained_oracle"] == 1.0
    assert summary["transient_minutes"] == 10 and summary["rejected"] == 0
    rows = (out / "requests.csv").read_text().splitlines()
    assert rows[0].startswith("id,arrival_s") and len(rows) == 8820
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_an_unknown_service(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "simulator", "--stack", "prod", "--service", "nope",
                           "--trace", str(TRACE), "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "chat-8b, reason-70b" in proc.stderr



# ---------------------------------------------------------------------- single steps


def test_active_window_opens_at_start_and_closes_at_end():
    from datetime import UTC, datetime

    from components.config import ActiveHours
    from simulator.cron import ActiveWindow

    monday_0630 = datetime(2024, 1, 1, 6, 30, tzinfo=UTC)
    window = ActiveWindow(ActiveHours(start="0 7 * * 1-5", end="0 19 * * 1-5"), monday_0630)
    assert [window.is_open(m * 60) for m in (0, 29, 30, 31)] == [False, False, True, True]  # 06:30..07:01
    assert [window.is_open(m * 60) for m in (749, 751)] == [True, False]  # 18:59, 19:01
    saturday_noon = (5 * 24 * 60 + 330) * 60  # the weekday window stays shut at the weekend
    assert not window.is_open(saturday_noon)


def _replay_state(replay: ServiceReplay):
    from simulator.replay import initial_state

    return initial_state(replay.setup, 0)


def test_kv_overflow_preempts_the_newest_sequence_to_the_front_of_the_queue():
    from simulator.replica import preempt_on_overflow
    from simulator.state import Pod, Sequence

    cfg = load("prod")
    svc = cfg.model_services[0]
    replay = ServiceReplay(cfg, svc, synthetic([(0.0, 10, 10)] * 3), from_config(svc, 0))
    state = _replay_state(replay)
    budget = replay.perf.kv_tokens
    pod = Pod(1, "burst", 0.0, queue=deque([2]), kv_used=budget + 5.0,
              running=[Sequence(0, 50, budget - 10.0), Sequence(1, 50, 15.0)])
    preempt_on_overflow(replay.setup, state, pod)
    assert [s.request for s in pod.running] == [0] and list(pod.queue) == [1, 2]
    assert pod.kv_used == budget - 10.0 and state.preemptions == 1
    # The oldest sequence stays even when it alone overflows the cache.
    pod.kv_used = budget + 1.0
    preempt_on_overflow(replay.setup, state, pod)
    assert [s.request for s in pod.running] == [0] and state.preemptions == 1


def test_a_deleted_pod_hands_its_requests_back_to_the_caller():
    from simulator.pods import delete_pod
    from simulator.state import Node, Pod, Sequence

    cfg = load("prod")
    svc = cfg.model_services[0]
    replay = ServiceReplay(cfg, svc, synthetic([(0.0, 10, 10)] * 3), from_config(svc, 0))
    state = _replay_state(replay)
    node = Node(1, "spot", 0.0, 0.0, 1)
    pod = Pod(2, "burst", 0.0, node=node, queue=deque([2]), running=[Sequence(0, 5, 20.0)])
    node.pods.append(pod)
    state.outcomes.first_token[0] = 0.5
    delete_pod(state, pod)
    assert pod.gone and node.pods == [] and list(state.gateway) == [2, 0] and state.retries == 2
    assert math.isnan(state.outcomes.first_token[0])  # the retried request starts over


def test_trigger_activation_thresholds():
    from simulator.control import Trigger

    assert Trigger("AverageValue", 0.01).active and not Trigger("AverageValue", 0.0).active
    assert Trigger("Value", 1.01).active and not Trigger("Value", 1.0).active


def test_legacy_triggers_pin_the_burst_at_max_and_the_new_ones_do_not():
    """Issue 14: long prompts whose prefill alone misses the TTFT target, at a rate the two
    baseline replicas carry with an empty queue. The legacy Value trigger on TTFT p95 multiplies
    the burst's Ready pods by p95 / target on every sync (more pods do not shorten a prefill),
    so the burst climbs to its maximum and stays there; the new triggers hold one burst replica
    (TTFT over target is activation-only) and nothing more."""
    cfg = load_plain_prod()
    svc = cfg.model_services[0]  # baseline 2, burst 0..6; maxModelLen 16384
    trace = synthetic([(4.0 * i, 16000, 50) for i in range(675)])  # 45 minutes, one every 4 s
    prof = from_config(svc, 0).with_(ttft_target=1.1)  # 16k-token prefill: ~1.29 s on an L40S
    burst_max = prof.max_replicas - prof.baseline

    def burst(result) -> list[tuple[float, int, int]]:
        return [(row["t"], row["ready"] + row["pending"] - prof.baseline, row["queue"]) for row in result.timeline]

    legacy = burst(ServiceReplay(cfg, svc, trace, prof.with_(legacy_triggers=True)).replay())
    pinned = [t for t, b, q in legacy if b == burst_max and q == 0]
    assert len(pinned) * 15 >= 15 * 60  # 15 minutes at the maximum with an empty queue
    assert all(q == 0 for _, _, q in legacy)
    fixed = burst(ServiceReplay(cfg, svc, trace, prof).replay())
    assert max(b for _, b, _ in fixed) == 1  # one burst replica while TTFT is over target
    assert fixed[-1][1] == 0  # back to the baseline once the traffic ends


def test_waiting_trigger_subtracts_the_baseline_pods_that_report():
    """A lost baseline pod stops reporting: the new waiting trigger no longer counts its share
    as absorbed; the legacy one subtracted minReplicas x target whatever was left."""
    from simulator.control import keda_triggers
    from simulator.state import PodGauges

    cfg = load_plain_prod()
    svc = cfg.model_services[0]  # baseline 2, 5 waiting per replica
    for legacy, ratio in ((True, (14 - 10) / 5), (False, (14 - 5) / 5)):
        replay = ServiceReplay(cfg, svc, synthetic([(0.0, 10, 10)]), from_config(svc, 0).with_(legacy_triggers=legacy))
        state = _replay_state(replay)
        state.scraped = {1: PodGauges(10, 3, 0.1, "baseline"), 7: PodGauges(4, 3, 0.1, "burst")}
        assert keda_triggers(replay.setup, state, 30.0)[0].ratio == pytest.approx(ratio)


# ---------------------------------------------------------------------- golden replays
# Reviewed figures of a few replays of the vendored trace; any change to the simulation's
# output (a refactor must make none) shows up here. After an intended model change, rewrite
# the file with SIMULATOR_GOLDEN_UPDATE=1 and review the diff like any other.
GOLDEN = REPO / "tests" / "golden" / "simulator" / "replays.json"


def _replay_figures(run) -> dict:
    """The metrics, the timeline every 5 minutes, and a digest of every request's timestamps."""
    r = run.result
    rows = [f"{a!r},{f!r},{e!r},{c}" for a, f, e, c in zip(r.admitted, r.first_token, r.end, r.capacity, strict=True)]
    timeline = [[row["t"], row["ready"], row["pending"], row["nodes_on_demand"], row["nodes_spot"], row["queue"],
                 row["ttft_p95"] if row["ttft_p95"] is None else round(row["ttft_p95"], 3)]
                for row in r.timeline[::20]]
    return {"metrics": run.metrics(), "timeline_t_ready_pending_od_spot_queue_p95": timeline,
            "requests_sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest()}


def _golden_replays() -> dict:
    trace = load_trace(TRACE)
    out = {}
    prod, staging, dev = load("prod"), load("staging"), load("dev")
    chat8b, reason70b = prod.model_services
    experiment = Experiment(prod, chat8b, trace, seed=1, spot_interruptions_per_hour=6)
    out["prod/chat-8b stack, 6 spot interruptions/h"] = _replay_figures(experiment.run(experiment.profile("stack")))
    experiment = Experiment(prod, chat8b, trace, seed=2)
    out["prod/chat-8b seed-default"] = _replay_figures(experiment.run(experiment.profile("seed-default")))
    oracle, factor = experiment.oracle(chat8b.slo.attainment_target)
    out["prod/chat-8b oracle"] = {**_replay_figures(oracle), "work_factor": factor}
    experiment = Experiment(prod, reason70b, trace)
    out["prod/reason-70b stack"] = _replay_figures(experiment.run(experiment.profile("stack")))
    svc = staging.model_services[0]
    experiment = Experiment(staging, svc, trace, seed=4, spot_interruptions_per_hour=1,
                    prometheus_outages=((600.0, 1500.0), (2000.0, 2100.0)))
    out["staging/chat stack, Prometheus outages"] = _replay_figures(experiment.run(experiment.profile("stack")))
    svc = dev.model_services[0]
    experiment = Experiment(dev, svc, trace)
    out["dev/chat stack (active hours close mid-trace)"] = _replay_figures(experiment.run(experiment.profile("stack")))
    burst = synthetic(_burst_trace(100, 30, 4) + [(3000.0, 10, 1)])
    experiment = Experiment(dev, svc, burst)
    out["dev/chat wake from zero"] = _replay_figures(experiment.run(from_config(svc, 0).with_(active_hours=None, wake=True)))
    long_generations = synthetic([(100 + i, 100, 6000) for i in range(4)])
    experiment = Experiment(dev, svc, long_generations)
    cut = from_config(svc, 0).with_(active_hours=None, wake=True, keep_alive_per_replica=None, kv_target=None)
    out["dev/chat to zero under running requests"] = _replay_figures(experiment.run(cut))
    # Issue 19: the routing policies on the first 15 minutes of the Mooncake trace (block hashes).
    from simulator.routing import RoutingPolicy

    mooncake = load_trace(REPO / "tests" / "upstream" / "traces" / "mooncake_conversation_trace.jsonl")
    head = Trace(tuple(r for r in mooncake.requests if r.arrival < 900), mooncake.start, mooncake.source)
    for policy in ("least-queue", "prefix-aware"):
        experiment = Experiment(prod, chat8b, head, routing=RoutingPolicy(policy))  # type: ignore[arg-type]
        run = experiment.run(experiment.profile("stack"))
        out[f"prod/chat-8b stack, Mooncake 15 min, {policy}"] = {
            **_replay_figures(run), "prefix_hit_ratio": round(run.result.prefix_hit_ratio(), 4)}
    return out


def test_replays_match_the_golden_figures():
    figures = _golden_replays()
    if os.environ.get("SIMULATOR_GOLDEN_UPDATE"):
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert json.loads(json.dumps(figures)) == golden
    # The golden set exercises what it claims to: preemption, spot retries, KEDA fallback, zero.
    assert golden["dev/chat to zero under running requests"]["metrics"]["retries"] > 0
    assert golden["prod/chat-8b stack, 6 spot interruptions/h"]["metrics"]["node_hours"]["spot"] > 0
    assert any(g["metrics"]["preemptions"] > 0 for g in golden.values())
    assert golden["dev/chat wake from zero"]["timeline_t_ready_pending_od_spot_queue_p95"][0][1] == 0
    mooncake = "prod/chat-8b stack, Mooncake 15 min, "
    assert 0 < golden[mooncake + "least-queue"]["prefix_hit_ratio"] < golden[mooncake + "prefix-aware"]["prefix_hit_ratio"]


# ---------------------------------------------------------------------- the timeline figure


def test_events_are_recorded_without_changing_the_replay():
    cfg = load("prod")
    svc = cfg.model_services[0]
    # Three minutes of burst: long enough for a burst replica's cold start to finish.
    experiment = Experiment(cfg, svc, synthetic(_burst_trace(60, 180, 6)), seed=1, spot_interruptions_per_hour=30)
    result = experiment.run(experiment.profile("stack")).result
    kinds = {e.kind for e in result.events}
    assert {"scale", "node-launch", "replica-ready", "spot-notice", "spot-reclaim"} <= kinds
    assert [e.t for e in result.events] == sorted(e.t for e in result.events)
    # Every scale decision is a change of the burst Deployment, and the cold starts are real waits.
    assert all(e.value != 0 for e in result.events if e.kind == "scale")
    assert all(e.value > 0 for e in result.events if e.kind == "replica-ready")
    # The load rows add up to the trace: 1,080 requests of 2,000 prompt and 200 output tokens.
    rows = result.timeline
    spans = [rows[0]["t"] + 1] + [b["t"] - a["t"] for a, b in zip(rows, rows[1:], strict=False)]
    assert sum(r["requests_per_s"] * s for r, s in zip(rows, spans, strict=True)) == pytest.approx(1080)
    assert sum(r["prompt_tokens_per_s"] * s for r, s in zip(rows, spans, strict=True)) == pytest.approx(2_160_000)


def test_timeline_figure_compares_the_profiles_on_shared_axes():
    from matplotlib.ticker import MaxNLocator

    from simulator.report import TIMELINE_ROWS, timeline_figure

    cfg = load("prod")
    svc = cfg.model_services[0]
    experiment = Experiment(cfg, svc, synthetic(_burst_trace(60, 60, 6)), seed=1, spot_interruptions_per_hour=30)
    runs = {name: experiment.run(experiment.profile(name)) for name in ("stack", "seed-default")}
    fig = timeline_figure(runs, "prod/chat-8b", svc.slo.attainment_target)
    fig.canvas.draw()
    grid = [[ax for ax in fig.axes[r * 2:(r + 1) * 2]] for r in range(len(TIMELINE_ROWS))]
    assert len(fig.axes) == len(TIMELINE_ROWS) * 2  # a column per profile, no stray axes
    for c, name in enumerate(runs):
        title = grid[0][c].get_title()
        assert title.startswith(name) and "attainment" in title and "GPU-h" in title and "$" in title
        assert grid[-1][c].get_xlabel() == "minutes from the trace start"
    labels = [row[0].get_ylabel() for row in grid]
    assert all(labels) and any("requests / s" in x for x in labels) and any("autoscaler metric" in x for x in labels)
    for r, (key, _, count) in enumerate(TIMELINE_ROWS):
        left, right = grid[r]
        assert left.get_ylim() == right.get_ylim() and left.get_xlim() == right.get_xlim(), key
        if count:
            locator = left.yaxis.get_major_locator()
            assert isinstance(locator, MaxNLocator) and locator._integer, key
            assert all(float(t).is_integer() for t in left.get_yticks()), key
        # Every row has a legend, right of the last column, overlapping no axes.
        legend = right.get_legend()
        assert legend is not None and legend.get_texts(), key
        box = legend.get_window_extent()
        assert all(not box.overlaps(ax.get_window_extent()) for ax in fig.axes), key
    replicas = grid[[k for k, *_ in TIMELINE_ROWS].index("replicas")][1]
    legend_texts = [t.get_text() for t in replicas.get_legend().get_texts()]
    assert {"minReplicas (baseline)", "maxReplicas", "ready"} <= set(legend_texts)
    events = grid[[k for k, *_ in TIMELINE_ROWS].index("events")][0]
    assert [t.get_text() for t in events.get_yticklabels()][:2] == ["scale up", "scale down"]
    import matplotlib.pyplot as plt

    plt.close(fig)
