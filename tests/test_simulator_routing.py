"""Routing policies and the prefix-cache model (issue 19, item 5)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from simulator import routing
from simulator.prefix import LruBlocks, cached_tokens, match_longest_prefix, replica_cache, router_index
from simulator.profile import from_config
from simulator.replay import ServiceReplay, initial_state
from simulator.routing import RoutingPolicy
from simulator.run import Experiment
from simulator.state import Pod, Sequence
from simulator.trace import Request, Trace
from simulator.trace import load as load_trace
from tests.conftest import REPO, load

AZURE = REPO / "tests" / "upstream" / "traces" / "AzureLLMInferenceTrace_code.csv"
MOONCAKE = REPO / "tests" / "upstream" / "traces" / "mooncake_conversation_trace.jsonl"


def _trace(requests: list[tuple[float, int, int, tuple[int, ...]]]) -> Trace:
    return Trace(tuple(Request(i, a, p, o, h) for i, (a, p, o, h) in enumerate(requests)),
                 datetime(2024, 1, 1, 12, tzinfo=UTC), "synthetic")


def _mooncake_slice(seconds: float) -> Trace:
    trace = load_trace(MOONCAKE)
    return Trace(tuple(r for r in trace.requests if r.arrival < seconds), trace.start, trace.source)


def _setup(trace: Trace, policy: routing.Routing = "random"):
    cfg = load("prod")
    svc = cfg.model_services[0]
    replay = ServiceReplay(cfg, svc, trace, from_config(svc, 0), routing_policy=RoutingPolicy(policy))
    return replay.setup, initial_state(replay.setup, 0)


def _ready(*ids: int) -> list[Pod]:
    return [Pod(i, "burst", 0.0, ready=True) for i in ids]


# ---------------------------------------------------------------------- the prefix cache


def test_the_lru_evicts_the_least_recently_used_block_at_capacity():
    lru = LruBlocks(3)
    lru.insert((1, 2, 3))
    lru.insert((1,))  # touched: 2 is now the least recently used
    lru.insert((4,))
    assert list(lru.blocks) == [3, 1, 4] and len(lru) == 3
    assert lru.leading((1, 2, 3)) == 1 and lru.leading((3, 1, 4, 5)) == 3 and lru.leading((9, 1)) == 0


def test_cache_sizes_follow_the_kv_cache_in_512_token_blocks():
    assert replica_cache(190_675).capacity == 372  # prod chat-8b on g6e.2xlarge: 190,675 KV tokens
    assert router_index(190_675).capacity == 1489  # the EPP tracks 64/16 = 4x that
    assert replica_cache(511).capacity == 0


def test_a_hit_saves_whole_blocks_but_one_token_is_always_computed():
    assert cached_tokens(2, 1536) == 1024
    assert cached_tokens(3, 1536) == 1535
    assert cached_tokens(5, 700) == 699
    assert cached_tokens(0, 700) == 0


def test_the_epp_match_counts_every_block_an_endpoint_holds_until_no_endpoint_holds_one():
    a, b = LruBlocks(10), LruBlocks(10)
    a.insert((1, 2))
    b.insert((1, 3))
    # Block 2 only on a, block 3 only on b, block 4 nowhere: the walk stops there (upstream's greedy count).
    assert match_longest_prefix((1, 2, 3, 4, 1), [a, b]) == [2, 2]
    assert match_longest_prefix((7, 1), [a, b]) == [0, 0]


def test_cached_tokens_shrink_prefill_by_the_expected_time():
    from simulator.replica import admit_and_prefill

    trace = _trace([(0.0, 1536, 10, (1, 2, 3)), (0.0, 1536, 10, (1, 2, 9)), (0.0, 1536, 10, ())])
    setup, state = _setup(trace)
    pod = Pod(1, "burst", 0.0, ready=True, queue=deque([0]))
    left = admit_and_prefill(setup, state, pod, 0.0, 1.0)
    assert left == pytest.approx(1.0 - 1536 * setup.perf.delta) and state.outcomes.cached[0] == 0
    pod.queue.append(1)
    left2 = admit_and_prefill(setup, state, pod, 0.0, 1.0)
    # Blocks 1 and 2 are cached: 1024 tokens skipped, 512 computed.
    assert left2 == pytest.approx(1.0 - 512 * setup.perf.delta) and state.outcomes.cached[1] == 1024
    pod.queue.append(2)  # no block hashes: no hit, and the cache is left alone
    assert admit_and_prefill(setup, state, pod, 0.0, 1.0) == pytest.approx(1.0 - 1536 * setup.perf.delta)
    assert state.outcomes.cached[2] == 0 and pod.cache is not None and list(pod.cache.blocks) == [3, 1, 2, 9]  # 1, 2 touched again


# ---------------------------------------------------------------------- the policies


def test_least_queue_picks_the_replica_with_the_fewest_waiting_and_running():
    setup, state = _setup(_trace([(0.0, 10, 10, ())] * 6))
    a, b, c = _ready(1, 2, 3)
    a.queue.extend([0, 1])
    b.running.append(Sequence(2, 5, 20.0))
    c.queue.append(3)
    c.running.append(Sequence(4, 5, 20.0))
    assert routing.least_queue(state, [a, b, c]) is b
    b.queue.append(5)  # now b and c tie at 2, a too: the seeded RNG picks, the same way every time
    picks = {routing.least_queue(initial_state(setup, 7), [a, b, c]).id for _ in range(3)}
    assert len(picks) == 1


def test_least_queue_route_spreads_a_burst_evenly():
    setup, state = _setup(_trace([(0.0, 10, 10, ())] * 9), "least-queue")
    state.pods = _ready(1, 2, 3)
    state.gateway.extend(range(9))
    routing.route(setup, state)
    assert [len(p.queue) for p in state.pods] == [3, 3, 3]


def test_prefix_aware_goes_to_the_replica_holding_the_prefix_when_queues_are_equal():
    setup, state = _setup(_trace([(0.0, 2048, 10, (5, 6, 7, 8))]), "prefix-aware")
    a, b, c = _ready(1, 2, 3)
    routing.index_of(setup, state, b).insert((5, 6, 7))
    assert routing.epp_scores(setup, state, [a, b, c], (5, 6, 7, 8)) == [3.0, 4.5, 3.0]  # 2 x 3/4 + 2 x 1 + 1 x 1
    assert routing.epp_pick(setup, state, [a, b, c], 0) is b
    assert routing.index_of(setup, state, b).leading((5, 6, 7, 8)) == 4  # the pick's index took the blocks


def test_prefix_aware_goes_elsewhere_when_the_holder_queue_is_much_longer():
    setup, state = _setup(_trace([(0.0, 2048, 10, (5, 6, 7, 8))] + [(0.0, 10, 10, ())] * 10), "prefix-aware")
    a, b = _ready(1, 2)
    routing.index_of(setup, state, b).insert((5, 6))
    b.queue.extend(range(1, 11))  # ten waiting on the holder, none on a
    assert routing.epp_scores(setup, state, [a, b], (5, 6, 7, 8)) == [3.0, 2.0]
    # With the queue scorer weighted down, the prefix would win.
    light = replace(setup, routing=RoutingPolicy("prefix-aware", routing.EppWeights(prefix=2, queue=0.5, kv_cache=1)))
    assert routing.epp_scores(light, state, [a, b], (5, 6, 7, 8)) == [1.5, 2.0]
    assert routing.epp_pick(setup, state, [a, b], 0) is a


def test_prefix_aware_scores_kv_usage():
    setup, state = _setup(_trace([(0.0, 10, 10, ())]), "prefix-aware")
    a, b = _ready(1, 2)
    a.kv_used = setup.perf.kv_tokens / 2
    assert routing.epp_scores(setup, state, [a, b], ()) == [2.5, 3.0]
    assert routing.epp_pick(setup, state, [a, b], 0) is b


def test_routing_parses_one_or_several_policies():
    assert routing.parse("least-queue") == ["least-queue"]
    assert routing.parse("prefix-aware, random,prefix-aware") == ["prefix-aware", "random"]
    with pytest.raises(ValueError, match="expected one or more of random, least-queue, prefix-aware"):
        routing.parse("round-robin")


# ---------------------------------------------------------------------- replays


def _run(trace: Trace, policy: routing.Routing, seed: int = 0):
    cfg = load("prod")
    svc = cfg.model_services[0]
    experiment = Experiment(cfg, svc, trace, seed=seed, routing=RoutingPolicy(policy))
    return experiment.run(experiment.profile("stack"))


def test_the_azure_trace_never_hits_the_prefix_cache():
    trace = load_trace(AZURE)
    for policy in ("random", "least-queue"):
        run = _run(trace, policy)
        assert run.result.cached_tokens == [0] * len(trace.requests)
        assert run.routing_metrics()["prefix_hit_ratio"] == 0.0 and run.result.routing == policy


def test_prefix_aware_replays_are_deterministic_and_hit_more_than_random():
    trace = _mooncake_slice(900)
    first, again = _run(trace, "prefix-aware"), _run(trace, "prefix-aware")
    assert first.result.first_token == again.result.first_token and first.result.cached_tokens == again.result.cached_tokens
    rnd = _run(trace, "random")
    assert _run(trace, "random", seed=1).result.first_token != rnd.result.first_token  # the seed matters where the RNG picks
    assert 0 < rnd.result.prefix_hit_ratio() < first.result.prefix_hit_ratio()


def test_the_cli_records_every_policy_and_the_tuner_uses_the_first(tmp_path):
    from simulator.__main__ import _experiment

    lines = MOONCAKE.read_text().splitlines()[:400]
    path = tmp_path / "slice.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "sim"
    proc = subprocess.run([sys.executable, "-m", "simulator", "--stack", "prod", "--service", "chat-8b", "--trace", str(path),
                           "--out", str(out), "--routing", "prefix-aware,random"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["routing"]["policy"] == "prefix-aware" and summary["routing"]["trace_has_block_hashes"]
    assert set(summary["routing"]["policies"]) == {"prefix-aware", "random"}
    for policy, m in summary["routing"]["policies"].items():
        assert m["routing"] == policy
        assert {"ttft_p50_s", "ttft_p95_s", "slo_attainment", "slo_attainment_transient", "slo_attainment_steady",
                "cost_usd", "prefix_hit_ratio"} <= set(m)
    assert summary["routing"]["policies"]["prefix-aware"]["ttft_p95_s"] == summary["profiles"]["stack"]["ttft_p95_s"]
    assert (out / "requests.csv").read_text().splitlines()[0].endswith(",capacity,cached_tokens")
    cfg = load("prod")
    args = argparse.Namespace(routing="least-queue,random", spot_interruptions_per_hour=0.0, prometheus_outage=[],
                              transient_minutes=10.0, warm_start=False)
    assert _experiment(args, cfg, cfg.model_services[0], load_trace(path), 0).routing.policy == "least-queue"
    args.routing = None  # the stack's routing: prod routes through the llm-d Router
    assert _experiment(args, cfg, cfg.model_services[0], load_trace(path), 0).routing.policy == "prefix-aware"


def test_the_cli_refuses_an_unknown_policy(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "simulator", "--stack", "prod", "--service", "chat-8b", "--trace", str(AZURE),
                           "--out", str(tmp_path), "--routing", "round-robin"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "--routing 'round-robin': expected one or more of" in proc.stderr


def test_the_stack_profile_routes_as_the_service_is_deployed():
    # routing.mode router (staging, prod) is the llm-d EPP: prefix-aware with the rendered
    # weights; a plain Service (dev) is kube-proxy's random pick.
    for stack, expected in (("dev", "random"), ("staging", "prefix-aware"), ("prod", "prefix-aware")):
        config = load(stack)
        for service in config.model_services:
            assert routing.stack_routing(config, service) == expected, (stack, service.name)
    svc = load("prod").model_services[0]
    assert routing.weights_of(svc) == routing.EppWeights(2, 2, 1)
    heavier = svc.model_copy(update={"routing": svc.routing.model_copy(update={"prefix_cache_weight": 5.0})})
    assert routing.weights_of(heavier).prefix == 5.0
