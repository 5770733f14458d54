"""Rules that need several resources at once (CrossGuard stack validation)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import ENVIRONMENT, as_list, stack_rule
from .workloads import (
    POD_SPEC_PATHS,
    containers,
    dig,
    gpu_containers,
    gpu_quantity,
    pod_spec,
    selector_matches,
    spreads_across_zones,
)

SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
BASELINE_ANNOTATION = "platform.gpu/baseline-deployment"
KIND_OF = {t: t.rsplit(":", 1)[1] for t in POD_SPEC_PATHS}


@dataclass
class Workload:
    urn: str
    kind: str
    namespace: str
    name: str
    props: Mapping[str, Any]
    spec: Mapping[str, Any]

    @property
    def gpus_per_pod(self) -> int:
        return sum(int(float(gpu_quantity(c, "limits") or 0)) for c in gpu_containers(self.spec))

    @property
    def pod_labels(self) -> Mapping[str, Any]:
        meta = dig(self.props, "spec", "template", "metadata") or dig(self.props, "spec", "jobTargetRef", "template", "metadata")
        return (meta or {}).get("labels") or {}


def _ns(props: Mapping[str, Any]) -> str:
    return str(dig(props, "metadata", "namespace") or "default")


def _name(props: Mapping[str, Any]) -> str:
    return str(dig(props, "metadata", "name") or "")


def workloads(resources: Sequence[Any]) -> list[Workload]:
    out = []
    for r in resources:
        spec = pod_spec(r.resource_type, r.props)
        if spec is not None:
            out.append(Workload(r.urn, KIND_OF[r.resource_type], _ns(r.props), _name(r.props), r.props, spec))
    return out


def _by_type(resources: Sequence[Any], rtype: str) -> list[Any]:
    return [r for r in resources if r.resource_type == rtype]


def _target(scaler: Any) -> tuple[str, str, str]:
    ref = dig(scaler.props, "spec", "scaleTargetRef") or {}
    return _ns(scaler.props), str(ref.get("kind") or "Deployment"), str(ref.get("name") or "")


def _index(ws: list[Workload]) -> dict[tuple[str, str, str], Workload]:
    return {(w.namespace, w.kind, w.name): w for w in ws}


# --------------------------------------------------------------------------- scaling


def _cpu_memory_only(scaler: Any) -> bool:
    if scaler.resource_type == HPA:
        metrics = dig(scaler.props, "spec", "metrics") or ()
        return bool(metrics) and all(m.get("type") in ("Resource", "ContainerResource") for m in metrics)
    triggers = dig(scaler.props, "spec", "triggers") or ()
    return bool(triggers) and all(t.get("type") in ("cpu", "memory") for t in triggers)


def no_cpu_only(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    index = _index(workloads(resources))
    for s in _by_type(resources, HPA) + _by_type(resources, SCALED_OBJECT):
        w = index.get(_target(s))
        if w and w.gpus_per_pod and _cpu_memory_only(s):
            yield s.urn, (f"{_name(s.props)} scales GPU workload {w.name} on CPU/memory only; GPU servers are "
                          "bound by queue, KV cache and latency, not CPU.")


def _stabilization(s: Any) -> int:
    path = ("spec", "behavior") if s.resource_type == HPA else ("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior")
    value = dig(s.props, *path, "scaleDown", "stabilizationWindowSeconds")
    return 300 if value is None else int(value)  # the HPA default


def scale_down_stabilization(resources: Sequence[Any], config: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    floor = int(config["minStabilizationSeconds"][config["environment"]])
    index = _index(workloads(resources))
    for s in _by_type(resources, HPA) + _by_type(resources, SCALED_OBJECT):
        w = index.get(_target(s))
        if not (w and w.gpus_per_pod):
            continue
        if _stabilization(s) < floor:
            yield s.urn, (f"{_name(s.props)}: scale-down stabilization {_stabilization(s)}s < {floor}s for "
                          f"{config['environment']}; GPU replicas flap and re-pay minutes of cold start.")
        spec = s.props.get("spec") or {}
        if s.resource_type == SCALED_OBJECT and (spec.get("idleReplicaCount") == 0 or not spec.get("minReplicaCount")):
            if int(spec.get("cooldownPeriod", 300)) < floor:
                yield s.urn, f"{_name(s.props)}: cooldownPeriod {spec.get('cooldownPeriod')}s < {floor}s before scaling to zero."


def _floor(s: Any, index: dict[tuple[str, str, str], Workload]) -> int:
    spec = s.props.get("spec") or {}
    own = 0 if spec.get("idleReplicaCount") == 0 else int(spec.get("minReplicaCount", 0))
    baseline = dig(s.props, "metadata", "annotations", BASELINE_ANNOTATION)
    base = index.get((_ns(s.props), "Deployment", str(baseline))) if baseline else None
    return own + (int(dig(base.props, "spec", "replicas") or 1) if base else 0)


def _has_keep_alive(s: Any) -> bool:
    return any(t.get("type") == "prometheus" and "vllm:num_requests_running" in str(dig(t, "metadata", "query"))
               for t in dig(s.props, "spec", "triggers") or ())


def scale_to_zero(resources: Sequence[Any], config: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    index = _index(workloads(resources))
    for s in _by_type(resources, SCALED_OBJECT):
        w = index.get(_target(s))
        if not (w and w.gpus_per_pod) or _floor(s, index) > 0:
            continue
        if config["environment"] == "prod":
            yield s.urn, (f"{_name(s.props)} lets GPU workload {w.name} scale to zero in prod (no baseline "
                          f"Deployment named by {BASELINE_ANNOTATION}, minReplicaCount 0 or idleReplicaCount 0).")
        elif not _has_keep_alive(s):
            yield s.urn, (f"{_name(s.props)} scales {w.name} to zero without a keep-alive trigger on "
                          "vllm:num_requests_running; in-flight requests die at cooldown.")


def one_autoscaler(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    seen: dict[tuple[str, str, str], str] = {}
    for s in _by_type(resources, SCALED_OBJECT) + _by_type(resources, HPA):
        key = _target(s)
        if key in seen:
            yield s.urn, f"{_name(s.props)} and {seen[key]} both scale {key[1]} {key[0]}/{key[2]}; they fight."
        else:
            seen[key] = _name(s.props)


def target_exists(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    index = _index(workloads(resources))
    for s in _by_type(resources, SCALED_OBJECT) + _by_type(resources, HPA):
        ns, kind, name = _target(s)
        if (ns, kind, name) not in index:
            yield s.urn, f"{_name(s.props)} targets {kind} {ns}/{name}, which this stack does not create."


# --------------------------------------------------------------------------- availability


def _max_replicas(w: Workload, scalers: list[Any]) -> int:
    fixed = int(dig(w.props, "spec", "replicas") or (0 if scalers else 1))
    for s in scalers:
        spec = s.props.get("spec") or {}
        fixed = max(fixed, int(spec.get("maxReplicaCount", 100) if s.resource_type == SCALED_OBJECT else spec.get("maxReplicas", 1)))
    return fixed


def _scalers_of(resources: Sequence[Any]) -> dict[tuple[str, str, str], list[Any]]:
    out: dict[tuple[str, str, str], list[Any]] = {}
    for s in _by_type(resources, SCALED_OBJECT) + _by_type(resources, HPA):
        out.setdefault(_target(s), []).append(s)
    return out


def prod_pdb(resources: Sequence[Any], config: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    if config["environment"] != "prod":
        return
    scalers = _scalers_of(resources)
    pdbs = _by_type(resources, PDB)
    for w in workloads(resources):
        if w.kind != "Deployment" or not w.gpus_per_pod:
            continue
        replicas = _max_replicas(w, scalers.get((w.namespace, w.kind, w.name), []))
        if replicas < 2:
            continue
        mine = [p for p in pdbs if _ns(p.props) == w.namespace and selector_matches(dig(p.props, "spec", "selector"), w.pod_labels)]
        if not mine:
            yield w.urn, f"{w.name}: {replicas} GPU replicas in prod without a PodDisruptionBudget."
        for p in mine:
            spec = p.props.get("spec") or {}
            fixed = dig(w.props, "spec", "replicas")
            if str(spec.get("maxUnavailable", "")) in ("0", "0%") or (
                    spec.get("minAvailable") is not None and fixed is not None and str(spec["minAvailable"]) in (str(fixed), "100%")):
                yield p.urn, f"{_name(p.props)} allows no disruption of {w.name}: node drains deadlock."


def prod_zone_spread(resources: Sequence[Any], config: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    if config["environment"] != "prod":
        return
    scalers = _scalers_of(resources)
    for w in workloads(resources):
        if w.kind == "Deployment" and w.gpus_per_pod and _max_replicas(w, scalers.get((w.namespace, w.kind, w.name), [])) >= 2:
            if not spreads_across_zones(w.spec):
                yield w.urn, f"{w.name}: replicas are not spread across zones; one zone's outage takes them all."


# --------------------------------------------------------------------------- observability and AWS


def _is_vllm(w: Workload) -> bool:
    return any("vllm" in str(c.get("image", "")) or "vllm" in " ".join(map(str, c.get("command") or ()))
               for c in containers(w.spec))


def vllm_scraped(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    services = _by_type(resources, "kubernetes:core/v1:Service")
    monitors = _by_type(resources, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    pod_monitors = _by_type(resources, "kubernetes:monitoring.coreos.com/v1:PodMonitor")

    def watched(ns: str, labels: Mapping[str, Any], monitor_list: list[Any]) -> bool:
        for m in monitor_list:
            names = dig(m.props, "spec", "namespaceSelector", "matchNames")
            any_ns = dig(m.props, "spec", "namespaceSelector", "any")
            in_ns = any_ns or (ns in (names or ()) if names else _ns(m.props) == ns)
            if in_ns and selector_matches(dig(m.props, "spec", "selector"), labels):
                return True
        return False

    for w in workloads(resources):
        if w.kind not in ("Deployment", "StatefulSet") or not _is_vllm(w):
            continue
        via_service = any(_ns(s.props) == w.namespace and dig(s.props, "spec", "selector")
                          and selector_matches({"matchLabels": dig(s.props, "spec", "selector")}, w.pod_labels)
                          and watched(w.namespace, dig(s.props, "metadata", "labels") or {}, monitors) for s in services)
        if not via_service and not watched(w.namespace, w.pod_labels, pod_monitors):
            yield w.urn, f"{w.name}: no ServiceMonitor or PodMonitor scrapes this vLLM workload; its autoscaler is blind."


def queue_tls_only(resources: Sequence[Any], _: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    policies = {}
    for p in _by_type(resources, "aws:sqs/queuePolicy:QueuePolicy"):
        raw = p.props.get("policy")
        policies[p.props.get("queueUrl")] = json.loads(raw) if isinstance(raw, str) else raw
    for q in _by_type(resources, "aws:sqs/queue:Queue"):
        doc = policies.get(q.props.get("url") or q.props.get("id"))
        deny = any(st.get("Effect") == "Deny" and dig(st, "Condition", "Bool", "aws:SecureTransport") in ("false", False)
                   for st in as_list((doc or {}).get("Statement")))
        if not deny:
            yield q.urn, f"queue {q.props.get('name', '?')} accepts requests without TLS (no DenyHTTP statement)."


STABILIZATION = {"minStabilizationSeconds": {
    "type": "object", "default": {"dev": 60, "staging": 300, "prod": 300},
    "description": "Smallest scale-down stabilization (and cooldown to zero) per environment, seconds.",
    "properties": {e: {"type": "integer", "minimum": 0} for e in ("dev", "staging", "prod")}}}

RULES = [
    stack_rule("scaling-not-cpu-only-for-gpu", "Scaling", "No CPU/memory-only HPA or ScaledObject on a GPU workload.",
        "GPU servers saturate on queue depth, KV cache and latency long before CPU moves.",
        "scale on vllm:num_requests_waiting, vllm:kv_cache_usage_perc or TTFT.", no_cpu_only),
    stack_rule("scaling-gpu-scale-down-stabilization", "Scaling",
        "GPU autoscalers wait before scaling down (stabilization, and cooldown before zero).",
        "A replica removed and re-added pays minutes of cold start; flapping wastes GPUs and misses SLOs.",
        "set behavior.scaleDown.stabilizationWindowSeconds (and cooldownPeriod) at or above the environment's floor.",
        scale_down_stabilization, {**ENVIRONMENT, **STABILIZATION}),
    stack_rule("scaling-scale-to-zero", "Scaling",
        "No scale to zero of GPU serving in prod; elsewhere only with a keep-alive trigger.",
        "Zero replicas means a cold start of minutes for the next request; in-flight requests die without keep-alive.",
        "keep a baseline Deployment (annotated platform.gpu/baseline-deployment) in prod, or add a trigger on "
        "vllm:num_requests_running with activationThreshold 0.", scale_to_zero, dict(ENVIRONMENT)),
    stack_rule("scaling-one-autoscaler-per-workload", "Scaling", "An HPA and a ScaledObject never target the same workload.",
        "Two controllers writing spec.replicas fight; KEDA's webhook rejects it at apply time.",
        "keep one autoscaler per workload.", one_autoscaler),
    stack_rule("scaling-target-exists", "Scaling", "Every ScaledObject and HPA targets a workload the stack creates.",
        "A typo in scaleTargetRef leaves an autoscaler that never acts.",
        "point scaleTargetRef at the Deployment's metadata.name.", target_exists),
    stack_rule("availability-prod-gpu-pdb", "Availability",
        "In prod, GPU Deployments with 2+ replicas have a PDB that allows at least one disruption.",
        "Without a PDB, a drain takes every replica at once; with minAvailable = replicas, drains deadlock.",
        "add a PodDisruptionBudget with maxUnavailable: 1.", prod_pdb, dict(ENVIRONMENT)),
    stack_rule("availability-prod-zone-spread", "Availability", "In prod, GPU replicas spread across zones.",
        "A zonal outage or a zone without GPU capacity should not take every replica.",
        "add a topologySpreadConstraint on topology.kubernetes.io/zone.", prod_zone_spread, dict(ENVIRONMENT)),
    stack_rule("vllm-workload-scraped", "Scaling", "Every vLLM workload is scraped by a ServiceMonitor or PodMonitor.",
        "Autoscaling and alerts read vLLM's metrics through Prometheus; an unscraped workload scales on nothing.",
        "add a ServiceMonitor selecting the workload's Service.", vllm_scraped),
    stack_rule("sqs-deny-insecure-transport", "AWS", "Every SQS queue's policy denies requests without TLS.",
        "The interruption queue carries instance events; plain-HTTP access should be refused outright.",
        "add a Deny statement on aws:SecureTransport false to the queue policy.", queue_tls_only),
]
