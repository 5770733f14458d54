"""A rehearsal of `pulumi up`: from the recorded resources, in what order the engine creates
things, how long each step is expected to take, which awaits would time out, and the wall time
of a first deploy and of a rollout per service. Pure: recorded resources in, data out
(``rehearse``), and the data as Markdown (``markdown``); synth writes both.

The graph: an edge from every URN in a resource's ``depends_on``, from its parent (the SDK
registers a child only once its parent's URN is known, i.e. after a custom parent is
created) and from its provider. An input that is a resource reference the recording could
only name by type (``{"resource": "Cluster"}``) is linked when exactly one recorded resource
has that type name.

Durations are planning estimates, not measurements (``ESTIMATES`` below, one table, with
where each figure comes from). Deployments and StatefulSets are timed per pod batch: the
``platform.gpu/ready-within-seconds`` annotation when the workload declares it (its own
worst case), else, for GPU pods, the expected cold-start phases of
``platform_facts.coldstart`` (node launch + image pull + weights + engine init + readiness).
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping, Sequence
from typing import Any

from platform_facts import coldstart, models
from platform_facts import kubernetes as k8s_facts
from platform_facts.catalog import weights_gib

READY_WITHIN = "platform.gpu/ready-within-seconds"
SKIP_AWAIT = "pulumi.com/skipAwait"
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
WORKLOADS = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")

# Expected seconds from the start of a create to its end, by type. Planning estimates: the
# AWS figures are the typical times the AWS documentation and consoles quote (EKS control plane
# "about 10 minutes", managed node groups a few minutes to join, NAT gateways a couple of
# minutes to become available); the Kubernetes figures follow pulumi-kubernetes' awaits
# (facts 4: a Service settles its endpoints for 10 s; objects without await are one API call).
ESTIMATES: dict[str, tuple[float, str]] = {
    "eks:index:Cluster": (600.0, "EKS control plane (pulumi-eks component): ~10 min"),
    "aws:eks/cluster:Cluster": (600.0, "EKS control plane: ~10 min"),
    "eks:index:ManagedNodeGroup": (240.0, "managed node group: instances launch and join, ~4 min"),
    "aws:eks/nodeGroup:NodeGroup": (240.0, "managed node group: ~4 min"),
    "eks:index:Addon": (60.0, "EKS add-on: ~1 min"),
    "aws:eks/addon:Addon": (60.0, "EKS add-on: ~1 min"),
    "aws:ec2/natGateway:NatGateway": (120.0, "NAT gateway to available: ~2 min"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": (10.0, "Pod Identity association (+ propagation, facts 2)"),
    HELM_RELEASE: (120.0, "Helm release with --wait: controllers' pods ready, ~2 min"),
    "kubernetes:apps/v1:DaemonSet": (60.0, "DaemonSet rollout on existing nodes: ~1 min"),
    "kubernetes:batch/v1:Job": (60.0, "Job to completion: ~1 min"),
    "kubernetes:core/v1:Service": (10.0, "Service: endpoints settle 10 s (facts 4)"),
    "kubernetes:core/v1:PersistentVolumeClaim": (10.0, "PVC: Bound, or Pending under WaitForFirstConsumer"),
}
AWS_DEFAULT = (5.0, "other AWS resources: one API call, ~5 s")
KUBERNETES_DEFAULT = (2.0, "other Kubernetes objects: one API call, no await")
CPU_POD_SECONDS = 30.0  # a non-GPU pod: image pull and start, estimate

# pulumi-kubernetes await defaults (facts 4); Helm releases wait 300 s unless skipAwait.
AWAIT_DEFAULTS = {
    "kubernetes:apps/v1:Deployment": 600.0, "kubernetes:apps/v1:StatefulSet": 600.0, "kubernetes:apps/v1:DaemonSet": 600.0,
    "kubernetes:batch/v1:Job": 600.0, "kubernetes:core/v1:Pod": 600.0, "kubernetes:core/v1:Service": 600.0,
    "kubernetes:networking.k8s.io/v1:Ingress": 600.0, "kubernetes:core/v1:PersistentVolumeClaim": 300.0,
    "kubernetes:core/v1:PersistentVolume": 300.0, HELM_RELEASE: 300.0,
}

_DURATION = re.compile(r"([0-9.]+)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_MODEL_SIZE = re.compile(r"(?<![0-9.])([0-9]+(?:\.[0-9]+)?)[bB](?![a-zA-Z0-9])")


def _seconds(text: Any) -> float:
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(str(text or "")))


def _dig(obj: Any, *path: Any) -> Any:
    for key in path:
        if isinstance(key, int):
            obj = obj[key] if isinstance(obj, list) and key < len(obj) else None
        else:
            obj = obj.get(key) if isinstance(obj, Mapping) else None
        if obj is None:
            return None
    return obj


def _annotation(r: Mapping[str, Any], key: str) -> Any:
    return _dig(r, "inputs", "metadata", "annotations", key)


def _pod(r: Mapping[str, Any]) -> Mapping[str, Any]:
    return _dig(r, "inputs", "spec", "template", "spec") or {}


def _gpus(pod: Mapping[str, Any]) -> int:
    return sum(int(float(_dig(c, "resources", "limits", "nvidia.com/gpu") or 0)) for c in pod.get("containers") or ())


def _node_family(pod: Mapping[str, Any]) -> str | None:
    types = [v for t in _dig(pod, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                               "nodeSelectorTerms") or ()
             for e in t.get("matchExpressions") or () if e.get("key") == "node.kubernetes.io/instance-type"
             for v in e.get("values") or ()]
    selected = (pod.get("nodeSelector") or {}).get("node.kubernetes.io/instance-type")
    first = selected or (types[0] if types else None)
    return str(first).split(".", 1)[0] if first else None


def _parameters(pod: Mapping[str, Any]) -> float | None:
    """Parameters (billions) from a model name in the serving container's args ("...-70B-...")."""
    for c in pod.get("containers") or ():
        for word in [str(w) for w in (c.get("args") or ())]:
            m = _MODEL_SIZE.search(word.rsplit("/", 1)[-1])
            if m:
                return float(m.group(1))
    return None


def pod_ready_seconds(r: Mapping[str, Any]) -> tuple[float, str]:
    """Expected seconds for one batch of pods to become ready, and how it was estimated."""
    declared = _annotation(r, READY_WITHIN)
    if declared is not None:
        return float(declared), f"{READY_WITHIN} annotation"
    pod = _pod(r)
    if not _gpus(pod):
        return CPU_POD_SECONDS, "non-GPU pod estimate"
    family = _node_family(pod)
    node = coldstart.EXPECTED_NODE_READY_SECONDS.get(family or "", coldstart.EXPECTED_NODE_READY_DEFAULT_SECONDS)
    params = _parameters(pod)
    gib = weights_gib(params, "bfloat16") if params else 0.0  # bf16 assumed
    layers = models.llama_shaped(params or 8.0).layers
    pod_s = coldstart.expected_download_seconds(gib) + coldstart.expected_load_seconds(gib, layers)
    total = node + coldstart.EXPECTED_IMAGE_PULL_SECONDS + pod_s
    size = f"{gib:.0f} GiB weights from S3" if gib else "weights of unknown size"
    return round(total), f"cold start: node {node:g}s + image {coldstart.EXPECTED_IMAGE_PULL_SECONDS:g}s + {size} + engine init"


def rollout_steps(r: Mapping[str, Any], replicas: int) -> int:
    """Batches of a rolling update of recorded resource ``r`` (``platform_facts.kubernetes``)."""
    return k8s_facts.rollout_steps(r["type"].rsplit(":", 1)[-1], _dig(r, "inputs", "spec") or {}, replicas)


def _create_batches(r: Mapping[str, Any]) -> int:
    spec = _dig(r, "inputs", "spec") or {}
    replicas = int(spec.get("replicas", 1))
    if replicas <= 0:
        return 0
    return replicas if r["type"].endswith(":StatefulSet") and spec.get("podManagementPolicy") != "Parallel" else 1


def expected_seconds(r: Mapping[str, Any]) -> tuple[float, str]:
    """Expected duration of a resource's create, and where the figure comes from."""
    if not r.get("custom", True) and r["type"] not in ESTIMATES:
        return 0.0, "component: registration only"
    if r["type"].startswith("pulumi:providers:"):
        return 0.0, "provider"
    if r["type"] in WORKLOADS:
        batches = _create_batches(r)
        step, source = pod_ready_seconds(r)
        return batches * step, f"{batches} batch(es) x {step:g}s ({source})" if batches else "0 replicas: ready at once"
    if r["type"] in ESTIMATES:
        return ESTIMATES[r["type"]]
    return KUBERNETES_DEFAULT if r["type"].startswith("kubernetes:") else AWS_DEFAULT


def create_timeout(r: Mapping[str, Any], op: str = "create") -> tuple[float, str] | None:
    """The await timeout of a create (or update): customTimeouts, the annotation, the kind's default."""
    if r["type"] not in AWAIT_DEFAULTS:
        return None
    if str(_annotation(r, SKIP_AWAIT)).lower() == "true" or (r["type"] == HELM_RELEASE and _dig(r, "inputs", "skipAwait")):
        return None
    custom = _seconds(_dig(r, "options", "customTimeouts", op))
    if custom:
        return custom, "customTimeouts"
    if r["type"] == HELM_RELEASE and _dig(r, "inputs", "timeout"):
        return float(_dig(r, "inputs", "timeout")), "timeout input"
    if _annotation(r, TIMEOUT_ANNOTATION) is not None:
        return float(_annotation(r, TIMEOUT_ANNOTATION)), TIMEOUT_ANNOTATION
    return AWAIT_DEFAULTS[r["type"]], "default"


def _references(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        if set(value) == {"resource"} and isinstance(value["resource"], str) and not value["resource"].startswith("urn:"):
            return [value["resource"]]
        return [n for v in value.values() for n in _references(v)]
    if isinstance(value, list):
        return [n for v in value for n in _references(v)]
    return []


def edges(resources: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """URN -> the URNs it waits for (depends_on, parent, provider, resolvable references)."""
    urns = {r["urn"] for r in resources}
    by_type_name: dict[str, list[str]] = {}
    for r in resources:
        by_type_name.setdefault(r["type"].rsplit(":", 1)[-1], []).append(r["urn"])
    out: dict[str, list[str]] = {}
    for r in resources:
        before: set[str] = {str(u) for u in [*(r.get("depends_on") or ()), r.get("parent"), r.get("provider")] if u}
        for name in _references(r.get("inputs")):
            if len(by_type_name.get(name, ())) == 1:
                before.add(by_type_name[name][0])
        out[r["urn"]] = sorted(u for u in before if u in urns and u != r["urn"])
    return out


NODE_GROUPS = ("eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup")
GPU_ENABLERS = ("karpenter", "gpu-operator")  # Helm charts without which no GPU node serves a pod


def gates(resources: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """URN -> what its pods wait for at run time, though `pulumi up` does not order them: pods
    need a node. Helm releases and CPU workloads wait for the system node group; GPU workloads
    for Karpenter, the GPU Operator (device plugin) and the NodePools. The await clock runs
    meanwhile, so the wait counts against the resource's timeout."""
    node_groups = [r["urn"] for r in resources if r["type"] in NODE_GROUPS]
    gpu = node_groups + [r["urn"] for r in resources if r["type"] == "kubernetes:karpenter.sh/v1:NodePool"
                         or (r["type"] == HELM_RELEASE and str(_dig(r, "inputs", "chart") or "").rsplit("/", 1)[-1] in GPU_ENABLERS)]
    out = {}
    for r in resources:
        if r["type"] in WORKLOADS and _gpus(_pod(r)):
            out[r["urn"]] = [u for u in gpu if u != r["urn"]]
        elif r["type"] in (*WORKLOADS, "kubernetes:apps/v1:DaemonSet") or (
                r["type"] == HELM_RELEASE and not str(_dig(r, "inputs", "chart") or "").endswith(("-crd", "-crds"))):
            out[r["urn"]] = node_groups  # (a CRD-only chart has no pods to wait for)
    return out


def _pass(resources: Sequence[Mapping[str, Any]], after: Mapping[str, list[str]], gate: Mapping[str, list[str]],
          gate_finish: Mapping[str, float]) -> list[dict[str, Any]]:
    """One scheduling pass: topological order (ties: registration order), start and finish
    times; a gated resource's duration includes waiting for its gates' previous-pass finish."""
    index = {r["urn"]: i for i, r in enumerate(resources)}
    waiting = {u: len(before) for u, before in after.items()}
    unblocks: dict[str, list[str]] = {}
    for u, before in after.items():
        for b in before:
            unblocks.setdefault(b, []).append(u)
    ready = [index[u] for u, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    finish: dict[str, float] = {}
    order = []
    while ready:
        r = resources[heapq.heappop(ready)]
        seconds, source = expected_seconds(r)
        start = max((finish[b] for b in after[r["urn"]]), default=0.0)
        blocker = max(gate.get(r["urn"], ()), key=lambda u: (gate_finish.get(u, 0.0), -index[u]), default=None)
        wait = max(0.0, gate_finish.get(blocker, 0.0) - start) if blocker and seconds else 0.0
        finish[r["urn"]] = start + wait + seconds
        order.append({"urn": r["urn"], "type": r["type"], "name": r["name"], "start_seconds": round(start),
                      "seconds": round(wait + seconds), "finish_seconds": round(start + wait + seconds),
                      "estimate": source + (f"; waits {round(wait)}s for {resources[index[blocker]]['name']}" if wait else ""),
                      "waits_for": blocker if wait else None})
        for u in unblocks.get(r["urn"], ()):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, index[u])
    return order


def _schedule(resources: Sequence[Mapping[str, Any]], after: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Schedule until the gates' finish times stop moving (they only grow; a few passes)."""
    gate = gates(resources)
    finish: dict[str, float] = {}
    for _ in range(10):
        order = _pass(resources, after, gate, finish)
        new = {o["urn"]: float(o["finish_seconds"]) for o in order}
        if new == finish:
            break
        finish = new
    return order


def _critical_path(order: list[dict[str, Any]], after: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    by_urn = {o["urn"]: o for o in order}
    position = {o["urn"]: i for i, o in enumerate(order)}
    if not order:
        return []
    node: dict[str, Any] | None = max(order, key=lambda o: (o["finish_seconds"], -position[o["urn"]]))
    path = []
    while node is not None:
        path.append(node)
        before = [by_urn[b] for b in [*after[node["urn"]], node.get("waits_for")] if b in by_urn]
        node = max(before, key=lambda o: (o["finish_seconds"], -position[o["urn"]])) if before else None
    return [{k: p[k] for k in ("name", "type", "start_seconds", "seconds", "finish_seconds", "estimate")}
            for p in reversed(path) if p["seconds"] or p is path[-1]]


def _scaled_max(resources: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for r in resources:
        if r["type"] == "kubernetes:keda.sh/v1alpha1:ScaledObject":
            key = (str(_dig(r, "inputs", "metadata", "namespace") or "default"), str(_dig(r, "inputs", "spec", "scaleTargetRef", "name")))
            out[key] = max(out.get(key, 0), int(_dig(r, "inputs", "spec", "maxReplicaCount") or 100))
        elif r["type"] == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler":
            key = (str(_dig(r, "inputs", "metadata", "namespace") or "default"), str(_dig(r, "inputs", "spec", "scaleTargetRef", "name")))
            out[key] = max(out.get(key, 0), int(_dig(r, "inputs", "spec", "maxReplicas") or 1))
    return out


def _rollouts(resources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    scaled = _scaled_max(resources)
    out = []
    for r in resources:
        if r["type"] not in WORKLOADS:
            continue
        ns, name = str(_dig(r, "inputs", "metadata", "namespace") or "default"), str(_dig(r, "inputs", "metadata", "name"))
        replicas = int(_dig(r, "inputs", "spec", "replicas") if _dig(r, "inputs", "spec", "replicas") is not None else 1)
        baseline = max(replicas, 0)  # the baseline: an autoscaled workload may meet up to its max
        steps = rollout_steps(r, baseline)
        step, source = pod_ready_seconds(r)
        timeout = create_timeout(r, "update")
        seconds = steps * step
        flag = timeout is not None and timeout[0] < seconds
        out.append({"workload": f"{ns}/{name}", "kind": r["type"].rsplit(":", 1)[-1], "replicas": baseline,
                    "autoscaled_max": scaled.get((ns, name)), "steps": steps, "step_seconds": round(step),
                    "step_estimate": source, "seconds": round(seconds),
                    "update_timeout_seconds": None if timeout is None else round(timeout[0]),
                    "timeout_source": None if timeout is None else timeout[1], "timeout_too_short": flag})
    return out


def rehearse(resources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The rehearsal of a first `pulumi up` and of a baseline rollout per workload."""
    after = edges(resources)
    order = _schedule(resources, after)
    by_urn = {r["urn"]: r for r in resources}
    awaits = []
    for step, o in enumerate(order, 1):
        o["step"] = step
        timeout = create_timeout(by_urn[o["urn"]])
        o["timeout_seconds"] = None if timeout is None else round(timeout[0])
        o["timeout_source"] = None if timeout is None else timeout[1]
        o["timeout_too_short"] = timeout is not None and timeout[0] < o["seconds"]
        if timeout is not None:
            awaits.append({k: o[k] for k in ("name", "type", "seconds", "timeout_seconds", "timeout_source", "timeout_too_short")})
    rollouts = _rollouts(resources)
    flags = [f"create of {a['name']} ({a['type']}): timeout {a['timeout_seconds']}s ({a['timeout_source']}) < expected "
             f"{a['seconds']}s" for a in awaits if a["timeout_too_short"]]
    flags += [f"rollout of {r['workload']}: update timeout {r['update_timeout_seconds']}s ({r['timeout_source']}) < expected "
              f"{r['steps']} step(s) x {r['step_seconds']}s = {r['seconds']}s" for r in rollouts if r["timeout_too_short"]]
    critical = _critical_path(order, after)
    return {
        "first_deploy_seconds": max((o["finish_seconds"] for o in order), default=0),
        "critical_path": critical,
        "flags": flags,
        "awaits": awaits,
        "rollouts": rollouts,
        "order": order,
        "estimates": {t: {"seconds": s, "source": src} for t, (s, src) in sorted(ESTIMATES.items())},
        "note": "Durations are planning estimates (synth/rehearsal.py ESTIMATES and platform_facts.coldstart), not measurements.",
    }


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def markdown(data: Mapping[str, Any], stack: str) -> str:
    lines = [f"# Rehearsal of `pulumi up` for stack `{stack}`", "",
             f"Estimated wall time of a first deploy (critical path): **{_minutes(data['first_deploy_seconds'])}** "
             f"({data['first_deploy_seconds']} s). {data['note']}", "", "## Critical path", "",
             "| start | duration | resource | type | estimate |", "|---:|---:|---|---|---|"]
    lines += [f"| {p['start_seconds']} s | {p['seconds']} s | {p['name']} | `{p['type']}` | {p['estimate']} |" for p in data["critical_path"]]
    lines += ["", "## Flags", ""] + ([f"- {f}" for f in data["flags"]] or ["- none: every awaited create and rollout fits its timeout"])
    lines += ["", "## Awaited resources: timeout against expected readiness (create)", "",
              "| resource | type | expected | timeout | source | |", "|---|---|---:|---:|---|---|"]
    lines += [f"| {a['name']} | `{a['type']}` | {a['seconds']} s | {a['timeout_seconds']} s | {a['timeout_source']} | "
              f"{'**timeout < expected**' if a['timeout_too_short'] else 'ok'} |" for a in data["awaits"]]
    lines += ["", "## Baseline rollout per workload (update)", "",
              "| workload | replicas | steps | per step | total | update timeout | |", "|---|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {r['workload']} | {r['replicas']}" + (f" (autoscaled to {r['autoscaled_max']})" if r["autoscaled_max"] else "")
              + f" | {r['steps']} | {r['step_seconds']} s | {_minutes(r['seconds'])} | "
              + ("no await" if r["update_timeout_seconds"] is None else f"{r['update_timeout_seconds']} s ({r['timeout_source']})")
              + f" | {'**timeout < expected**' if r['timeout_too_short'] else 'ok'} |" for r in data["rollouts"]]
    lines += ["", "## Creation order", "", "| # | start | duration | resource | type |", "|---:|---:|---:|---|---|"]
    lines += [f"| {o['step']} | {o['start_seconds']} s | {o['seconds']} s | {o['name']} | `{o['type']}` |" for o in data["order"]]
    lines += ["", "## Estimates by type", "", "| type | seconds | source |", "|---|---:|---|"]
    lines += [f"| `{t}` | {e['seconds']:g} | {e['source']} |" for t, e in data["estimates"].items()]
    return "\n".join(lines) + "\n"
