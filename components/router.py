"""Router: the llm-d Router (EPP + Envoy, standalone mode) in front of one ModelService.

Created by ``ModelService`` when ``routing.mode`` is ``router`` (see ``render/router.py`` for the
shape): the Helm release (which creates the InferencePool), the InferenceObjectives, the router's
NetworkPolicy, PDB, ServiceMonitor and alerts. The CRDs the release needs (InferencePool,
InferenceObjective) are cluster-wide, installed once by ``router_crds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import helm, versions
from components.config import ModelServiceConfig
from components.naming import child
from components.render import router as render
from components.render import router_monitoring
from components.render.images import Mirror

# Unmodified upstream CRDs (provenance in crds/PROVENANCE.md).
CRD_DIR = Path(__file__).parent / "crds"
CRD_FILES = ("inference.networking.k8s.io_inferencepools.yaml", "llm-d.ai_inferenceobjectives.yaml")


def router_crds(name: str, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """The InferencePool (GIE v1.6.0) and InferenceObjective (llm-d-router v0.10.0) CRDs: the
    standalone chart ships none."""
    crds: list[pulumi.Resource] = []
    for file in CRD_FILES:
        doc = yaml.safe_load((CRD_DIR / file).read_text())
        crds.append(k8s.apiextensions.v1.CustomResourceDefinition(
            child(name, doc["metadata"]["name"].split(".")[0] + "-crd"),
            metadata={"name": doc["metadata"]["name"], "annotations": doc["metadata"].get("annotations", {})},
            spec=doc["spec"], opts=opts))
    return crds


@dataclass(frozen=True)
class RouterArgs:
    service: ModelServiceConfig
    """The routed service's validated config."""
    namespace: pulumi.Resource | None = None
    """The service's Namespace, when this program creates it."""
    crds: Sequence[pulumi.Resource] = ()
    """``router_crds``: the InferencePool and InferenceObjective CRDs."""
    node_pools: Sequence[pulumi.Resource] = ()
    """The general-purpose EC2NodeClass and NodePool the router pods are scheduled on."""
    monitoring_crds: pulumi.Resource | None = None
    """The kube-prometheus-stack release (ServiceMonitor and PrometheusRule CRDs)."""
    monitoring_namespace: str = "monitoring"
    """Where Prometheus runs: it may scrape the router's metrics port."""
    scrape_interval_seconds: int = 15
    mirror: Mirror | None = None
    """The stack's ECR pull-through cache: the Envoy and EPP images go through it where it covers them."""
    """ServiceMonitor scrape interval."""


class Router(pulumi.ComponentResource):
    """LLM-aware routing, bounded prioritized queue and 429 backpressure for one ModelService."""

    release_name: str
    """The Helm release; the InferencePool carries its name."""
    objectives: list[str]
    """InferenceObjective names (clients select one with the x-llm-d-inference-objective header)."""

    def __init__(self, name: str, args: RouterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:serving:Router", name, None, opts)
        svc, ns = args.service, args.service.namespace
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[r for r in (args.namespace,) if r is not None])
        with_crds = pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=list(args.crds)))
        self.release_name = render.release_name(svc)
        release = helm.release(
            child(name, "release"), versions.LLMD_ROUTER, release_name=self.release_name, namespace=ns,
            values=render.chart_values(svc, args.mirror),
            opts=pulumi.ResourceOptions.merge(with_crds, pulumi.ResourceOptions(depends_on=list(args.node_pools))))
        self.objectives = []
        for obj in render.inference_objectives(svc, ns):
            k8s.apiextensions.CustomResource(
                child(name, obj["metadata"]["name"]), api_version="llm-d.ai/v1alpha2", kind="InferenceObjective",
                metadata=obj["metadata"], spec=obj["spec"],
                opts=pulumi.ResourceOptions.merge(with_crds, pulumi.ResourceOptions(depends_on=[release])))
            self.objectives.append(obj["metadata"]["name"])
        pol = render.router_ingress(svc, ns, args.monitoring_namespace)
        k8s.networking.v1.NetworkPolicy(child(name, "ingress"), metadata=pol["metadata"], spec=pol["spec"], opts=in_ns)
        pdb = render.pod_disruption_budget(svc, ns)
        k8s.policy.v1.PodDisruptionBudget(child(name, "pdb"), metadata=pdb["metadata"], spec=pdb["spec"], opts=in_ns)
        monitoring = pulumi.ResourceOptions.merge(
            in_ns, pulumi.ResourceOptions(depends_on=[r for r in (args.monitoring_crds,) if r is not None]))
        helm.monitoring_object(child(name, "monitor"), "ServiceMonitor",
                               router_monitoring.service_monitor(svc, ns, args.scrape_interval_seconds), monitoring)
        helm.monitoring_object(child(name, "alerts"), "PrometheusRule", router_monitoring.prometheus_rule(svc, ns), monitoring)
        self.register_outputs({"release_name": self.release_name, "objectives": self.objectives})
