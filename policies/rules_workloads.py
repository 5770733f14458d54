"""GPU workload rules: resources, probes, drain, placement, images, storage, rollouts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from platform_facts.aws import SPOT_NOTICE_SECONDS

from .base import resource_rule
from .workloads import (
    GPU,
    arg_value,
    containers,
    dig,
    gpu_containers,
    gpu_quantity,
    holds_gpus_only,
    may_run_on_spot,
    pod_spec,
    prestop_seconds,
    probe_budget_seconds,
    workload_name,
)

SERVING = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")
P99_ANNOTATION = "platform.gpu/p99-generation-seconds"


def _gpu_spec(rtype: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a workload that serves on GPUs (placeholder pods only hold them)."""
    spec = pod_spec(rtype, props)
    return spec if spec and gpu_containers(spec) and not holds_gpus_only(spec) else None


def requests_equal_limits(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = pod_spec(rtype, props)
    for c in gpu_containers(spec) if spec else ():
        req, lim = gpu_quantity(c, "requests"), gpu_quantity(c, "limits")
        if lim is None or (req is not None and req != lim):
            yield (f"{workload_name(props)}/{c.get('name')}: {GPU} requests {req} and limits {lim} differ "
                   "(extended resources are never overcommitted; the limit is what the scheduler counts).")


def cpu_memory_requests(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = _gpu_spec(rtype, props)
    for c in containers(spec) if spec else ():
        missing = [r for r in ("cpu", "memory") if dig(c, "resources", "requests", r) is None]
        if missing:
            yield f"{workload_name(props)}/{c.get('name')}: no {' or '.join(missing)} request on a GPU pod."


def startup_probe(rtype: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in SERVING:
        return
    spec = _gpu_spec(rtype, props)
    for c in gpu_containers(spec) if spec else ():
        if c.get("startupProbe") is None and c.get("readinessProbe") is None:
            yield f"{workload_name(props)}/{c.get('name')}: neither a startup nor a readiness probe covers model load."
            continue
        # What can kill a loading pod: the startup probe if any, else the liveness probe.
        killer = c.get("startupProbe") or c.get("livenessProbe")
        if killer is None:
            continue
        budget = probe_budget_seconds(killer)
        if budget < config["minStartupSeconds"]:
            yield (f"{workload_name(props)}/{c.get('name')}: the startup probe allows {budget}s before the pod is "
                   f"killed or marked failed; model load needs at least {config['minStartupSeconds']}s.")


def readiness_probe(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in SERVING:
        return
    spec = _gpu_spec(rtype, props)
    for c in gpu_containers(spec) if spec else ():
        if c.get("readinessProbe") is None:
            yield f"{workload_name(props)}/{c.get('name')}: no readiness probe; traffic arrives before the model loads."


def prestop_hook(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in SERVING:
        return
    spec = _gpu_spec(rtype, props)
    for c in gpu_containers(spec) if spec else ():
        if dig(c, "lifecycle", "preStop") is None:
            yield f"{workload_name(props)}/{c.get('name')}: a serving GPU container has no preStop hook."


def termination_grace(rtype: str, props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in SERVING:
        return
    spec = _gpu_spec(rtype, props)
    if not spec:
        return
    grace = int(spec.get("terminationGracePeriodSeconds", 30))
    # A workload may declare its own p99 (ModelService does); else the pack's setting.
    p99 = dig(props, "metadata", "annotations", P99_ANNOTATION) or config["p99GenerationSeconds"]
    floor = math.ceil(2 * float(p99))
    for c in gpu_containers(spec):
        drain = int(arg_value(c, "--shutdown-timeout") or 0)
        need = (prestop_seconds(c) or 0) + drain
        if grace < need:
            yield f"{workload_name(props)}: terminationGracePeriodSeconds {grace} < preStop + drain = {need}."
        if grace < floor:
            yield (f"{workload_name(props)}: terminationGracePeriodSeconds {grace} < 2 x p99 generation time "
                   f"({floor}s); in-flight requests get cut.")


def spot_drain(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype not in SERVING:
        return
    spec = _gpu_spec(rtype, props)
    if spec and may_run_on_spot(spec):
        grace = int(spec.get("terminationGracePeriodSeconds", 30))
        if grace > SPOT_NOTICE_SECONDS:
            yield (f"{workload_name(props)}: may run on spot, but its drain takes {grace}s and the spot notice is "
                   f"{SPOT_NOTICE_SECONDS}s.")


def gpu_toleration(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = _gpu_spec(rtype, props)
    if not spec:
        return
    for t in spec.get("tolerations") or ():
        if t.get("operator") == "Exists" and not t.get("key"):
            return
        if t.get("key") == GPU and t.get("effect") in (None, "NoSchedule") and t.get("operator", "Equal") in ("Exists", "Equal"):
            return
    yield f"{workload_name(props)}: a GPU pod does not tolerate the {GPU}:NoSchedule taint of GPU nodes."


def image_pinned(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = pod_spec(rtype, props)
    for c in containers(spec, init=True) if spec else ():
        image = str(c.get("image") or "")
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        if ":" not in last or last.endswith(":latest"):
            yield f"{workload_name(props)}/{c.get('name')}: image {image!r} is untagged or :latest."


NETWORK_CSI = {"efs.csi.aws.com", "fsx.csi.aws.com", "nfs.csi.k8s.io"}


def weights_local(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    spec = _gpu_spec(rtype, props)
    for v in (spec.get("volumes") or ()) if spec else ():
        driver = dig(v, "csi", "driver")
        if v.get("nfs") is not None or driver in NETWORK_CSI:
            yield (f"{workload_name(props)}: volume {v.get('name')} is network storage ({driver or 'nfs'}); model "
                   "loads from it are slow and shared-bandwidth.")


def rolling_update(rtype: str, props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if rtype != "kubernetes:apps/v1:Deployment" or not _gpu_spec(rtype, props):
        return
    strategy = dig(props, "spec", "strategy") or {}
    if strategy.get("type") == "Recreate":
        yield f"{workload_name(props)}: Recreate takes every GPU replica down at once."
        return
    unavailable = dig(strategy, "rollingUpdate", "maxUnavailable")
    if unavailable is None or str(unavailable) not in ("0", "0%"):
        yield f"{workload_name(props)}: rollingUpdate.maxUnavailable is {unavailable or 'the default 25%'}; a rollout drops serving replicas."


RULES = [
    resource_rule("gpu-requests-equal-limits", "GPU workloads", f"GPU containers request exactly the {GPU} they are limited to.",
        "Extended resources cannot be overcommitted; a request that differs from the limit is rejected or misleads capacity planning.",
        f"set resources.requests[{GPU}] equal to resources.limits[{GPU}] (or omit the request).", requests_equal_limits),
    resource_rule("gpu-cpu-memory-requests", "GPU workloads", "Containers of GPU pods request CPU and memory.",
        "Without requests a GPU pod lands on a node whose CPU or memory cannot feed the GPU, and Karpenter sizes nodes wrong.",
        "set resources.requests.cpu and .memory (at least 4 CPU and 8Gi per GPU for vLLM).", cpu_memory_requests),
    resource_rule("gpu-startup-probe", "GPU workloads", "Serving GPU containers have a startup probe whose budget covers model load.",
        "Loading weights and compiling the engine takes minutes; a short budget kills the pod mid-load, forever.",
        "add a startupProbe on /health with periodSeconds x failureThreshold above the worst-case load time.",
        startup_probe, {"minStartupSeconds": {"type": "integer", "default": 300, "minimum": 0,
                                                "description": "Smallest acceptable startup budget."}}),
    resource_rule("gpu-readiness-probe", "GPU workloads", "Serving GPU containers have a readiness probe.",
        "Without one, the Service sends requests to a pod whose model is not loaded.",
        "add a readinessProbe that passes only once the model serves (e.g. a warm-up completion, then /health).",
        readiness_probe),
    resource_rule("gpu-prestop-hook", "GPU workloads", "Serving GPU containers have a preStop hook so endpoints drain before SIGTERM.",
        "Endpoint removal is asynchronous; without a pause, new requests still arrive at a terminating pod.",
        "add lifecycle.preStop {sleep: {seconds: 15}} and a matching terminationGracePeriodSeconds.", prestop_hook),
    resource_rule("gpu-termination-grace", "GPU workloads", "terminationGracePeriodSeconds covers preStop + drain and 2 x the p99 generation time.",
        "Kubernetes kills the container at the grace period; anything shorter aborts in-flight generations.",
        "raise terminationGracePeriodSeconds to at least preStop + --shutdown-timeout + a margin.",
        termination_grace, {"p99GenerationSeconds": {"type": "number", "default": 30, "minimum": 0,
                                                       "description": "Configured p99 request duration."}}),
    resource_rule("gpu-spot-drain-fits-notice", "GPU workloads", "GPU pods that may run on spot drain within the 2-minute interruption notice.",
        "EC2 reclaims a spot instance two minutes after the warning; a longer drain is cut off anyway.",
        "shorten preStop + shutdown timeout to fit 120 s, or require karpenter.sh/capacity-type on-demand.", spot_drain),
    resource_rule("gpu-taint-toleration", "GPU workloads", f"GPU pods tolerate the {GPU}:NoSchedule taint that GPU NodePools carry.",
        "GPU nodes are tainted so that only GPU work lands there; a pod without the toleration stays Pending.",
        f"add a toleration {{key: {GPU}, operator: Exists, effect: NoSchedule}}.", gpu_toleration),
    resource_rule("image-tag-pinned", "GPU workloads", "Every container image has an explicit tag or digest, never :latest.",
        "A moving tag changes what runs without a change in the stack, and breaks rollbacks.",
        "pin the image to a version tag or a @sha256 digest.", image_pinned),
    resource_rule("gpu-weights-on-local-storage", "GPU workloads", "Model weights are not read from NFS/EFS/FSx volumes.",
        "Network file systems share bandwidth between all replicas; cold starts stretch to many minutes under scale-out.",
        "cache the model on the node's NVMe (hostPath under /mnt/k8s-disks/0 or an emptyDir).", weights_local),
    resource_rule("gpu-rolling-update-keeps-capacity", "GPU workloads", "GPU Deployments roll with maxUnavailable 0.",
        "GPU replicas take minutes to come back; removing one before its replacement is ready drops capacity.",
        "set strategy.rollingUpdate {maxUnavailable: 0, maxSurge: 1}.", rolling_update),
]
