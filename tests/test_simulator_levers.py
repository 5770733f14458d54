"""The cold-start levers in the simulator (issue 18 item 7): each acts on exactly its phase by
its sourced amount, the capacity buffer's node is Ready and billed, the predictive trigger looks
ahead of a ramp, and the lever replays are pinned by a golden file."""

from __future__ import annotations

import json
import math
import os
from collections import deque
from dataclasses import replace

import pytest

from platform_facts import coldstart as cs
from simulator import capacity, control, lever_report, levers, predictive
from simulator.perf import cold_start
from simulator.replay import ServiceReplay, initial_state
from simulator.run import Experiment
from simulator.state import DT, Pod
from simulator.trace import Trace
from simulator.trace import load as load_trace
from tests.conftest import REPO, load, load_plain_prod

TRACE = REPO / "tests" / "upstream" / "traces" / "AzureLLMInferenceTrace_code.csv"
GOLDEN = REPO / "tests" / "golden" / "simulator" / "levers.json"


def _prod_chat():
    """prod's chat-8b as it was before the stack adopted levers (``plain_prod``): every lever off,
    the tests turn them on one by one."""
    prod = load_plain_prod()
    svc = next(s for s in prod.model_services if s.name == "chat-8b")
    assert not any(levers.has_lever(prod, svc, lever) for lever in levers.LEVERS)
    return prod, svc


def _phases(config, service):
    instance = levers.placement(service, config.tier(service.tier)).instance
    return cold_start(service, instance, fast_image_pull=levers.fast_image_pull(config)), instance


def test_levers_off_are_the_calibrated_phases():
    config, svc = _prod_chat()
    cold, instance = _phases(config, svc)
    w, layers = svc.model.weights_gib, 32
    assert cold.node_ready == cs.expected_node_ready_seconds(instance.family)
    assert cold.image_pull == cs.EXPECTED_IMAGE_PULL_SECONDS == 121.0
    assert cold.download == pytest.approx(w / 0.5)
    assert cold.load == pytest.approx(cs.expected_load_seconds(w, layers))
    assert cold.compile_saving == 0.0


@pytest.mark.parametrize(("lever", "changes"), [
    # The Run:ai streamer from S3: 15 GB in 4.88 s into the GPU; no download into the node cache.
    ("runaiS3", {"download": lambda w, old: -old, "load": lambda w, old: w / (15e9 / 2**30 / 4.88) - w / 0.47}),
    # From the node's disk at the measured 15 GB in 14.3 s.
    ("runaiNvme", {"load": lambda w, old: w / (15e9 / 2**30 / 14.3) - w / 0.47}),
    # fastsafetensors: the weights phase 4.8x faster.
    ("fastsafetensors", {"load": lambda w, old: w / 0.47 / 4.8 - w / 0.47}),
    # FastImagePull: the pull at 1.6x the rate.
    ("fastImagePull", {"image_pull": lambda w, old: 121.0 / 1.6 - 121.0}),
    # A persisted compile cache saves (106 - 30) / 106 of the 32-layer engine init on a warm node.
    ("compileCache", {"compile_saving": lambda w, old: 1.1 * 32 * 76 / 106}),
    # Capacity and the trigger leave the phases alone.
    ("capacityBuffer", {}),
    ("predictive", {}),
])
def test_each_lever_changes_exactly_its_phase(lever, changes):
    config, svc = _prod_chat()
    before, _ = _phases(config, svc)
    after, _ = _phases(*levers.with_lever(config, svc, lever, 1.0))
    w = svc.model.weights_gib
    for name in ("node_ready", "image_pull", "download", "load", "compile_saving"):
        old = getattr(before, name)
        expected = old + (changes[name](w, old) if name in changes else 0.0)
        assert getattr(after, name) == pytest.approx(expected), name


def test_compile_cache_spares_only_a_pod_on_a_node_where_the_model_compiled():
    config, svc = _prod_chat()
    cold, _ = _phases(*levers.with_lever(config, svc, "compileCache", 1.0))
    fresh = cold.pod_seconds(image_cached=True, model_cached=True)
    assert cold.pod_seconds(image_cached=True, model_cached=True, compiled=True) == pytest.approx(fresh - cold.compile_saving)
    plain, _ = _phases(config, svc)  # without the lever a compiled node saves nothing
    assert plain.pod_seconds(image_cached=True, model_cached=True, compiled=True) == plain.pod_seconds(
        image_cached=True, model_cached=True)


def _buffered_setup():
    config, svc = levers.with_lever(*_prod_chat(), "capacityBuffer", 1.0)
    trace = Trace((), load_trace(TRACE).start, "empty")
    exp = Experiment(config, svc, trace)
    replay = ServiceReplay(config, svc, trace, exp.profile("stack"))
    return replay.setup, svc


def test_a_burst_replica_on_the_buffer_node_skips_node_launch_and_image_pull():
    setup, _ = _buffered_setup()
    assert setup.buffer_nodes == 1
    state = initial_state(setup, 0)
    capacity.warm_start(setup, state)
    buffer = [nd for nd in state.nodes if nd.buffer]
    assert len(buffer) == 1 and buffer[0].capacity == "on-demand" and buffer[0].ready_at == 0.0 and buffer[0].image_cached
    pod = Pod(state.new_id(), "burst", 10.0)
    state.pods.append(pod)
    capacity.place_pending_pods(setup, state, 12.0)
    assert pod.node is buffer[0] and not buffer[0].buffer
    assert pod.start_at == pytest.approx(12.0 + setup.cold.download + setup.cold.load)
    # Karpenter replaces the consumed buffer: a new node, a buffer again after launch and the pull.
    capacity.consolidate(setup, state, 12.0)
    refill = [nd for nd in state.nodes if nd.buffer]
    assert len(refill) == 1 and refill[0].ready_at == pytest.approx(12.0 + setup.cold.node_ready + setup.cold.image_pull)


def test_the_idle_buffer_node_is_billed_and_never_consolidated():
    setup, _ = _buffered_setup()
    state = initial_state(setup, 0)
    capacity.warm_start(setup, state)
    idle = [nd for nd in state.nodes if not nd.pods]
    assert [nd.buffer for nd in idle] == [True]
    before = state.cost
    capacity.accrue_cost(setup, state)
    per_tick = setup.hourly_price("on-demand") * DT / 3600
    assert state.cost - before == pytest.approx(per_tick * len([nd for nd in state.nodes if nd.live]))
    for t in range(0, 7200, 60):
        capacity.consolidate(setup, state, float(t))
    assert idle[0].live
    unbuffered = replace(setup, buffer_nodes=0)
    assert levers.buffer_nodes(*_prod_chat(), setup.instance) == 0 and unbuffered.buffer_nodes == 0
    assert levers.buffer_nodes(load("staging"), load("staging").model_services[0], setup.instance) == 1  # staging keeps one


def _ramp_counter(slope: float, until: float, scrape: float = 15.0) -> deque:
    """A counter whose rate rises linearly, ``slope`` requests/s per second, scraped every ``scrape`` s."""
    return deque((t, slope * t * t / 2) for t in (k * scrape for k in range(int(until / scrape) + 1)))


def test_predict_linear_reads_the_ramp_one_lookahead_ahead():
    slope, t, lookahead = 0.01, 1200.0, 300.0
    samples = _ramp_counter(slope, t)
    # rate[1m] over samples 45 s apart centres 22.5 s back; predict_linear carries the line forward.
    assert predictive.predicted_rate(samples, t, 600, 15, lookahead) == pytest.approx(slope * (t + lookahead - 22.5), rel=1e-6)
    assert predictive.predicted_rate(samples, t, 600, 15, 0) == pytest.approx(slope * (t - 22.5), rel=1e-6)
    assert predictive.predicted_rate(deque(), t, 600, 15, lookahead) == 0.0


def test_the_predictive_trigger_scales_ahead_of_a_linear_ramp_by_about_the_lookahead():
    slope, lookahead, per_replica = 0.01, 390.0, 5.0
    samples = _ramp_counter(slope, 3000)

    def first_over(look: float) -> float:
        return next(t for t in range(600, 3000, 15) if predictive.predicted_rate(samples, t, 600, 15, look) / per_replica > 3)

    assert first_over(0.0) - first_over(lookahead) == pytest.approx(lookahead, abs=15)


def test_the_predictive_trigger_reaches_keda_beyond_the_fixed_pods():
    config, svc = levers.with_lever(*_prod_chat(), "predictive", 5.0)
    exp = Experiment(config, svc, load_trace(TRACE))
    profile = exp.profile("stack")
    assert profile.predictive is not None and profile.predictive.rps_per_replica == 5.0
    assert profile.predictive.lookahead_seconds == math.ceil(levers.burst_cold_start(config, svc)["seconds"])
    setup = ServiceReplay(config, svc, Trace((), exp.trace.start, "empty"), profile).setup
    state = initial_state(setup, 0)
    state.successes = _ramp_counter(0.01, 1200)
    state.scraped = {}  # no fixed pod scraped: nothing to subtract
    ratios = [tr.ratio for tr in control.keda_triggers(setup, state, 1200.0)]
    assert pytest.approx(0.01 * (1200 + 390 - 22.5) / 5.0) in ratios


def test_burst_cold_start_of_the_8b_with_and_without_a_buffer():
    config, svc = _prod_chat()
    cold = levers.burst_cold_start(config, svc)
    assert not cold["buffered"] and cold["seconds"] == pytest.approx(
        cold["node_ready"] + cold["image_pull"] + cold["download"] + cold["load"], abs=0.2)
    buffered = levers.burst_cold_start(*levers.with_lever(config, svc, "capacityBuffer", 1.0))
    assert buffered["buffered"] and buffered["node_ready"] == buffered["image_pull"] == 0.0
    assert buffered["seconds"] == pytest.approx(cold["seconds"] - cold["node_ready"] - cold["image_pull"], abs=0.2)


def _golden() -> dict:
    full = load_trace(TRACE)
    trace = Trace(tuple(r for r in full.requests if r.arrival < 1200), full.start, full.source)
    config, svc = _prod_chat()
    out = {}
    for lever in levers.LEVERS:
        cfg, s = levers.with_lever(config, svc, lever, 5.0)
        exp = Experiment(cfg, s, trace, seed=3, spot_interruptions_per_hour=1)
        m = exp.run(exp.profile("stack")).metrics()
        out[f"prod/chat-8b +{lever}, first 20 min"] = {k: m[k] for k in (
            "served", "slo_attainment", "slo_attainment_steady", "ttft_p95_s", "gpu_hours", "cost_usd", "node_hours")}
    return out


def test_lever_replays_match_the_golden_figures():
    figures = json.loads(json.dumps(_golden()))
    if os.environ.get("SIMULATOR_GOLDEN_UPDATE"):
        GOLDEN.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert figures == golden
    assert len({json.dumps(v) for v in golden.values()}) > 3  # the levers do move the replay


def test_paying_keeps_one_loader_and_levers_that_pay_everywhere():
    def row(name, pays, cold):
        return {"variant": f"+{name}", "pays": pays, "cold_start_s": cold}

    a = [{"variant": "stack"}, row("runaiNvme", True, 300), row("runaiS3", True, 250), row("capacityBuffer", True, 180),
         row("predictive", True, 390)]
    b = [{"variant": "stack"}, row("runaiNvme", True, 300), row("runaiS3", True, 250), row("capacityBuffer", True, 180),
         row("predictive", False, 390)]
    assert lever_report.paying([a, b]) == ["capacityBuffer", "runaiS3"]
    assert not math.isnan(levers.replica_rps(_prod_chat()[1], _prod_chat()[0], load_trace(TRACE)))


def test_the_rendered_predictive_query_passes_the_policies_that_read_it():
    """Found adopting the trigger in prod: the single-series rule refused predict_linear of a sum,
    and the lookahead rule read clamp_min's 0 as the lookahead."""
    from types import SimpleNamespace

    from components.render import scaling
    from policies import rules_levers, rules_scaling

    config, svc = levers.with_lever(*_prod_chat(), "predictive", 0.44)
    query = scaling.predictive_query(svc, "inference", 390)
    props = {"metadata": {"name": "chat-8b-burst", "namespace": "inference",
                          "annotations": {scaling.COLD_START_ANNOTATION: "390"}},
             "spec": {"triggers": [{"type": "prometheus", "name": "predicted-rate", "metadata": {"query": query}}]}}
    assert list(rules_scaling.single_series(rules_scaling.SCALED_OBJECT, props, {})) == []
    so = SimpleNamespace(urn="urn:so", resource_type=rules_scaling.SCALED_OBJECT, props=props)
    assert list(rules_levers.predictive_lookahead([so], {})) == []
    short = {**props, "spec": {"triggers": [{"metadata": {"query": scaling.predictive_query(svc, "inference", 120)}}]}}
    found = list(rules_levers.predictive_lookahead([SimpleNamespace(urn="urn:so", resource_type=rules_scaling.SCALED_OBJECT, props=short)], {}))
    assert len(found) == 1 and "120 s ahead" in found[0][1]


def _ramp_trace(seconds: int, peak: float, seed: int) -> Trace:
    import random

    from simulator.trace import Request

    rng, out, t = random.Random(seed), [], 0.0
    while t < seconds:
        t += rng.expovariate(0.2 + peak * t / seconds)
        out.append(Request(len(out), t, rng.randint(200, 4000), rng.randint(20, 400)))
    return Trace(tuple(out), load_trace(TRACE).start, "ramp")


def test_the_tuner_searches_the_levers_and_stays_deterministic():
    from simulator.tune import Tuner

    config, svc = _prod_chat()  # no lever configured: the tuner turns them on itself

    def tune():
        experiments = [Experiment(config, svc, _ramp_trace(400, p, i), seed=i, transient_minutes=3)
                       for i, p in enumerate((6, 2))]
        tuner = Tuner(experiments, svc.slo.attainment_target)
        assert tuner.space["buffer_nodes"] == [0, 1] and tuner.space["predictive"][0] is None
        trigger = tuner.space["predictive"][1]
        # sized for the heavier mix of the two traces, one modelled cold start ahead
        assert trigger.rps_per_replica == min(levers.replica_rps(svc, config, e.trace) for e in experiments)
        assert trigger.lookahead_seconds == math.ceil(levers.burst_cold_start(config, svc)["seconds"])
        tuner.space = {k: v[:2] for k, v in tuner.space.items()}  # a small search
        return tuner, tuner.search(experiments[0].profile("stack"))

    tuner, chosen = tune()
    tried = list(tuner.points)
    assert any(p.predictive is not None for p in tried) and any(p.buffer_nodes == 1 for p in tried)
    # the buffer is billed: the same profile with a buffer node costs more
    pairs = [(tuner.points[p], tuner.points[p.with_(buffer_nodes=0)]) for p in tried
             if p.buffer_nodes == 1 and p.with_(buffer_nodes=0) in tuner.points]
    assert pairs and all(on.cost > off.cost for on, off in pairs)
    again, chosen_again = tune()
    assert chosen_again.profile == chosen.profile and chosen_again.cost == chosen.cost
    assert set(again.points) == set(tuner.points)


def test_predicted_rate_bisects_to_the_same_rates_as_the_plain_definition():
    """rate_at finds each [1m] window by bisection (predicted_rate reads ~40 windows every tick);
    the result must equal the plain definition, a scan of every sample, on irregular scrapes with
    gaps and a reset-like drop (rate floors at 0)."""
    import random

    def plain_rate(samples, tau: float) -> float | None:
        inside = [s for s in samples if tau - 60 < s[0] <= tau]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return max(c1 - c0, 0.0) / (t1 - t0)

    rng = random.Random(7)
    t, count, samples = 0.0, 0.0, deque()
    while t < 1500:
        t += rng.choice((5.0, 15.0, 15.0, 15.0, 45.0, 90.0))
        count = max(0.0, count + rng.uniform(-5, 40))
        samples.append((t, count))
    for at in (300.0, 612.5, 900.0, 1200.0, 1499.0):
        first = (at - 600) // 15 * 15 + 15
        taus = [first + k * 15 for k in range(int((at - first) // 15) + 1)]
        for tau in taus:
            assert predictive.rate_at(samples, tau) == plain_rate(samples, tau)
        points = [(tau, r) for tau in taus if (r := plain_rate(samples, tau)) is not None]
        plain = predictive.predict_linear(points, at, 390)
        assert predictive.predicted_rate(samples, at, 600, 15, 390) == (0.0 if plain is None else plain)
