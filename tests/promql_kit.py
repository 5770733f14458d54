"""PromQL found in synth output, the series our scrape configuration gives Prometheus, and
`promtool`, for tests that prove the queries on a real Prometheus engine.

Everything here is read from the synthesized manifests and Helm values (never from the render
functions that wrote them), so a query and the objects that feed it are checked against each
other: a misspelled metric, a selector on a label the ServiceMonitor does not produce, or a
ServiceMonitor that stops producing it, all show up as a wrong value.

`promtool` is Debian's `prometheus` package (2.42 on bookworm) while the cluster runs
Prometheus 3.x: the expressions we ship must stay in the syntax both understand, which is what
running them through 2.42 enforces. Two 3.x changes touch evaluation, not syntax: range
selectors are left-open (a `[2m]` window holds one sample less at its start), and `.` in
regular expressions also matches a newline. The synthetic series below are straight lines with
regular samples and plain label values, so neither changes the results the tests expect.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import ModelServiceConfig
from tests.conftest import load

REQUIRE_PROMTOOL = "REQUIRE_PROMTOOL"
PROMTOOL_HINT = ("promtool not found on PATH: install Debian's prometheus package "
                 "(apt-get install --no-install-recommends prometheus), or put the promtool of a "
                 "Prometheus release (2.42 or later) on PATH")


@pytest.fixture(scope="session")
def promtool() -> str:
    """The promtool binary. Skips when it is absent, unless REQUIRE_PROMTOOL=1 (set by .ci/run):
    then its absence is a failure, so CI never passes without running these tests."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get(REQUIRE_PROMTOOL) == "1":
            pytest.fail(f"{PROMTOOL_HINT}; {REQUIRE_PROMTOOL}=1 forbids skipping the PromQL tests")
        pytest.skip(PROMTOOL_HINT)
    return path


class _Plain(yaml.SafeDumper):
    """No YAML anchors: the files stay readable when a test fails."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def run_promtool_tests(promtool: str, workdir: Path, groups: list[dict[str, Any]],
                       tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """`promtool test rules` on a rules file of `groups` and a test file of `tests`."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules.yaml").write_text(yaml.dump({"groups": groups}, Dumper=_Plain, sort_keys=False))
    (workdir / "test.yaml").write_text(yaml.dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}, Dumper=_Plain, sort_keys=False))
    return subprocess.run([promtool, "test", "rules", "test.yaml"], cwd=workdir, capture_output=True,
                          text=True, timeout=120)


# --------------------------------------------------------------------------- synth output


@dataclass(frozen=True)
class Build:
    """One synthesized stack: its Kubernetes objects and Helm releases."""

    objects: tuple[dict[str, Any], ...]
    releases: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, directory: Path) -> Build:
        objects = tuple(yaml.safe_load(p.read_text()) for p in sorted((directory / "manifests").glob("*.yaml")))
        releases = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((directory / "helm").glob("*.yaml"))}
        return cls(objects, releases)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        return next((o for o in self.of_kind(kind)
                     if o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace), None)


@dataclass(frozen=True)
class Expression:
    where: str  # the file and the place in it, for messages
    expr: str


# Grafana's own functions in a variable query; the argument is PromQL.
_LABEL_VALUES = re.compile(r"^label_values\((?P<expr>.+),\s*\w+\)$")
_QUERY_RESULT = re.compile(r"^query_result\((?P<expr>.+)\)$")
# Grafana's interval macros stand for a duration.
_GRAFANA_DURATIONS = re.compile(r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}")
# A string that names a metric of ours is PromQL (or holds some); each must be collected.
METRIC_HINT = re.compile(r"vllm:|DCGM_FI_|kube_[a-z]")


def adapter_query(metrics_query: str, series: str, label_matchers: str, group_by: str) -> str:
    """A Prometheus Adapter metricsQuery as the adapter sends it (its Go template filled in)."""
    return (metrics_query.replace("<<.Series>>", series).replace("<<.LabelMatchers>>", label_matchers)
            .replace("<<.GroupBy>>", group_by))


def series_name(series_query: str) -> str:
    return re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", series_query).group(0)


def _dashboard_expressions(where: str, dashboard: dict[str, Any]) -> Iterator[Expression]:
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield Expression(f"{where} panel {panel.get('title')!r} {target.get('refId')}",
                                 _GRAFANA_DURATIONS.sub("5m", target["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var["query"] if isinstance(var["query"], str) else var["query"].get("query", "")
        m = _LABEL_VALUES.match(query) or _QUERY_RESULT.match(query)
        assert m, f"{where} variable {var['name']}: unrecognised Grafana query {query!r}"
        yield Expression(f"{where} variable {var['name']}", m.group("expr"))


def expressions(directory: Path) -> tuple[list[Expression], set[str]]:
    """Every PromQL expression in a synthesized stack, and the raw strings they came from."""
    build = Build.read(directory)
    found: list[Expression] = []
    raw: set[str] = set()

    def add(where: str, expr: str) -> None:
        found.append(Expression(where, expr))
        raw.add(expr)

    for obj in build.objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        where = f"{kind}/{name}"
        if kind in ("ScaledObject", "ScaledJob"):
            for t in obj["spec"].get("triggers", []):
                if t["type"] == "prometheus":
                    add(f"{where} trigger {t.get('name')}", t["metadata"]["query"])
        elif kind == "PrometheusRule":
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    add(f"{where} {rule.get('alert') or rule.get('record')}", rule["expr"])
        elif kind == "ConfigMap":
            for key, text in (obj.get("data") or {}).items():
                if key.endswith(".json") and METRIC_HINT.search(text):
                    raw.add(text)
                    found.extend(_dashboard_expressions(f"{where} {key}", json.loads(text)))
    for release, doc in build.releases.items():
        rules = doc["values"].get("rules", {}) if release == "prometheus-adapter" else {}
        for section in ("custom", "external", "resource"):
            for i, rule in enumerate(rules.get(section) or []):
                where = f"helm/{release} rules.{section}[{i}]"
                add(f"{where} seriesQuery", rule["seriesQuery"])
                raw.add(rule["metricsQuery"])
                # A regex over metric names, not PromQL; the adapter tests check what it selects.
                raw.add(rule.get("name", {}).get("matches", ""))
                # The adapter fills the template per request; these are the values of a pods query.
                found.append(Expression(f"{where} metricsQuery", adapter_query(
                    rule["metricsQuery"], series_name(rule["seriesQuery"]),
                    'namespace="inference",pod=~"a-1|a-2"', "pod")))
        for path, value in _leaves(doc["values"], f"helm/{release}"):
            if path.endswith(".expr"):
                add(path, value)
    return found, raw


def _leaves(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def metric_strings(directory: Path) -> list[tuple[str, str]]:
    """Every string in the manifests and Helm values that names one of our metrics."""
    build = Build.read(directory)
    out = []
    for obj in build.objects:
        out += [(p, s) for p, s in _leaves(obj, f"{obj['kind']}/{obj['metadata']['name']}") if METRIC_HINT.search(s)]
    for release, doc in build.releases.items():
        out += [(p, s) for p, s in _leaves(doc["values"], f"helm/{release}") if METRIC_HINT.search(s)]
    return out


# --------------------------------------------------------------------------- scraped series


def _sanitize(label: str) -> str:
    # prometheus-operator turns a pod label key into a Prometheus label name this way.
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _served_model_name(container: dict[str, Any]) -> str:
    args = list(container.get("args", []))
    if "--served-model-name" in args:
        return args[args.index("--served-model-name") + 1]
    return args[0]


def pod_name(deployment: str, i: int) -> str:
    """A pod of a Deployment as Kubernetes names it: <deployment>-<template hash>-<5 chars>."""
    return f"{deployment}-6f9c8d7b5c-q{i:04d}"


def vllm_targets(build: Build, service: str, namespace: str, pods: dict[str, int]) -> list[dict[str, str]]:
    """The labels Prometheus puts on every vLLM series scraped from each pod: the target labels
    the ServiceMonitor selecting the Service produces (prometheus-operator: namespace, service,
    pod, container, endpoint, job, instance, podTargetLabels) and vLLM's own (model_name,
    engine; vllm/v1/metrics/loggers.py). `pods` is Deployment name -> number of ready pods."""
    svc = build.get("Service", service, namespace)
    assert svc is not None, f"no Service {namespace}/{service}"
    monitors = [m for m in build.of_kind("ServiceMonitor")
                if namespace in m["spec"]["namespaceSelector"]["matchNames"]
                and m["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()]
    assert len(monitors) == 1, f"Service {service}: {len(monitors)} ServiceMonitors select it"
    spec = monitors[0]["spec"]
    targets = []
    for k, (deployment, count) in enumerate(pods.items()):
        dep = build.get("Deployment", deployment, namespace)
        assert dep is not None, f"no Deployment {namespace}/{deployment}"
        template = dep["spec"]["template"]
        pod_labels = template["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pod_labels.items(), f"Service {service} does not select {deployment}"
        for endpoint in spec["endpoints"]:
            port = endpoint["port"]
            container = next(c for c in template["spec"]["containers"]
                             if any(p.get("name") == port for p in c.get("ports", [])))
            number = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
            for i in range(count):
                labels = {
                    "namespace": namespace, "service": service, "pod": pod_name(deployment, i),
                    "container": container["name"], "endpoint": port,
                    "job": svc["metadata"]["labels"].get(spec["jobLabel"], service) if spec.get("jobLabel") else service,
                    "instance": f"10.0.{k}.{i + 10}:{number}",
                }
                labels |= {_sanitize(key): pod_labels[key] for key in spec.get("podTargetLabels", []) if key in pod_labels}
                labels |= {"model_name": _served_model_name(container), "engine": "0"}
                # The endpoint's relabelings run after the operator's own (replace with a fixed value only).
                for r in endpoint.get("relabelings", []):
                    assert r["action"] == "replace" and "sourceLabels" not in r, r
                    labels[r["targetLabel"]] = r["replacement"]
                targets.append(labels)
    return targets


def elsewhere(targets: list[dict[str, str]], **changes: str) -> list[dict[str, str]]:
    """The same pods seen with other labels: another namespace, another Service..."""
    return [{**t, **changes} for t in targets]


# kube-state-metrics, scraped by kube-prometheus-stack with honorLabels: its namespace and pod
# labels are the object's (docs/metrics/workload/pod-metrics.md, horizontalpodautoscaler-metrics.md).
KSM_TARGET = {"job": "kube-state-metrics", "service": "kps-kube-state-metrics", "endpoint": "http",
              "container": "kube-state-metrics", "instance": "10.0.9.9:8080"}
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def series(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


def hpa_name(build: Build, scaled_object: dict[str, Any]) -> str:
    """The HPA KEDA creates for a ScaledObject (keda-hpa-<name> unless the object names it)."""
    cfg = scaled_object["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
    return cfg.get("name") or f"keda-hpa-{scaled_object['metadata']['name']}"


# The series vLLM exports, spelled as vLLM spells them (vllm/v1/metrics/loggers.py, 0.12+), not
# taken from platform_facts: a misspelling there must fail here, not feed both sides.
WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_CACHE = "vllm:kv_cache_usage_perc"
TTFT_BUCKET = "vllm:time_to_first_token_seconds_bucket"

# vLLM's TTFT histogram buckets (vllm/v1/metrics/loggers.py, request latency buckets).
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)


def histogram_series(metric: str, labels: dict[str, str], upper: float, per_minute: int,
                     minutes: int) -> list[dict[str, str]]:
    """promtool input series of a histogram whose every observation falls in the bucket whose
    upper bound is `upper`: its cumulative buckets from `upper` on grow `per_minute` a minute."""
    out = []
    for le in (*TTFT_BUCKETS, float("inf")):
        step = per_minute if le >= upper else 0
        # prometheus_client writes le as Python's repr of the float ("1.0", "2560.0", "+Inf").
        le_label = "+Inf" if le == float("inf") else repr(le)
        out.append({"series": series(metric, {**labels, "le": le_label}), "values": f"0+{step}x{minutes}"})
    return out


# --------------------------------------------------------------------------- model services

OTHER = "other-model"  # another ModelService's Service in the same namespace
SHADOW = "shadow"  # another namespace with a Service of the same name (e.g. a second install)


@dataclass(frozen=True)
class Situation:
    """One promtool trigger case: these series, the trigger query's one sample (None: no sample).
    ``interval`` spaces the samples, ``eval_time`` is when the query is evaluated (default: the
    caller's); ``decimals`` rounds the query's result (promtool compares floats exactly, and a
    regression leaves rounding in the last bits)."""

    name: str
    input_series: list[dict[str, str]]
    expected: float | None
    interval: str = "1m"
    eval_time: str | None = None
    decimals: int | None = None


@dataclass(frozen=True)
class Case:
    """One promtool alert case: these series for ``eval_minutes``, the alert firing or quiet."""

    name: str
    fires: bool
    input_series: list[dict[str, str]]
    eval_minutes: int


@dataclass(frozen=True)
class Served:
    """One ModelService as the synth output shows it."""

    config: ModelServiceConfig
    build: Build
    namespace: str
    deployments: dict[str, int]  # Deployment name -> pods it runs in the scenarios (role order)
    burst: str
    hpa: str
    max_burst: int
    rules: dict[str, dict[str, Any]]  # alert suffix -> rendered rule
    scrape_service: str = ""  # the Service the vLLM ServiceMonitor scrapes through (default: the service's name)

    def targets(self, deployments: dict[str, int] | None = None) -> list[dict[str, str]]:
        return vllm_targets(self.build, self.scrape_service or self.config.name, self.namespace,
                            deployments or self.deployments)

    def foreign(self) -> list[dict[str, str]]:
        """The same pods as another namespace, and as another Service in ours, would show them."""
        own = self.targets()
        return (elsewhere(own, namespace=SHADOW)
                + [{**t, "service": OTHER, "job": OTHER, "pod": t["pod"].replace(self.config.name, OTHER, 1)}
                   for t in own])


def served(stack: str, directory: Path) -> list[Served]:
    build, config = Build.read(directory), load(stack)
    out = []
    for svc in config.model_services:
        # The Service over the vLLM pods: the service's own name, or in router mode (where that
        # name selects the router) the headless <name>-pods Service.
        service = next(o for o in build.of_kind("Service") if o["metadata"]["name"] in (svc.name, f"{svc.name}-pods")
                       and o["spec"]["selector"].get("app.kubernetes.io/name") == "vllm")
        namespace, selector = service["metadata"]["namespace"], service["spec"]["selector"]
        replicas = {d["metadata"]["name"]: d["spec"].get("replicas", 1) for d in build.of_kind("Deployment")
                    if d["metadata"]["namespace"] == namespace
                    and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()}
        so = next((o for o in build.of_kind("ScaledObject") if o["metadata"]["namespace"] == namespace
                   and o["spec"]["scaleTargetRef"]["name"] in replicas), None)
        if so is not None:
            burst, hpa, max_burst = so["spec"]["scaleTargetRef"]["name"], hpa_name(build, so), so["spec"]["maxReplicaCount"]
        else:
            h = next(o for o in build.of_kind("HorizontalPodAutoscaler") if o["metadata"]["namespace"] == namespace
                     and o["spec"]["scaleTargetRef"]["name"] in replicas)
            burst, hpa, max_burst = h["spec"]["scaleTargetRef"]["name"], h["metadata"]["name"], h["spec"]["maxReplicas"]
        # The scenarios run the baseline (and canary) pods the Deployments ask for, and one burst pod.
        pods = {name: 1 if name == burst else n for name, n in replicas.items() if n or name == burst}
        rules = {}
        for pr in build.of_kind("PrometheusRule"):
            for group in pr["spec"]["groups"]:
                for rule in group["rules"]:
                    if "alert" in rule and rule["labels"].get("service") == svc.name:
                        rules[_suffix(rule["alert"])] = rule
        out.append(Served(svc, build, namespace, pods, burst, hpa, max_burst, rules, service["metadata"]["name"]))
    return out


SUFFIXES = ("QueueBacklog", "TTFTAboveSLO", "KVCacheNearFull", "GPUPodsPending", "PinnedAtMax",
            "RouterDown", "RouterSaturated", "RouterShedding")


def _suffix(alert: str) -> str:
    return next((s for s in SUFFIXES if alert.endswith(s)), alert)


