"""Each KEDA trigger query (and each Prometheus Adapter rule) evaluated by promtool on
synthetic vLLM series for a known situation.

A KEDA prometheus trigger must return exactly one sample (several is an error in KEDA's
prometheus scaler); the value is what the trigger's scaling math reads. With no series at all
every query returns its guard (`or vector(0)`); a user's own query may still return nothing,
which KEDA reads, like NaN, as 0 while the trigger's `ignoreNullValues` keeps its default
`true` (KEDA pkg/scalers/prometheus_scaler.go), which a test below holds.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.conftest import STACKS
from tests.promql_kit import (
    KSM_TARGET,
    KV_CACHE,
    OTHER,
    RUNNING,
    SHADOW,
    TTFT_BUCKET,
    WAITING,
    Build,
    Served,
    Situation,
    adapter_query,
    histogram_series,
    pod_name,
    run_promtool_tests,
    series,
    series_name,
    served,
)
from tests.router_trigger_cases import ROUTER_SITUATIONS

MINUTES = 10
EVAL = "5m"
# Triggers whose query is the user's own (over metrics we do not know): parsed, not evaluated.
USER_QUERIES = {"wake"}


def _gauge(metric: str, values: dict[str, float], targets: list[dict[str, str]]) -> list[dict[str, str]]:
    """One series per target, valued by pod name (targets not named read `values['*']`)."""
    return [{"series": series(metric, t), "values": f"{values[t['pod'] if t['pod'] in values else '*']:g}x{MINUTES}"}
            for t in targets if t["pod"] in values or "*" in values]


def _pods(s: Served, burst_pods: int, lost: int = 0) -> dict[str, int]:
    """The pods that report: every fixed (baseline, canary) pod but `lost` baseline ones, and
    `burst_pods` burst pods."""
    pods = {**s.deployments, s.burst: burst_pods}
    baseline = next(name for name in s.deployments if name != s.burst) if lost else None
    if baseline is not None:
        pods[baseline] -= lost
    return {name: n for name, n in pods.items() if n}


def _fixed(pods: dict[str, int], s: Served) -> int:
    return sum(n for name, n in pods.items() if name != s.burst)


def _fill(metric: str, targets: list[dict[str, str]], per_pod: float, burst: dict[str, float]) -> list[dict[str, str]]:
    return _gauge(metric, {"*": per_pod, **burst}, targets)


def waiting(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    """Waiting requests beyond what the reporting fixed pods absorb at the per-replica target;
    the AverageValue target then asks for ceil(value / threshold) burst replicas. A lost
    baseline pod stops reporting, and the burst covers it."""
    target = float(trigger["metadata"]["threshold"])
    foreign = s.foreign()
    out = []
    cases = [(0, t) for t in (14.0, _fixed(_pods(s, 1), s) * target, (_fixed(_pods(s, 1), s) + 2) * target - 1)]
    if _fixed(s.deployments, s) > 0:
        cases.append((1, 14.0))  # one baseline pod lost: its share is no longer subtracted
    for lost, total in cases:
        pods = _pods(s, 1, lost)
        own = s.targets(pods)
        # The backlog spread over the pods, the remainder on the first.
        each, first = divmod(total, len(own))
        values = {t["pod"]: each for t in own} | {own[0]["pod"]: each + first}
        noise = _gauge(WAITING, {"*": 50}, foreign)
        expected = max(0.0, total - _fixed(pods, s) * target)
        out.append(Situation(f"{total:g} waiting on {len(own)} pods ({_fixed(pods, s)} fixed reporting, {lost} lost): "
                             f"{math.ceil(expected / target)} burst replicas wanted",
                             _gauge(WAITING, values, own) + noise, expected))
    return out


def kv_cache(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    """KV cache in use summed over our pods, less the target's share per reporting fixed pod
    (every pod exports vllm:num_requests_waiting as well, which counts the fixed pods)."""
    target = float(trigger["metadata"]["threshold"])
    foreign = s.foreign()
    hot = pod_name(s.burst, 1)
    out = []
    for lost, per_pod in ((0, 0.5), (0, 0.875)) + (((1, 0.875),) if _fixed(s.deployments, s) else ()):
        pods = _pods(s, 2, lost)
        own = s.targets(pods)
        burst = {pod_name(s.burst, 0): 0.5, hot: 0.875}
        total = per_pod * _fixed(pods, s) + 0.5 + 0.875
        out.append(Situation(f"fixed pods at {per_pod:g} ({lost} lost), burst at 0.5 and 0.875, other services full",
                             _fill(KV_CACHE, own, per_pod, burst) + _gauge(WAITING, {"*": 0}, own)
                             + _gauge(KV_CACHE, {"*": 0.99}, foreign),
                             max(0.0, total - target * _fixed(pods, s))))
    return out


def ttft_p95(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    """1 while our p95 is above the SLO (activation-only), whatever other services see."""
    own, foreign = s.targets(_pods(s, 1)), s.foreign()
    slow_elsewhere = [x for t in foreign for x in histogram_series(TTFT_BUCKET, t, 160.0, 60, MINUTES)]
    out = []
    # Every first token in one bucket: p95 interpolates to lower + width x 0.95 in it.
    for upper, p95 in ((0.5, 0.4875), (2.5, 2.425), (7.5, 7.375)):
        hist = [x for t in own for x in histogram_series(TTFT_BUCKET, t, upper, 60, MINUTES)]
        above = p95 > s.config.slo.ttft_p95_seconds
        out.append(Situation(f"p95 {p95}s against the {s.config.slo.ttft_p95_seconds:g}s SLO", hist + slow_elsewhere,
                             1.0 if above else 0.0))
    idle = [x for t in own for x in histogram_series(TTFT_BUCKET, t, 2.5, 0, MINUTES)]
    out.append(Situation("no first token in the window (p95 NaN) reads 0", idle + slow_elsewhere, 0.0))
    return out


def keep_alive(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    """Running requests beyond a full batch (the threshold) per reporting fixed pod: busy burst
    pods alone do not keep the burst active while the baseline has room."""
    batch = float(trigger["metadata"]["threshold"])
    foreign = s.foreign()
    pods = _pods(s, 2)
    own = s.targets(pods)
    burst = {pod_name(s.burst, 0): 7, pod_name(s.burst, 1): 9}
    fixed = _fixed(pods, s)
    out = [Situation("requests on burst pods, baseline at 40: beyond the fixed pods' batches",
                     _fill(RUNNING, own, 40, burst) + _gauge(WAITING, {"*": 0}, own) + _gauge(RUNNING, {"*": 100}, foreign),
                     max(0.0, 40 * fixed + 16 - batch * fixed)),
           Situation("full batches on the fixed pods, 16 more on burst pods",
                     _fill(RUNNING, own, batch, burst) + _gauge(WAITING, {"*": 0}, own), 16.0)]
    return out


def burst_above_one(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    """1 while our burst Deployment asks for more than one replica (kube-state-metrics)."""
    def spec(namespace: str, deployment: str, replicas: int) -> dict[str, str]:
        labels = {**KSM_TARGET, "namespace": namespace, "deployment": deployment}
        return {"series": series("kube_deployment_spec_replicas", labels), "values": f"{replicas}x{MINUTES}"}

    others = [spec(SHADOW, s.burst, 6), spec(s.namespace, f"{OTHER}-burst", 6)]
    return [Situation(f"burst at {n}, other Deployments at 6", [spec(s.namespace, s.burst, n)] + others, float(n > 1))
            for n in (0, 1, 2, s.max_burst)]


def predicted_rate(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    """The request rate predicted one cold start ahead (``predict_linear`` over a subquery of
    ``rate(...[1m])``), less what the reporting fixed pods serve at ``threshold`` each, floored at
    0: AverageValue, so KEDA asks for ceil(value / threshold) burst replicas. On a steady rate the
    regression is flat and the prediction is the rate itself (the ramp, where the lookahead shows:
    tests/test_levers_promql.py). Samples every 15 s from a counter already running, evaluated
    at 12m, when every point of the regression's 10-minute window has a full [1m] rate (earlier,
    the rates at the series' start are extrapolated short and the regression slopes up)."""
    per_replica = float(trigger["metadata"]["threshold"])
    step, samples = 15, 4 * 13
    pods = _pods(s, 1)
    own, foreign = s.targets(pods), s.foreign()

    def counters(targets: list[dict[str, str]], rate: float) -> list[dict[str, str]]:
        return [{"series": series("vllm:request_success_total", t), "values": f"1000+{rate * step:g}x{samples - 1}"}
                for t in targets]

    fixed = _fixed(pods, s)
    reporting = [{"series": series(WAITING, t), "values": f"0x{samples - 1}"} for t in own]
    out = []
    for rate in (0.5, 2.0, 0.125):  # requests/s per reporting pod; the last below the fixed pods' share
        total = rate * len(own)
        out.append(Situation(f"{total:g} req/s over {len(own)} pods ({fixed} fixed at {per_replica:g}), others at 50",
                             counters(own, rate) + reporting + counters(foreign, 50.0),
                             round(max(0.0, total - fixed * per_replica), 6), interval=f"{step}s", eval_time="12m",
                             decimals=6))
    return out


SITUATIONS = {"waiting": waiting, "predicted-rate": predicted_rate, "kv-cache": kv_cache, "ttft-p95": ttft_p95, "keep-alive": keep_alive,
              "burst-above-one": burst_above_one,
              **ROUTER_SITUATIONS}  # routing.mode router (tests/router_trigger_cases.py)
# With no series at all (no replica scraped yet): every query is guarded to read 0.
ABSENT = dict.fromkeys(SITUATIONS, 0.0)


def _triggers(stack_services: list[Served]) -> list[tuple[Served, dict[str, Any]]]:
    out = []
    for s in stack_services:
        for so in s.build.of_kind("ScaledObject"):
            if so["metadata"]["namespace"] == s.namespace and so["spec"]["scaleTargetRef"]["name"] == s.burst:
                out += [(s, t) for t in so["spec"]["triggers"] if t["type"] == "prometheus"]
    return out


@pytest.fixture(scope="module")
def services(synthesized) -> dict[str, list[Served]]:
    return {stack: served(stack, d) for stack, d in synthesized.items()}


def test_every_trigger_has_a_situation(services):
    names = {t["name"] for svcs in services.values() for _, t in _triggers(svcs)}
    assert names, "no prometheus trigger found"
    assert names - USER_QUERIES <= set(SITUATIONS), f"triggers without a promtool situation: {names - set(SITUATIONS)}"
    assert set(SITUATIONS) == set(ABSENT)


def test_empty_results_read_as_zero(services):
    """The unguarded queries rely on KEDA's ignoreNullValues default (true)."""
    for svcs in services.values():
        for _, t in _triggers(svcs):
            assert str(t["metadata"].get("ignoreNullValues", "true")).lower() == "true", t["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_trigger_queries_on_a_real_engine(stack, services, promtool, tmp_path):
    tests, evaluated = [], 0
    for s, trigger in _triggers(services[stack]):
        if trigger["name"] in USER_QUERIES:
            continue
        query = trigger["metadata"]["query"]
        cases = SITUATIONS[trigger["name"]](s, trigger) + [Situation("no series at all", [], ABSENT[trigger["name"]])]
        for case in cases:
            exp = [] if case.expected is None else [{"labels": "{}", "value": case.expected}]
            expr = query if case.decimals is None else f"round({query}, {10.0 ** -case.decimals:g})"
            tests.append({"name": f"{s.config.name} {trigger['name']}: {case.name}", "interval": case.interval,
                          "input_series": case.input_series,
                          "promql_expr_test": [{"expr": expr, "eval_time": case.eval_time or EVAL,
                                                "exp_samples": exp}]})
            evaluated += 1
    if not tests:
        pytest.skip(f"{stack}: no prometheus trigger to evaluate")
    proc = run_promtool_tests(promtool, tmp_path, [], tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"\n{stack}: {evaluated} trigger evaluations passed in promtool")


@pytest.mark.parametrize("stack", STACKS)
def test_adapter_rules_on_a_real_engine(stack, services, synthesized, promtool, tmp_path):
    """The Prometheus Adapter's per-pod metrics: its seriesQuery finds our series, and its
    metricsQuery (filled in as the adapter does for a Pods metric) returns one sample per pod."""
    adapter = Build.read(synthesized[stack]).releases.get("prometheus-adapter")
    if adapter is None:
        pytest.skip(f"{stack}: no Prometheus Adapter")
    s = services[stack][0]
    own, foreign = s.targets(), s.foreign()
    tests = []
    for rule in adapter["values"]["rules"]["custom"]:
        metric = series_name(rule["seriesQuery"])
        values = {t["pod"]: i + 1 for i, t in enumerate(own)}
        data = _gauge(metric, values, own) + _gauge(metric, {"*": 50}, foreign)
        matchers = f'namespace="{s.namespace}",pod=~"{"|".join(values)}"'
        tests.append({"name": f"adapter {metric}", "interval": "1m", "input_series": data, "promql_expr_test": [
            {"expr": f"count({rule['seriesQuery']})", "eval_time": EVAL,
             "exp_samples": [{"labels": "{}", "value": len(own) + len(foreign)}]},
            {"expr": adapter_query(rule["metricsQuery"], metric, matchers, "pod"), "eval_time": EVAL,
             "exp_samples": [{"labels": f'{{pod="{pod}"}}', "value": v} for pod, v in values.items()]},
        ]})
    proc = run_promtool_tests(promtool, tmp_path, [], tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
