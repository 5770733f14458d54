"""Every PromQL expression in every stack's synth output parses, names only metrics that an
exporter of ours emits, and (with promtool) is accepted by a real Prometheus engine.

Expressions are collected from the synthesized files, not from the render functions, so a new
trigger, alert, panel or adapter rule is covered without editing this file.
"""

from __future__ import annotations

import re
import subprocess

import promql_parser
import pytest
import yaml

from platform_facts.dcgm import METRICS as DCGM_METRICS
from platform_facts.karpenter import METRICS as KARPENTER_METRICS
from platform_facts.keda import METRICS as KEDA_METRICS
from platform_facts.llmd import METRICS as LLMD_METRICS
from platform_facts.vllm import METRIC_FAMILIES, REMOVED_METRICS
from tests.conftest import STACKS
from tests.promql_kit import Build, expressions, metric_strings, run_promtool_tests

# kube-state-metrics series our alerts and triggers read (docs/metrics/workload/pod-metrics.md,
# docs/metrics/workload/horizontalpodautoscaler-metrics.md, docs/metrics/workload/deployment-metrics.md).
KSM_METRICS = {"kube_pod_status_phase", "kube_horizontalpodautoscaler_status_current_replicas",
               "kube_deployment_spec_replicas",
               # docs/metrics/cluster/node-metrics.md
               "kube_node_status_allocatable"}
# Series Prometheus writes for every scrape target (docs: concepts/jobs_instances, "up").
SCRAPE_METRICS = {"up"}
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def _metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
            assert name, f"{expr}: a selector without a metric name"
            names.add(name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _emitted(name: str) -> bool:
    family = HISTOGRAM_SERIES.sub("", name)
    return (name in METRIC_FAMILIES or family in METRIC_FAMILIES or name in DCGM_METRICS or name in KSM_METRICS
            or name in KARPENTER_METRICS or name in KEDA_METRICS or name in LLMD_METRICS or name in SCRAPE_METRICS)


@pytest.fixture(scope="module")
def collected(synthesized, example_build):
    builds = {**synthesized, "example-extra-model": example_build}
    return {stack: expressions(d) for stack, d in builds.items()}


def test_every_expression_parses(collected):
    failures, count = [], 0
    for stack, (found, _) in collected.items():
        for e in found:
            count += 1
            try:
                promql_parser.parse(e.expr)
            except ValueError as err:
                failures.append(f"{stack}: {e.where}: {err}: {e.expr}")
    assert not failures, "\n".join(failures)
    print(f"\n{count} PromQL expressions parsed across {len(collected)} builds")


def test_each_kind_of_expression_is_collected(collected):
    """A collector that silently stops finding a kind of expression would pass vacuously."""
    found, _ = collected["prod"]
    kinds = {e.where.split()[0].split("/")[0] for e in found}
    assert {"ScaledObject", "PrometheusRule", "ConfigMap", "helm"} <= kinds, kinds
    assert any("metricsQuery" in e.where for e in found)
    assert not any("<<" in e.expr for e in found), "adapter templates must be filled in before parsing"


@pytest.mark.parametrize("stack", [*STACKS, "example-extra-model"])
def test_no_promql_escapes_collection(stack, synthesized, example_build, collected):
    """Every string in the output that names one of our metrics is an expression we checked."""
    directory = example_build if stack == "example-extra-model" else synthesized[stack]
    _, raw = collected[stack]
    missed = [f"{where}: {s[:120]}" for where, s in metric_strings(directory) if s not in raw]
    assert not missed, "PromQL not collected (teach tests/promql_kit.expressions about it):\n" + "\n".join(missed)


def test_expressions_name_only_emitted_metrics(collected):
    bad = []
    for stack, (found, _) in collected.items():
        for e in found:
            for name in _metric_names(e.expr):
                if name in REMOVED_METRICS or not _emitted(name):
                    bad.append(f"{stack}: {e.where}: {name}")
    assert not bad, "metrics no exporter of ours emits:\n" + "\n".join(bad)


def test_the_parser_rejects_what_prometheus_rejects():
    """The parser checks types, not just brackets: these are the mistakes it must catch."""
    for expr in ("rate(vllm:num_requests_waiting)",                       # rate of an instant vector
                 "histogram_quantile(0.95, vllm:time_to_first_token_seconds_bucket[5m])",
                 "sum(vllm:num_requests_waiting) by (pod",
                 "clamp_minimum(vllm:num_requests_waiting, 0)"):
        with pytest.raises(ValueError):
            promql_parser.parse(expr)


def test_prometheus_accepts_every_alert_rule(promtool, synthesized, tmp_path):
    """`promtool check rules` on each stack's PrometheusRules, as the operator would load them."""
    for stack, directory in synthesized.items():
        groups = [g for r in Build.read(directory).of_kind("PrometheusRule") for g in r["spec"]["groups"]]
        if not groups:
            continue
        path = tmp_path / f"{stack}.rules.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}))
        proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{stack}:\n{proc.stdout}{proc.stderr}"


def test_prometheus_evaluates_every_expression(promtool, collected, tmp_path):
    """Each expression runs on a real engine (over no data): the engine's parser and type checks
    are Prometheus's own, and any syntax 2.42 does not know fails here."""
    tests = []
    seen = set()
    for _, (found, _) in collected.items():
        for e in found:
            if e.expr in seen:
                continue
            seen.add(e.expr)
            # Over no data an expression returns nothing or its guard; wrapped, it returns one
            # known sample either way, so only an engine error can fail it.
            tests.append({"expr": f"(count({e.expr}) * 0 + 1) or vector(1)", "eval_time": "1m",
                          "exp_samples": [{"labels": "{}", "value": 1}]})
    proc = run_promtool_tests(promtool, tmp_path, [], [{"interval": "1m", "input_series": [],
                                                         "promql_expr_test": tests}])
    assert proc.returncode == 0, proc.stdout + proc.stderr
