"""ModelService: one model served by vLLM with an on-demand baseline and a spot burst.

Shape and guarantees (details in ``render/vllm.py``):

- ``<name>-baseline``: ``minReplicas`` replicas, required on on-demand nodes of the tier. A
  spot reclaim can never take the service below this.
- ``<name>-burst``: scaled by KEDA (or an HPA in ``hpa`` mode) from 0 up to
  ``maxReplicas - minReplicas``; prefers spot, falls back to on-demand. Its triggers
  subtract the baseline's capacity, so baseline + burst together track demand.
- optional ``<name>-canary``: a second revision behind the same Service (or router), traffic
  share by replica ratio (capped).
- ``routing.mode: router``: the llm-d Router (``components/router.py``) takes the Service's name;
  only the router and Prometheus reach the vLLM pods.
- NetworkPolicies: the port open only to the consumer namespaces and Prometheus, egress only
  to DNS, the Pod Identity agent and public HTTPS (the namespace's default deny comes from
  ``Platform``, which owns the namespace);
- one ClusterIP Service, a PodDisruptionBudget per Deployment (one pod at a time, never a
  drain deadlock), a ServiceMonitor, alerts, and an IAM role (EKS Pod Identity) that may
  only read the model's S3 prefix, for the cache init container.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import helm
from components.config import GpuTier, ModelServiceConfig
from components.identity import model_cache_reader
from components.naming import child
from components.render import images, network_policy, scaling
from components.render import router as routing
from components.render import vllm as render
from components.render.images import Mirror
from components.router import Router, RouterArgs


@dataclass(frozen=True)
class ModelServiceArgs:
    service: ModelServiceConfig
    """The service's validated config."""
    tier: GpuTier
    """The GPU tier it runs on (its NodePools carry the tier label)."""
    cluster_name: pulumi.Input[str]
    """EKS cluster, for the Pod Identity association."""
    prometheus_url: pulumi.Input[str]
    """The Monitoring component's Prometheus URL, for the KEDA triggers."""
    region: str
    """The cluster's AWS region, for the model-cache init container (pods cannot ask IMDS)."""
    scrape_interval_seconds: int = 15
    """ServiceMonitor scrape interval."""
    namespace: pulumi.Resource | None = None
    """The service's Namespace, when this program creates it: every namespaced object waits for it."""
    node_pools: Sequence[pulumi.Resource] = ()
    """The tier's EC2NodeClass and NodePools (``Karpenter.tier_capacity[tier]``): the Deployments'
    pods need them to be scheduled."""
    gpu_operator: pulumi.Resource | None = None
    """The GPU Operator release: its device plugin advertises the GPUs the Deployments request."""
    monitoring_crds: pulumi.Resource | None = None
    """The kube-prometheus-stack release, whose CRDs the ServiceMonitor and PrometheusRule need."""
    keda_crds: pulumi.Resource | None = None
    """The KEDA release, whose CRDs the ScaledObject needs."""
    monitoring_namespace: str = "monitoring"
    """Where Prometheus runs: its pods may scrape the service's /metrics through the NetworkPolicy."""
    mirror: Mirror | None = None
    """The stack's ECR pull-through cache (``images.mirror_for``): every image is pulled through it."""
    fast_image_pull: bool = False
    """The cluster's GPU nodes pull with FastImagePull (``cluster.fastImagePull.enabled``): the modelled
    cold start, which the predictive trigger looks ahead by, counts the parallel pull."""
    router_crds: Sequence[pulumi.Resource] = ()
    """In router mode: the InferencePool and InferenceObjective CRDs (``router.router_crds``)."""
    general_pool: Sequence[pulumi.Resource] = ()
    """In router mode: the general-purpose EC2NodeClass and NodePool the router runs on."""


class ModelService(pulumi.ComponentResource):
    """vLLM serving with NVMe model cache, honest readiness, graceful drain and scaling."""

    service_name: pulumi.Output[str]
    """The Kubernetes Service."""
    url: pulumi.Output[str]
    """In-cluster OpenAI-compatible endpoint, http://<service>.<namespace>.svc:8000."""
    deployments: dict[str, str]
    """role (baseline | burst | canary) -> Deployment name."""
    scaled_objects: list[str]
    """KEDA ScaledObject names (empty in hpa mode)."""

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:serving:ModelService", name, None, opts)
        svc, tier, ns = args.service, args.tier, args.service.namespace
        names = render.names(svc)
        in_ns = _after(self, args.namespace)
        monitoring = _after(self, args.namespace, args.monitoring_crds)

        sa = k8s.core.v1.ServiceAccount(child(name, "sa"), metadata={"name": names["service_account"], "namespace": ns},
                                        opts=in_ns)
        association = model_cache_reader(name, svc.model, cluster_name=args.cluster_name, namespace=ns,
                                         service_account=names["service_account"],
                                         opts=pulumi.ResourceOptions(parent=self))
        # What a pod of the service account needs at admission (its credentials are injected then).
        admission: list[pulumi.Resource] = [sa, *([association] if association is not None else [])]

        workloads = self._deployments(name, args, admission)
        self.deployments = {role: names[role] for role in workloads}
        k8s_service = self._services(name, args, in_ns)
        routed = routing.routed(svc)
        ingress = (routing.vllm_ingress if routed else network_policy.serving_ingress)(svc, ns, args.monitoring_namespace)
        policies = {"ingress": ingress, "egress": network_policy.serving_egress(svc, ns)}
        for role, pol in policies.items():
            k8s.networking.v1.NetworkPolicy(child(name, role), metadata=pol["metadata"], spec=pol["spec"], opts=in_ns)
        monitor = (routing.vllm_service_monitor if routed else render.service_monitor)(svc, ns,
                                                                                         args.scrape_interval_seconds)
        helm.monitoring_object(child(name, "monitor"), "ServiceMonitor", monitor, monitoring)
        helm.monitoring_object(child(name, "alerts"), "PrometheusRule", scaling.prometheus_rule(svc, ns), monitoring)

        self.scaled_objects = self._autoscaler(name, args, workloads["burst"]) if "burst" in workloads else []
        if svc.pre_pull:
            # Its init container downloads the model with the service account's credentials.
            ds = render.pre_pull_daemonset(svc, tier, ns, region=args.region)
            k8s.apps.v1.DaemonSet(child(name, "pre-pull"), metadata=ds["metadata"],
                                  spec=images.mirror_images(ds["spec"], args.mirror),
                                  opts=_after(self, args.namespace, *admission))

        if routed:
            Router(child(name, "router"), RouterArgs(
                service=svc, namespace=args.namespace, crds=args.router_crds, node_pools=args.general_pool,
                monitoring_crds=args.monitoring_crds, monitoring_namespace=args.monitoring_namespace,
                scrape_interval_seconds=args.scrape_interval_seconds, mirror=args.mirror), opts=pulumi.ResourceOptions(parent=self))
        self.service_name = k8s_service.metadata.apply(lambda m: m["name"])
        self.url = pulumi.Output.concat("http://", self.service_name, f".{ns}.svc:{render.PORT}")
        self.register_outputs({"service_name": self.service_name, "url": self.url,
                               "deployments": self.deployments, "scaled_objects": self.scaled_objects})

    def _services(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions) -> k8s.core.v1.Service:
        """The Service clients call (returned). In router mode it selects the router pods, and a
        headless Service over the vLLM pods remains for scraping only."""
        svc, ns = args.service, args.service.namespace
        if not routing.routed(svc):
            service = render.service(svc, ns)
        else:
            service = routing.public_service(svc, ns)
            pods = routing.pods_service(svc, ns)
            k8s.core.v1.Service(child(name, "pods"), metadata=pods["metadata"], spec=pods["spec"], opts=opts)
        return k8s.core.v1.Service(child(name, "service"), metadata=service["metadata"], spec=service["spec"],
                                   opts=opts)

    def _deployments(self, name: str, args: ModelServiceArgs,
                     admission: list[pulumi.Resource]) -> dict[str, k8s.apps.v1.Deployment]:
        """The baseline, burst and canary Deployments that the config asks for, each with its PDB.

        Each waits for what its pods need at admission (service account, Pod Identity association)
        and at scheduling (the tier's NodePools, the GPU Operator), and is awaited for as long as its
        rollout can take on a cold tier (``render.await_timeouts``)."""
        svc, ns = args.service, args.service.namespace
        needs = [*admission, *args.node_pools]
        roles: list[tuple[str, int | None]] = []
        if svc.scaling.min_replicas > 0:
            roles.append(("baseline", svc.scaling.min_replicas))
        if scaling.burst_max(svc) > 0:
            # Created at 0; from then on the autoscaler owns spec.replicas.
            roles.append(("burst", 0))
        if svc.canary is not None:
            roles.append(("canary", svc.canary.replicas))
        workloads = {}
        for role_name, replicas in roles:
            manifest = render.deployment(svc, args.tier, role_name, ns, replicas, region=args.region)
            ignore = ["spec.replicas"] if role_name == "burst" else None
            timeouts = render.await_timeouts(svc, args.tier, role_name)
            workloads[role_name] = k8s.apps.v1.Deployment(
                child(name, role_name), metadata=manifest["metadata"], spec=images.mirror_images(manifest["spec"], args.mirror),
                opts=pulumi.ResourceOptions.merge(_after(self, args.namespace, args.gpu_operator, *needs),
                                                  pulumi.ResourceOptions(
                    ignore_changes=ignore,
                    custom_timeouts=pulumi.CustomTimeouts(create=timeouts["create"], update=timeouts["update"]))))
            pdb = render.pod_disruption_budget(svc, role_name, ns)
            k8s.policy.v1.PodDisruptionBudget(child(name, f"{role_name}-pdb"), metadata=pdb["metadata"],
                                              spec=pdb["spec"], opts=_after(self, args.namespace))
        return workloads

    def _autoscaler(self, name: str, args: ModelServiceArgs, burst: k8s.apps.v1.Deployment) -> list[str]:
        """The burst Deployment's KEDA ScaledObject (or HPA); returns the ScaledObject names."""
        svc, ns = args.service, args.service.namespace
        if svc.scaling.mode != "keda":
            h = scaling.hpa(svc, ns)
            k8s.autoscaling.v2.HorizontalPodAutoscaler(child(name, "hpa"), metadata=h["metadata"], spec=h["spec"],
                                                       opts=_after(self, args.namespace, burst))
            return []
        ahead = scaling.lookahead_seconds(svc, args.tier.instance_types, fast_image_pull=args.fast_image_pull)
        modelled = scaling.modelled_cold_start_seconds(svc, args.tier.instance_types, fast_image_pull=args.fast_image_pull)
        so = pulumi.Output.from_input(args.prometheus_url).apply(
            lambda url: scaling.scaled_object(svc, ns, url, ahead, modelled))
        k8s.apiextensions.CustomResource(
            child(name, "scaler"), api_version="keda.sh/v1alpha1", kind="ScaledObject",
            metadata=scaling.scaled_object(svc, ns, "", ahead, modelled)["metadata"], spec=so.apply(lambda o: o["spec"]),
            opts=_after(self, args.namespace, args.keda_crds, burst))
        return [render.names(svc)["scaled_object"]]


def _after(parent: pulumi.Resource, *needs: pulumi.Resource | None) -> pulumi.ResourceOptions:
    """Options of a child that waits for ``needs`` (those given: a consumer stack may pass none)."""
    return pulumi.ResourceOptions(parent=parent, depends_on=[n for n in needs if n is not None])
