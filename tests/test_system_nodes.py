"""The system node group holds what is pinned to it: the requests of every controller, add-on
and Redis that selects the system nodes (replicas counted) fit min_size nodes of the smallest
allowed instance type, with margin. Two m7i.large in dev did not (issue 14, item 8)."""

from __future__ import annotations

import json

import pytest

from components import sizing
from components.cluster import SYSTEM_POOL_LABEL
from components.render import general_pool, system_pods
from components.render.system_pods import PodLoad, cpu_millis, memory_mib, system_pod_loads
from platform_facts.catalog import InstanceType
from tests.conftest import STACKS, build, load, load_with

# Requests may take this share of the group's allocatable: room for a rollout's surge pod
# and for what we do not count (a Helm hook job, a growing controller).
MAX_SHARE = 0.8


def _allocatable(instance_type: str) -> tuple[float, float]:
    """(vCPU, GiB) allocatable on one node, by the EKS AMI formula of components.sizing."""
    assert instance_type in system_pods.NODE_SHAPES, f"{instance_type}: add its shape to system_pods.NODE_SHAPES"
    vcpu, mem = system_pods.NODE_SHAPES[instance_type]
    it = InstanceType(instance_type, "", 0, 0, vcpu, mem, 0.0, 0.0, 0.0)
    return sizing.allocatable_vcpu(it), sizing.allocatable_memory_gib(it)


def _budget_errors(config, resources) -> list[str]:
    nodes = config.cluster.system_nodes
    smallest = min(nodes.instance_types, key=lambda t: system_pods.NODE_SHAPES.get(t, (0, 0)))
    node_cpu, node_mem = _allocatable(smallest)
    loads = system_pod_loads(resources, SYSTEM_POOL_LABEL)
    cpu = sum(x.total_cpu_millis for x in loads) / 1000
    mem = sum(x.total_memory_mib for x in loads) / 1024
    group_cpu, group_mem = nodes.min_size * node_cpu, nodes.min_size * node_mem
    errors = []
    if cpu > MAX_SHARE * group_cpu:
        errors.append(f"{cpu:.2f} vCPU requested on {nodes.min_size} x {smallest} ({group_cpu:.2f} allocatable)")
    if mem > MAX_SHARE * group_mem:
        errors.append(f"{mem:.2f} GiB requested on {nodes.min_size} x {smallest} ({group_mem:.2f} allocatable)")
    errors += [f"{x.workload}: one replica ({x.cpu_millis}m, {x.memory_mib}Mi) fits no {smallest}"
               for x in loads if x.cpu_millis / 1000 > node_cpu or x.memory_mib / 1024 > node_mem]
    return errors


@pytest.mark.parametrize("stack", STACKS)
def test_system_requests_fit_the_system_node_group(synthesized, stack):
    resources = json.loads((synthesized[stack] / "resources.json").read_text())
    assert _budget_errors(load(stack), resources) == []


def test_the_budget_catches_two_m7i_large():
    """dev as it was: two m7i.large (1.5 allocatable vCPU each) under ~4.3 vCPU of requests."""
    def mutate(values):
        values["cluster"]["systemNodes"]["instanceTypes"] = ["m7i.large"]

    config = load_with("dev", mutate)
    resources = [r.contract() for r in build(config).resources]
    errors = _budget_errors(config, resources)
    assert errors and "vCPU requested on 2 x m7i.large (3.00 allocatable)" in errors[0]


def test_every_system_workload_is_counted(synthesized):
    """The controllers we pin to the system nodes all show up, with their replicas."""
    resources = json.loads((synthesized["staging"] / "resources.json").read_text())
    loads = {x.workload: x for x in system_pod_loads(resources, SYSTEM_POOL_LABEL)}
    assert {"coredns", "ebs-csi-controller", "karpenter", "prometheus", "alertmanager", "prometheus-operator",
            "grafana", "kube-state-metrics", "prometheus-adapter", "keda-operator", "keda-metrics-apiserver",
            "keda-admission-webhooks", "gpu-operator", "nfd-master", "nfd-gc"} == set(loads)
    # The batch worker's Redis runs on the general-purpose NodePool since the routers brought it.
    assert loads["karpenter"] == PodLoad("karpenter", 2, 1000, 1024)
    # Prometheus with the operator's config reloader beside it.
    assert loads["prometheus"] == PodLoad("prometheus", 1, 510, 2048 + 50)
    assert loads["ebs-csi-controller"] == PodLoad("ebs-csi-controller", 2, 60, 240)
    # Counted on the general pool instead: its pods there, by the same reading of the resources.
    general = {x.workload: x for x in system_pod_loads(resources, general_pool.pod_placement()["nodeSelector"])}
    assert general["batch/embed-redis"] == PodLoad("batch/embed-redis", 1, 250, 512)


def test_chart_defaults_count_where_we_set_nothing():
    release = {"type": "kubernetes:helm.sh/v3:Release",
               "inputs": {"chart": "keda", "values": {"nodeSelector": dict(SYSTEM_POOL_LABEL)}}}
    loads = system_pod_loads([release], SYSTEM_POOL_LABEL)
    # The chart's default: one replica of each, 100m / 100Mi.
    assert loads == [PodLoad("keda-operator", 1, 100, 100), PodLoad("keda-metrics-apiserver", 1, 100, 100),
                     PodLoad("keda-admission-webhooks", 1, 100, 100)]
    unpinned = {"type": "kubernetes:helm.sh/v3:Release", "inputs": {"chart": "keda", "values": {}}}
    assert system_pod_loads([unpinned], SYSTEM_POOL_LABEL) == []


def test_a_pod_requests_the_larger_of_its_containers_and_its_init_containers():
    deployment = {"type": "kubernetes:apps/v1:Deployment", "inputs": {
        "metadata": {"name": "x", "namespace": "n"},
        "spec": {"replicas": 3, "template": {"spec": {
            "nodeSelector": dict(SYSTEM_POOL_LABEL),
            "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "64Mi"}}}],
            "containers": [{"resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}},
                           {"resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}],
        }}}}}
    assert system_pod_loads([deployment], SYSTEM_POOL_LABEL) == [PodLoad("n/x", 3, 2000, 1536)]


@pytest.mark.parametrize(("quantity", "millis"), [("250m", 250), ("1", 1000), (1, 1000), ("0.5", 500), (0, 0)])
def test_cpu_quantities(quantity, millis):
    assert cpu_millis(quantity) == millis


@pytest.mark.parametrize(("quantity", "mib"), [("512Mi", 512), ("1Gi", 1024), ("1000Mi", 1000), ("128M", 123),
                                               ("2048Ki", 2), (str(3 * 1024 * 1024), 3), (0, 0)])
def test_memory_quantities(quantity, mib):
    assert memory_mib(quantity) == mib
