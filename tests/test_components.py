"""Every component has one anatomy: ``(name, args: <Component>Args, opts)``, can be built on
its own from its args, and registers exactly the outputs it declares, each documented."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.batch import BatchInference, BatchInferenceArgs
from components.cluster import ClusterRef, GpuCluster, GpuClusterArgs, Network, NetworkArgs
from components.gpu_operator import GpuOperator, GpuOperatorArgs
from components.karpenter import Karpenter, KarpenterArgs
from components.keda import Keda, KedaArgs
from components.model_service import ModelService, ModelServiceArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.platform import Platform
from synth.engine import run_program
from tests.conftest import load

COMPONENTS = (Network, GpuCluster, Karpenter, Monitoring, Keda, GpuOperator, ModelService, BatchInference, Platform)


def _declared(cls: type) -> dict[str, str | None]:
    """Class-level annotated attributes and the docstring that follows each, read from source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    out: dict[str, str | None] = {}
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            nxt = body[i + 1] if i + 1 < len(body) else None
            doc = nxt.value.value if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) else None
            out[node.target.id] = doc
    return out


@pytest.mark.parametrize("cls", COMPONENTS, ids=lambda c: c.__name__)
def test_every_declared_output_is_documented(cls):
    declared = _declared(cls)
    assert declared, f"{cls.__name__} declares no outputs"
    undocumented = [k for k, doc in declared.items() if not doc]
    assert not undocumented, f"{cls.__name__}: outputs without a docstring: {undocumented}"


@pytest.mark.parametrize("cls", [c for c in COMPONENTS if c is not Platform], ids=lambda c: c.__name__)
def test_one_anatomy(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())
    assert [p.name for p in params] == ["self", "name", "args", "opts"], cls.__name__
    args_type = params[2].annotation
    assert args_type == f"{cls.__name__}Args", f"{cls.__name__} takes {args_type}"
    assert params[3].default is None


def _record_registrations(monkeypatch) -> dict[str, list[set[str]]]:
    seen: dict[str, list[set[str]]] = {}
    original = pulumi.ComponentResource.register_outputs

    def register(self, outputs):
        seen.setdefault(type(self).__name__, []).append(set(outputs))
        return original(self, outputs)

    monkeypatch.setattr(pulumi.ComponentResource, "register_outputs", register)
    return seen


def test_registered_outputs_are_the_declared_ones(monkeypatch):
    seen = _record_registrations(monkeypatch)
    from tests.conftest import build

    build(load("staging"))  # staging has every component, batch workers included
    for cls in COMPONENTS:
        assert cls.__name__ in seen, f"{cls.__name__} never registered its outputs"
        for registered in seen[cls.__name__]:
            assert registered == set(_declared(cls)), f"{cls.__name__}: registered {sorted(registered)}"


# --------------------------------------------------------------------------- built alone


def _in_cluster() -> pulumi.ResourceOptions:
    provider = k8s.Provider("k8s", kubeconfig="{}")
    return pulumi.ResourceOptions(providers=[provider])


def _their_storage_class(opts: pulumi.ResourceOptions) -> k8s.storage.v1.StorageClass:
    """A consumer's own StorageClass: components that claim volumes take it as an object."""
    return k8s.storage.v1.StorageClass("theirs", metadata={"name": "theirs-gp3"}, provisioner="ebs.csi.aws.com",
                                       opts=opts)


def _alone(body) -> list:
    return run_program(body, project="consumer", stack="dev", config={}, region="eu-west-1").resources


def _types(resources) -> set[str]:
    return {r.type for r in resources}


def test_network_alone():
    cfg = load("dev").cluster
    types = _types(_alone(lambda: Network("net", NetworkArgs(cfg.name, cfg.network))))
    assert {"aws:ec2/vpc:Vpc", "aws:ec2/natGateway:NatGateway", "aws:ec2/subnet:Subnet"} <= types


def test_gpu_cluster_alone():
    cfg = load("dev").cluster
    types = _types(_alone(lambda: GpuCluster("c", GpuClusterArgs(cfg, "us-east-1"))))
    assert {"eks:index:Cluster", "eks:index:ManagedNodeGroup", "pulumi:providers:kubernetes"} <= types


def test_karpenter_alone_on_a_cluster_it_did_not_create():
    """A consumer with its own EKS cluster uses Karpenter and the GPU NodePools, nothing else."""
    tiers = load("prod").gpu_tiers

    def body() -> None:
        ref = ClusterRef(name="theirs", ready_name=pulumi.Output.from_input("theirs"),
                         private_subnet_ids=["subnet-1", "subnet-2"], node_security_group_id="sg-1")
        Karpenter("k", KarpenterArgs(cluster=ref, region="eu-west-1", tiers=tiers,
                                     on_demand_gpu_limits={t.name: 16 for t in tiers}), opts=_in_cluster())

    resources = _alone(body)
    pools = [r.inputs for r in resources if r.type == "kubernetes:karpenter.sh/v1:NodePool"]
    assert len(pools) == sum(t.on_demand.enabled + t.spot.enabled for t in tiers) > len(tiers)
    on_demand = [p for p in pools if p["metadata"]["name"].endswith("-on-demand")]
    assert {p["spec"]["limits"]["nvidia.com/gpu"] for p in on_demand} == {"16"}
    classes = [r.inputs for r in resources if r.type == "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"]
    assert classes[0]["spec"]["subnetSelectorTerms"] == [{"id": "subnet-1"}, {"id": "subnet-2"}]
    assert not any(r.type.startswith("eks:") for r in resources)


@pytest.mark.parametrize("component", ["monitoring", "keda", "gpu-operator"])
def test_addon_alone(component: str):
    config = load("prod")

    def body() -> None:
        opts = _in_cluster()
        if component == "monitoring":
            Monitoring("m", MonitoringArgs(config.addons.monitoring, _their_storage_class(opts)), opts=opts)
        elif component == "keda":
            Keda("k", KedaArgs(config.addons.keda), opts=opts)
        else:
            GpuOperator("g", GpuOperatorArgs(config.addons.gpu_operator, config.gpu_tiers), opts=opts)

    releases = [r.inputs["name"] for r in _alone(body) if r.type == "kubernetes:helm.sh/v3:Release"]
    expected = {"monitoring": ["kps", "prometheus-adapter"], "keda": ["keda"], "gpu-operator": ["gpu-operator"]}
    assert releases == expected[component]


def test_model_service_and_batch_alone():
    config = load("staging")
    svc, worker = config.model_services[0], config.batch_workers[0]

    def body() -> None:
        opts = _in_cluster()
        ModelService(svc.name, ModelServiceArgs(service=svc, tier=config.tier(svc.tier), cluster_name="theirs",
                                                prometheus_url="http://prometheus:9090", region="us-east-1"), opts=opts)
        BatchInference(worker.name, BatchInferenceArgs(worker=worker, tier=config.tier(worker.tier),
                                                       cluster_name="theirs", region="us-east-1",
                                                       storage_class=_their_storage_class(opts)), opts=opts)

    resources = _alone(body)
    kinds = [r.type.rsplit(":", 1)[1] for r in resources if r.type.startswith("kubernetes:")]
    assert {"Deployment", "Service", "ScaledObject", "ScaledJob"} <= set(kinds)
    redis = next(r.inputs for r in resources if r.type == "kubernetes:apps/v1:StatefulSet")
    assert [t["spec"]["storageClassName"] for t in redis["spec"]["volumeClaimTemplates"]] == ["theirs-gp3"]


def test_args_are_frozen_dataclasses():
    for args in (NetworkArgs, GpuClusterArgs, KarpenterArgs, MonitoringArgs, KedaArgs, GpuOperatorArgs,
                 ModelServiceArgs, BatchInferenceArgs, ClusterRef):
        params: Any = getattr(args, "__dataclass_params__", None)
        assert params is not None and params.frozen, f"{args.__name__} is not a frozen dataclass"


def _imported_names(path: Path) -> set[str]:
    return {a.name for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) for a in node.names}


def test_only_platform_sees_the_stack_config():
    root = Path(__file__).resolve().parent.parent / "components"
    modules = [*root.glob("*.py"), *root.glob("render/*.py")]
    users = sorted(str(p.relative_to(root)) for p in modules if "StackConfig" in _imported_names(p))
    # The loader builds a StackConfig and the capacity report reads one; neither creates resources.
    assert users == ["__init__.py", "platform.py", "render/capacity.py", "stack.py"], users
