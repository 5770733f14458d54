"""The simulator's trace formats, warm-up and steady state, rejections, oracles and the tuner (issue 17)."""

from __future__ import annotations

import math

import pytest

from simulator.trace import load as load_trace
from tests.conftest import REPO

AZURE = REPO / "tests" / "upstream" / "traces" / "AzureLLMInferenceTrace_code.csv"
MOONCAKE = REPO / "tests" / "upstream" / "traces" / "mooncake_conversation_trace.jsonl"


def test_mooncake_trace_keeps_times_tokens_and_block_hashes():
    trace = load_trace(MOONCAKE)
    assert len(trace.requests) == 12031
    # The file's first line; requests at the same time are ordered by their token counts.
    first = next(r for r in trace.requests if r.prompt_tokens == 6758 and r.output_tokens == 500)
    assert first.arrival == 0.0 and first.hash_ids == tuple(range(14))  # 6758 tokens: 14 blocks of 512
    assert trace.duration == pytest.approx(3536.999)  # the last timestamp, 3,536,999 ms


def test_mooncake_is_told_by_content_and_copies_keep_their_hashes(tmp_path):
    path = tmp_path / "conversation.txt"  # no .jsonl extension: the first character decides
    path.write_text('{"timestamp": 1500, "input_length": 700, "output_length": 3, "hash_ids": [0, 1]}\n\n'
                    '{"timestamp": 0, "input_length": 10, "output_length": 0, "hash_ids": []}\n')
    trace = load_trace(path, rate_multiplier=2)
    assert [(r.arrival, r.prompt_tokens, r.output_tokens) for r in trace.requests][::2] == [(0.0, 10, 1), (1.5, 700, 3)]
    assert [r.hash_ids for r in trace.requests] == [(), (), (0, 1), (0, 1)]


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "empty trace file; expected JSON lines with timestamp, input_length, output_length, hash_ids"),
    ('{"timestamp": 0, "input_length": 1, "output_length": 1}\n{"timestamp": 5,\n', ":2: not a JSON object"),
    ('{"timestamp": 0, "output_length": 1}\n', ":1: missing input_length"),
    ('\n{"timestamp": -1, "input_length": 1, "output_length": 1}\n', ":2: timestamp -1 must be an integer >= 0"),
    ('{"timestamp": 0, "input_length": "9", "output_length": 1}\n', ":1: input_length '9' must be an integer >= 0"),
    ('{"timestamp": 0, "input_length": 9, "output_length": 1.5}\n', ":1: output_length 1.5 must be an integer >= 0"),
    ('{"timestamp": 0, "input_length": 9, "output_length": 1, "hash_ids": [1, "a"]}\n', ":1: hash_ids must be a list of integers"),
    ('[1, 2]\n', ":1: expected a JSON object"),
])
def test_bad_mooncake_lines_name_the_file_line_and_field(tmp_path, text, fragment):
    from tests.test_simulator import assert_trace_rejected

    assert_trace_rejected(tmp_path / "t.jsonl", text, fragment)


# ---------------------------------------------------------------------- warm-up, steady state, rejections


def _synthetic(requests):
    from datetime import datetime, timezone

    from simulator.trace import Request, Trace

    return Trace(tuple(Request(i, a, p, o) for i, (a, p, o) in enumerate(requests)),
                 datetime(2024, 1, 1, 12, tzinfo=timezone.utc), "synthetic")


def test_attainment_splits_at_the_transient_window():
    from simulator.result import Result
    from simulator.run import Run

    nan = float("nan")
    arrival = [0.0, 100.0, 599.0, 600.0, 1000.0]
    first = [0.5, 102.0, nan, 600.1, 1000.2]  # 2 s late; never served; then two in time
    result = Result(arrival, first, first, first, ["on-demand"] * 5, 0, 0, 1.0, 1.0, {}, [], 1.0)
    m = Run(None, result, transient_seconds=600).metrics()
    assert (m["slo_attainment"], m["slo_attainment_transient"], m["slo_attainment_steady"]) == (0.6, 0.3333, 1.0)
    assert Run(None, result, transient_seconds=2000).metrics()["slo_attainment_steady"] is None  # no requests after


def test_requests_over_max_model_len_are_rejected_and_missed():
    from simulator.profile import from_config
    from simulator.replay import ServiceReplay
    from simulator.run import Run
    from tests.conftest import load

    cfg = load("prod")
    svc = cfg.model_services[0]  # maxModelLen 16384
    light = [(10.0 * i, 100, 10) for i in range(120)]  # 20 minutes, one small request every 10 s
    # Prompt plus output: exactly at the limit (served), one token over (rejected), a prompt alone over it.
    edge = [(700.0, 16000, 384), (701.0, 16000, 385), (702.0, 17000, 1)]
    trace = _synthetic(sorted(light + edge))
    result = ServiceReplay(cfg, svc, trace, from_config(svc, 0)).replay()
    index = {(r.arrival, r.prompt_tokens): i for i, r in enumerate(trace.requests)}
    assert result.rejected == 2
    assert [result.capacity[index[a, p]] for a, p, _ in edge] == ["on-demand", "rejected", "rejected"]
    assert all(math.isnan(result.first_token[index[a, p]]) for a, p, _ in edge[1:])
    m = Run(None, result).metrics()
    # Every servable request is in time (light load on two warm replicas); the rejections are the misses.
    steady = [r for r in trace.requests if r.arrival >= 600]
    assert m["rejected"] == 2 and m["served"] == 121
    assert m["slo_attainment_transient"] == 1.0
    assert m["slo_attainment_steady"] == round((len(steady) - 2) / len(steady), 4)
    assert result.attainment(since=600, servable=True) == 1.0
    assert m["slo_attainment_steady_servable"] == 1.0  # what the tuner judges, in summary.json too


def test_warm_start_begins_with_the_replicas_the_first_window_needs():
    from simulator.profile import from_config
    from simulator.replay import ServiceReplay, initial_state, steady_burst
    from tests.conftest import load_plain_prod

    cfg = load_plain_prod()
    svc = cfg.model_services[0]  # baseline 2, burst up to 6
    # Twelve 2,000-token requests a second from the start: far more than the baseline carries.
    trace = _synthetic([(s + k / 12, 2000, 200) for s in range(1200) for k in range(12)])
    cold = ServiceReplay(cfg, svc, trace, from_config(svc, 0))
    warm = ServiceReplay(cfg, svc, trace, from_config(svc, 0), warm_start_seconds=600)
    burst = steady_burst(warm.setup, 0)
    assert burst >= 2 and initial_state(cold.setup, 0).burst_desired == 0
    cold_result, warm_result = cold.replay(), warm.replay()
    assert cold_result.timeline[0]["ready"] == 2  # the baseline only
    assert warm_result.timeline[0]["ready"] == 2 + burst  # Ready at t = 0, on warm nodes
    assert warm_result.attainment(until=600) > cold_result.attainment(until=600)


# ---------------------------------------------------------------------- oracles


def test_constrained_oracle_respects_max_replicas_and_bills_whole_nodes():
    from simulator import oracle
    from simulator.run import Experiment
    from tests.conftest import load

    trace = load_trace(AZURE)
    dev = load("dev")
    svc = dev.model_services[0]  # maxReplicas 2
    experiment = Experiment(dev, svc, trace)
    free, _ = oracle.unconstrained(experiment, svc.slo.attainment_target)
    bound, _ = oracle.constrained(experiment, svc.slo.attainment_target)
    assert max(row["ready"] for row in free.result.timeline) > 2  # the bound ignores maxReplicas
    assert max(row["ready"] for row in bound.result.timeline) <= 2
    # reason-70b: two tp-4 replicas per 8-GPU node. The bound bills half a node per replica, the
    # constrained oracle whole nodes (whole node-seconds), packed: never more nodes than needed
    # for the replicas plus the ones still draining.
    prod = load("prod")
    reason = prod.model_services[1]
    experiment = Experiment(prod, reason, trace)
    free, _ = oracle.unconstrained(experiment, reason.slo.attainment_target)
    bound, _ = oracle.constrained(experiment, reason.slo.attainment_target)
    assert all(v % 1 == 0 for v in bound.result.node_seconds.values())
    rows = bound.result.timeline
    assert all(row["ready"] <= 2 * (row["nodes_on_demand"] + row["nodes_spot"]) for row in rows)
    assert max(row["ready"] for row in rows) <= reason.scaling.max_replicas
    assert min(row["ready"] for row in rows if row["t"] > 0) >= 1  # prod's floor: never zero
    run = Experiment(prod, reason, trace).run(Experiment(prod, reason, trace).profile("stack"))
    metrics = run.metrics(free.result.cost, bound.result.cost)
    assert metrics["cost_vs_constrained_oracle"] == round(run.result.cost / bound.result.cost, 3)


def test_oracle_nodes_are_shares_or_packed_whole_nodes():
    from dataclasses import replace

    from simulator.capacity import bind_on_oracle_node
    from simulator.profile import from_config
    from simulator.replay import ServiceReplay, initial_state
    from simulator.state import Pod
    from tests.conftest import load

    prod = load("prod")
    reason = prod.model_services[1]  # two replicas per p5.48xlarge
    setup = ServiceReplay(prod, reason, _synthetic([(0.0, 10, 10)]), from_config(reason, 0), schedule=lambda t: 2).setup
    for whole, nodes, share in ((False, 2, 0.5), (True, 1, 1.0)):
        s = replace(setup, whole_nodes=whole)
        state = initial_state(s, 0)
        for i in range(2):
            bind_on_oracle_node(s, state, Pod(i, "burst", 0.0), 0.0)
        assert len(state.nodes) == nodes and {n.share for n in state.nodes} == {share}
        assert sum(len(n.pods) for n in state.nodes) == 2 and all(p.ready for n in state.nodes for p in n.pods)


# ---------------------------------------------------------------------- the tuner


def test_tuner_space_stays_within_the_floors():
    from simulator.oracle import nodepool_cap
    from simulator.run import Experiment
    from simulator.tune import space
    from tests.conftest import load

    trace = _synthetic([(0.0, 10, 10)])
    prod, dev = load("prod"), load("dev")
    knobs = space(Experiment(prod, prod.model_services[0], trace))
    assert min(knobs["baseline"]) == 1  # prod refuses scale to zero; the stack's 2 is no floor
    assert min(knobs["scale_down_stabilization_seconds"]) == 300  # the policy pack's prod floor
    assert min(knobs["polling_seconds"]) == 5  # the config model's bound
    assert max(knobs["baseline"]) + min(knobs["burst"]) <= nodepool_cap(Experiment(prod, prod.model_services[0], trace))
    assert max(knobs["burst"]) + 1 > prod.model_services[0].scaling.max_replicas  # maxReplicas is searched upwards too
    knobs = space(Experiment(dev, dev.model_services[0], trace))
    assert min(knobs["baseline"]) == 0 and min(knobs["scale_down_stabilization_seconds"]) == 60


def _ramp(seconds: int, peak: float, seed: int) -> list[tuple[float, int, int]]:
    import random

    rng = random.Random(seed)
    out, t = [], 0.0
    while t < seconds:
        t += rng.expovariate(0.2 + peak * t / seconds)
        out.append((t, rng.randint(200, 4000), rng.randint(20, 400)))
    return out


def _ramp_csv(path, seconds: int, peak: float, seed: int):
    """``_ramp`` as a generic trace file."""
    path.write_text("arrival_seconds,prompt_tokens,output_tokens\n" +
                    "".join(f"{a:.3f},{p},{o}\n" for a, p, o in _ramp(seconds, peak, seed)))
    return path


def test_tuner_judges_every_trace_and_seed_and_its_front_is_non_dominated():
    from simulator.profile import Profile
    from simulator.run import Experiment
    from simulator.tune import Tuner
    from tests.conftest import load

    cfg = load("prod")
    svc = cfg.model_services[0]
    traces = [_synthetic(_ramp(400, 8, 1)), _synthetic(_ramp(400, 4, 2))]

    def tune() -> tuple[Tuner, object]:
        experiments = [Experiment(cfg, svc, t, seed=s, spot_interruptions_per_hour=2, transient_minutes=3)
                       for t in traces for s in (0, 1)]
        tuner = Tuner(experiments, svc.slo.attainment_target)
        tuner.space = {k: v[:2] if k != "burst" else v[:3] for k, v in tuner.space.items()}  # a small search
        return tuner, tuner.search(experiments[0].profile("stack"))

    tuner, chosen = tune()
    points = list(tuner.points.values())
    assert len(points) > 10 and all(len(p.runs) == 4 for p in points)
    for p in points:  # judged on all four replays: the worst steady attainment, the mean cost
        assert p.attainment == min(r.steady_attainment for r in p.runs)
        assert p.cost == pytest.approx(sum(r.cost for r in p.runs) / 4)
    # The four replays differ (two traces, two seeds), so the judgement really takes all of them.
    assert len({(r.steady_attainment, r.cost) for r in points[0].runs}) > 1
    front = tuner.front()
    assert front and all(not q.dominates(p) for p in front for q in points)
    assert all(any(f.dominates(p) or (f.cost, f.attainment) == (p.cost, p.attainment) for f in front) for p in points)
    assert [p.cost for p in front] == sorted(p.cost for p in front)
    assert chosen in front
    feasible = [p for p in points if p.attainment >= svc.slo.attainment_target]
    if feasible:
        assert chosen.cost == min(p.cost for p in feasible)
    assert all(isinstance(p.profile, Profile) and p.profile.baseline >= 1 for p in points)
    again, chosen_again = tune()  # the same traces and seeds: the same search, the same answer
    assert chosen_again.profile == chosen.profile and chosen_again.cost == chosen.cost
    assert set(again.points) == set(tuner.points)


def test_cli_tunes_on_several_traces_and_seeds(tmp_path):
    import json
    import subprocess
    import sys

    import yaml

    from tests.conftest import load_with

    paths = []
    for i, peak in enumerate((3, 1)):  # five-minute traces: a quick tune
        paths += ["--trace", str(_ramp_csv(tmp_path / f"t{i}.csv", 300, peak, i))]
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "simulator", "--stack", "prod", "--service", "chat-8b", *paths,
                           "--seeds", "0,1", "--tune", "--transient-minutes", "2", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tune"]["traces"] == ["t0.csv", "t1.csv"] and summary["tune"]["seeds"] == [0, 1]
    assert summary["tune"]["replays"] == 4 * summary["tune"]["evaluations"]
    rows = summary["tune"]["pareto_front"]
    assert sum(r["chosen"] for r in rows) == 1 and "Pareto front" in proc.stdout
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    snippet = summary["tuned_snippet"]
    assert snippet.startswith("# prod/chat-8b, tuned by python -m simulator on t0.csv, t1.csv (seeds 0,1)") and snippet in proc.stdout
    scaling = yaml.safe_load(snippet)["modelServices"][0]

    def apply(values: dict) -> None:
        service = next(s for s in values["modelServices"] if s["name"] == scaling["name"])
        service["scaling"].update(scaling["scaling"])

    tuned = load_with("prod", apply).model_services[0]  # the snippet is a valid stack-file change
    assert tuned.scaling.min_replicas == rows[[r["chosen"] for r in rows].index(True)]["minReplicas"]


def test_cli_rejects_bad_seeds(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "simulator", "--stack", "prod", "--service", "chat-8b", "--trace", str(AZURE),
                           "--seeds", "0,x", "--tune", "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "--seeds takes integers separated by commas" in proc.stderr


def test_cli_judges_the_stack_profile_on_every_trace_and_seed(tmp_path):
    """Without --tune, several traces or seeds: the stack profile judged as the tuner judges one
    (its worst steady-state attainment, its mean cost); one trace and one seed: no judgement."""
    import json
    import subprocess
    import sys

    path = _ramp_csv(tmp_path / "t.csv", 300, 3, 0)

    def run(*extra: str) -> tuple[dict, str]:
        out = tmp_path / f"out{len(extra)}"
        proc = subprocess.run([sys.executable, "-m", "simulator", "--stack", "prod", "--service", "chat-8b",
                               "--trace", str(path), *extra, "--transient-minutes", "2", "--out", str(out)],
                              cwd=REPO, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return json.loads((out / "summary.json").read_text()), proc.stdout

    alone, printed = run()
    assert "stack_judged" not in alone and "stack profile on" not in printed
    # The same trace twice with one seed: the worst of two identical replays is the replay's own
    # steady state (no request of this trace exceeds maxModelLen, so servable = all).
    twice, printed = run("--trace", str(path), "--seeds", "0")
    judged = twice["stack_judged"]
    assert judged["traces"] == ["t.csv", "t.csv"] and judged["seeds"] == [0]
    assert judged["attainment_steady_worst"] == twice["profiles"]["stack"]["slo_attainment_steady_servable"] \
        == twice["profiles"]["stack"]["slo_attainment_steady"]
    assert "stack profile on 2 replays" in printed


def test_lever_report_turns_the_stacks_own_levers_off(tmp_path):
    """prod's chat-8b has the predictive trigger: its row is '-predictive', and the lever pays
    when the stack beats the row (the stack is the one with the lever)."""
    from simulator import lever_report
    from simulator.run import Experiment
    from tests.conftest import load

    cfg = load("prod")
    svc = next(s for s in cfg.model_services if s.name == "chat-8b")
    assert svc.predictive_scaling.enabled
    path = _ramp_csv(tmp_path / "t.csv", 300, 3, 0)
    trace = load_trace(path)
    rows = lever_report.trace_rows(cfg, svc, trace, lambda c, s: Experiment(c, s, trace, seed=0, transient_minutes=2))
    variants = [r["variant"] for r in rows]
    assert "-predictive" in variants and "+predictive" not in variants and "+capacityBuffer" in variants
    base, off = rows[0], next(r for r in rows if r["variant"] == "-predictive")
    assert off["pays"] == lever_report._pays(base, off)
    # "All that pay" only turns on levers the stack lacks.
    assert set(lever_report.paying([rows])) <= {v[1:] for v in variants if v.startswith("+")}
