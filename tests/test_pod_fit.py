"""Every GPU pod we render fits a node of its tier, counted as the scheduler counts it.

The scheduler sizes a pod by its effective request: per resource, the larger of its largest
init container and the sum of its other containers (plus, on the node, every DaemonSet pod
there). The config checks a replica with ``replica_fits``; these tests apply the same rule
to what is actually rendered, init containers and DaemonSets included, so a heavy init
container (a 7-vCPU / 64-GiB cache sync on dev's 4-vCPU / 16-GiB g6.xlarge once passed every
test) cannot slip through.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from components.config import ConfigError, StackConfig, replica_fits
from platform_facts import catalog
from tests.conftest import STACKS, build, load, load_plain_prod, load_with

GPU = "nvidia.com/gpu"
TIER_LABEL = "platform.gpu/tier"
_UNITS = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(q: str | int) -> float:
    """A Kubernetes quantity as a plain number (cores, bytes, devices)."""
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(q))
    assert m and m.group(2) in _UNITS, q
    return float(m.group(1)) * _UNITS[m.group(2)]


def _requests(c: dict[str, Any]) -> dict[str, float]:
    res = c.get("resources", {})
    # A resource with only a limit is requested at its limit (API defaulting).
    merged = {**res.get("limits", {}), **res.get("requests", {})}
    return {r: quantity(merged[r]) for r in ("cpu", "memory", GPU) if r in merged}


def effective(spec: dict[str, Any]) -> dict[str, float]:
    """The pod's effective request: max(largest init container, sum of containers)."""
    out = {}
    for r in ("cpu", "memory", GPU):
        app = sum(_requests(c).get(r, 0.0) for c in spec["containers"])
        init = max((_requests(c).get(r, 0.0) for c in spec.get("initContainers", [])), default=0.0)
        out[r] = max(app, init)
    return out


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, name, pod spec) of every pod template among the objects."""
    out = []
    for o in objects:
        spec = o.get("spec", {})
        template = spec.get("jobTargetRef", spec).get("template")
        if template and "containers" in template.get("spec", {}):
            out.append((o["kind"], o["metadata"]["name"], template["spec"]))
    return out


def tier_of(spec: dict[str, Any]) -> str | None:
    if TIER_LABEL in spec.get("nodeSelector", {}):
        return spec["nodeSelector"][TIER_LABEL]
    terms = spec.get("affinity", {}).get("nodeAffinity", {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms", [])
    tiers = {v for t in terms for e in t.get("matchExpressions", []) if e["key"] == TIER_LABEL for v in e["values"]}
    assert len(tiers) <= 1, tiers
    return tiers.pop() if tiers else None


def misfits(cfg: StackConfig, objects: list[dict[str, Any]]) -> list[str]:
    """GPU pods whose effective request, plus the DaemonSet pods on their tier's nodes, fits
    no instance type of the tier by replica_fits' rule."""
    pods = pod_specs(objects)
    daemons: dict[str, list[dict[str, float]]] = {}
    for kind, _, spec in pods:
        if kind == "DaemonSet" and tier_of(spec):
            daemons.setdefault(tier_of(spec), []).append(effective(spec))
    problems = []
    for kind, name, spec in pods:
        need = effective(spec)
        if kind == "DaemonSet" or not need[GPU]:
            continue
        tier = cfg.tier(tier_of(spec))
        total = {r: need[r] + sum(d[r] for d in daemons.get(tier.name, [])) for r in need}
        pod = SimpleNamespace(gpus_per_replica=total[GPU], cpu_per_replica=total["cpu"],
                              memory_gib_per_replica=total["memory"] / 2**30)
        if not any(replica_fits(pod, catalog.INSTANCE_TYPES[t]) for t in tier.instance_types):
            problems.append(f"{kind} {name}: {total} fits no {tier.name} type {tier.instance_types}")
    return problems


def _manifests(out: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(f.read_text()) for f in sorted((out / "manifests").glob("*.yaml"))]


def _recorded(result) -> list[dict[str, Any]]:
    return [{"kind": r.type.rsplit(":", 1)[1], **r.inputs} for r in result.resources
            if r.type.startswith("kubernetes:") and isinstance(r.inputs.get("spec"), dict)]


@pytest.mark.parametrize("stack", STACKS)
def test_every_gpu_pod_fits_a_node_of_its_tier(synthesized, stack):
    objects = _manifests(synthesized[stack])
    assert any(effective(spec)[GPU] for _, _, spec in pod_specs(objects)), "no GPU pod found: the check ran on nothing"
    assert misfits(load(stack), objects) == []


def test_the_example_service_fits_a_node_of_its_tier(example_build):
    objects = _manifests(example_build)
    assert [name for _, name, spec in pod_specs(objects) if effective(spec)[GPU]] == ["summarize-burst"]
    # The example deploys into the platform's dev stack (examples/extra-model/Pulumi.dev.yaml).
    assert misfits(load("dev"), objects) == []


@pytest.mark.parametrize("stack", STACKS)
def test_init_containers_never_raise_a_pods_request(synthesized, stack):
    # replica_fits and the batch check size the main container only; that is exact only while
    # no init container asks for more than the containers that follow it.
    checked = 0
    for kind, name, spec in pod_specs(_manifests(synthesized[stack])):
        if kind == "DaemonSet" or not spec.get("initContainers"):
            continue
        app = {r: sum(_requests(c).get(r, 0.0) for c in spec["containers"]) for r in ("cpu", "memory")}
        for c in spec["initContainers"]:
            for r, v in _requests(c).items():
                assert v <= app.get(r, 0.0), f"{kind} {name}: init {c['name']} requests {r} {v} > {app.get(r)}"
        checked += 1
    assert checked


def test_the_check_catches_a_heavy_init_container(synthesized):
    # The regression this file exists for: dev's vLLM pod with a 7-vCPU / 64-GiB cache sync.
    objects = copy.deepcopy(_manifests(synthesized["dev"]))
    (dep,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "chat-burst"]
    dep["spec"]["template"]["spec"]["initContainers"][0]["resources"] = {"requests": {"cpu": "7", "memory": "64Gi"}}
    (problem,) = misfits(load("dev"), objects)
    assert problem.startswith("Deployment chat-burst:") and "fits no l4 type ('g6.xlarge', 'g6.2xlarge')" in problem


def test_smallest_batch_job_is_sized_by_its_worker_not_its_init_container():
    cfg = load_with("staging", lambda v: v["batchWorkers"][0].update(cpuPerJob=1, memoryGibPerJob=1))
    ((_, _, spec),) = [p for p in pod_specs(_recorded(build(cfg))) if p[0] == "ScaledJob"]
    assert spec["initContainers"] and effective(spec) == {"cpu": 1.0, "memory": 2.0**30, GPU: 1.0}


def test_pre_pull_daemonset_leaves_room_for_the_replicas():
    # A DaemonSet pod holds its effective request (its cache-filling init container's) for
    # as long as it lives, next to the replica on every node of the tier.
    cfg = load_plain_prod(lambda v: v["modelServices"][0].update(prePull=True))
    objects = _recorded(build(cfg))
    (ds,) = [spec for kind, _, spec in pod_specs(objects) if kind == "DaemonSet"]
    assert effective(ds) == {"cpu": 1.0, "memory": 2.0**30, GPU: 0.0}
    assert misfits(cfg, objects) == []


def _dev_batch(**job):
    def mutate(v):
        v["batchWorkers"] = [{"name": "embed", "image": "ghcr.io/example/embed-worker:1.4.2", "tier": "l4", **job}]
    return mutate


@pytest.mark.parametrize(("stack", "mutate", "message"), [
    ("dev", _dev_batch(cpuPerJob=7, memoryGibPerJob=64),
     "batchWorkers[0].memoryGibPerJob: 64 does not fit tier l4 (g6.xlarge, g6.2xlarge): at most 27 GiB after "
     "system reservations; lower it or add a larger type to instanceTypes"),
    ("dev", _dev_batch(cpuPerJob=8),
     "batchWorkers[0].cpuPerJob: 8 does not fit tier l4 (g6.xlarge, g6.2xlarge): at most 7 vCPU after "
     "system reservations; lower it or add a larger type to instanceTypes"),
    ("staging", lambda v: v["batchWorkers"][0].update(memoryGibPerJob=57),
     "batchWorkers[0].memoryGibPerJob: 57 does not fit tier l40s (g6e.xlarge, g6e.2xlarge): at most 56 GiB"),
])
def test_a_batch_job_that_fits_no_node_is_refused(stack, mutate, message):
    with pytest.raises(ConfigError) as err:
        load_with(stack, mutate)
    assert len(err.value.messages) == 1 and message in err.value.messages[0], err.value.messages


def test_batch_jobs_at_the_limit_are_accepted():
    cfg = load_with("dev", _dev_batch(cpuPerJob=7, memoryGibPerJob=27))
    assert (cfg.batch_workers[0].cpu_per_job, cfg.batch_workers[0].memory_gib_per_job) == (7, 27)
