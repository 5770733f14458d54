"""Each KEDA trigger query (and each Prometheus Adapter rule) evaluated by promtool on
synthetic vLLM series for a known situation.

A KEDA prometheus trigger must return exactly one sample (several is an error in KEDA's
prometheus scaler); the value is what the trigger's scaling math reads. With no series at all
a query returns its guard (`or vector(0)`) or nothing: KEDA reads an empty result, like NaN,
as 0 while the trigger's `ignoreNullValues` keeps its default `true` (KEDA
pkg/scalers/prometheus_scaler.go), which a test below holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import STACKS
from tests.promql_kit import (
    KV_CACHE,
    RUNNING,
    TTFT_BUCKET,
    WAITING,
    Build,
    Served,
    adapter_query,
    histogram_series,
    pod_name,
    run_promtool_tests,
    series,
    series_name,
    served,
)

MINUTES = 10
EVAL = "5m"
# Triggers whose query is the user's own (over metrics we do not know): parsed, not evaluated.
USER_QUERIES = {"wake"}


@dataclass(frozen=True)
class Situation:
    name: str
    input_series: list[dict[str, str]]
    expected: float | None  # None: no sample at all


def _gauge(metric: str, values: dict[str, float], targets: list[dict[str, str]]) -> list[dict[str, str]]:
    """One series per target, valued by pod name (targets not named read `values['*']`)."""
    return [{"series": series(metric, t), "values": f"{values[t['pod'] if t['pod'] in values else '*']:g}x{MINUTES}"}
            for t in targets if t["pod"] in values or "*" in values]


def _pods(s: Served, burst_pods: int) -> dict[str, int]:
    return {**s.deployments, s.burst: burst_pods}


def _baseline_replicas(s: Served) -> int:
    return sum(n for name, n in s.deployments.items() if name != s.burst)


def waiting(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    """Waiting requests beyond what the baseline absorbs at the per-replica target; the
    AverageValue target then asks for ceil(value / threshold) burst replicas."""
    target = float(trigger["metadata"]["threshold"])
    own, foreign = s.targets(_pods(s, 1)), s.foreign()
    absorbed = _baseline_replicas(s) * target
    out = []
    for total in sorted({14.0, absorbed, absorbed + 2 * target - 1}):
        # The backlog spread over the pods, the remainder on the first.
        each, first = divmod(total, len(own))
        values = {t["pod"]: each for t in own} | {own[0]["pod"]: each + first}
        noise = _gauge(WAITING, {"*": 50}, foreign)
        expected = max(0.0, total - absorbed)
        out.append(Situation(f"{total:g} waiting on {len(own)} pods ({_baseline_replicas(s)} baseline): "
                             f"{math.ceil(expected / target)} burst replicas wanted",
                             _gauge(WAITING, values, own) + noise, expected))
    return out


def kv_cache(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    own, foreign = s.targets(_pods(s, 2)), s.foreign()
    hot = pod_name(s.burst, 1)
    return [Situation("the fullest of our replicas counts, not another service's",
                      _gauge(KV_CACHE, {"*": 0.5, hot: 0.875}, own)
                      + _gauge(KV_CACHE, {"*": 0.99}, foreign), 0.875)]


def ttft_p95(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    own, foreign = s.targets(_pods(s, 1)), s.foreign()
    # Every first token between 1 s and 2.5 s: p95 interpolates to 1 + 1.5 x 0.95 in that bucket.
    hist = [x for t in own for x in histogram_series(TTFT_BUCKET, t, 2.5, 60, MINUTES)]
    slow = [x for t in foreign for x in histogram_series(TTFT_BUCKET, t, 160.0, 60, MINUTES)]
    return [Situation("p95 of our first tokens, other services' slow ones aside", hist + slow, 2.425)]


def keep_alive(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    own, foreign = s.targets(_pods(s, 2)), s.foreign()
    burst = {pod_name(s.burst, 0): 7, pod_name(s.burst, 1): 9}
    return [Situation("requests running on burst pods only (baseline pods busy too)",
                      _gauge(RUNNING, {"*": 40, **burst}, own)
                      + _gauge(RUNNING, {"*": 100}, foreign), 16)]


SITUATIONS = {"waiting": waiting, "kv-cache": kv_cache, "ttft-p95": ttft_p95, "keep-alive": keep_alive}
# With no vLLM series at all (no replica scraped yet): the guard, or nothing (KEDA reads 0).
ABSENT = {"waiting": None, "kv-cache": 0.0, "ttft-p95": None, "keep-alive": 0.0}


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
            tests.append({"name": f"{s.config.name} {trigger['name']}: {case.name}", "interval": "1m",
                          "input_series": case.input_series,
                          "promql_expr_test": [{"expr": query, "eval_time": EVAL, "exp_samples": exp}]})
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
