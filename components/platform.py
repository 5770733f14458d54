"""Platform: every component of one environment, wired in dependency order.

This is the only place that turns the whole ``StackConfig`` into component args: each
component gets exactly what it needs, so each can also be used on its own.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.batch import BatchInference, BatchInferenceArgs
from components.cluster import GpuCluster, GpuClusterArgs
from components.config import StackConfig
from components.config.levers import buffer_chunk
from components.gpu_operator import GpuOperator, GpuOperatorArgs
from components.helm import namespace
from components.karpenter import Karpenter, KarpenterArgs
from components.keda import Keda, KedaArgs
from components.model_service import ModelService, ModelServiceArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.naming import child
from components.render import addons as render_addons
from components.render import batch as render_batch
from components.render import images, network_policy
from components.render import router as render_router
from components.render.pod_security import workload_namespace_level
from components.router import router_crds
from components.stack import secret_if_marked
from components.warm_capacity import WarmCapacity, WarmCapacityArgs


class Platform(pulumi.ComponentResource):
    """The whole GPU inference platform for one stack."""

    cluster: GpuCluster
    """The EKS cluster, its network and system nodes."""
    karpenter: Karpenter
    """Karpenter and the GPU NodePools."""
    monitoring: Monitoring
    """kube-prometheus-stack, Grafana dashboards, Prometheus Adapter."""
    keda: Keda
    """KEDA (ScaledObjects, ScaledJobs)."""
    gpu_operator: GpuOperator
    """NVIDIA GPU Operator with the DCGM exporter."""
    services: dict[str, ModelService]
    """The stack's model services by name."""
    batch: dict[str, BatchInference]
    """The stack's batch workers by name."""
    outputs: dict[str, pulumi.Input[object]]
    """The stack outputs consumers read through a StackReference (``export()`` exports them)."""

    def __init__(self, name: str, args: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:index:Platform", name, None, opts)
        p = pulumi.ResourceOptions(parent=self)
        tags = secret_if_marked("tags", args.tags)  # a `secure:` tag value stays a secret in every resource
        self.cluster = GpuCluster(child(name, "cluster"), GpuClusterArgs(args.cluster, args.region, tags), opts=p)
        mirror = self._mirror(args)  # our images through the stack's pull-through cache, when on
        # Everything in the cluster inherits its Kubernetes provider through the parent.
        in_cluster = pulumi.ResourceOptions(parent=self, providers=[self.cluster.provider])
        routed = [s for s in args.model_services if render_router.routed(s)]
        self.karpenter = Karpenter(child(name, "karpenter"), KarpenterArgs(
            cluster=self.cluster.ref(), region=args.region, tiers=args.gpu_tiers,
            on_demand_gpu_limits={t.name: args.on_demand_gpu_limit(t.name) for t in args.gpu_tiers},
            tags=tags, pull_through_cache=args.cluster.egress.pull_through_cache,
            fast_image_pull=args.cluster.fast_image_pull,
            general_cpu_millicores=_general_cpu_millicores(args)), opts=in_cluster)
        system = (self.cluster.system_node_group,)
        self.monitoring = Monitoring(child(name, "monitoring"), MonitoringArgs(
            args.addons.monitoring, storage_class=self.cluster.storage_class, depends_on=system, mirror=mirror),
            opts=in_cluster)
        self.keda = Keda(child(name, "keda"), KedaArgs(args.addons.keda, system, mirror), opts=in_cluster)
        # After Monitoring: the DCGM exporter's ServiceMonitor needs the prometheus-operator CRDs.
        self.gpu_operator = GpuOperator(child(name, "gpu-operator"), GpuOperatorArgs(
            args.addons.gpu_operator, args.gpu_tiers, depends_on=(self.monitoring.release, *system), mirror=mirror), opts=in_cluster)
        service_namespaces = self._workload_namespaces(name, args, in_cluster)
        self._default_deny(name, args, service_namespaces, in_cluster)
        crds = router_crds(child(name, "router"), in_cluster) if routed else []
        self.services = {
            s.name: ModelService(
                child(name, s.name),
                ModelServiceArgs(
                    service=s, tier=args.tier(s.tier), cluster_name=self.cluster.cluster_name,
                    prometheus_url=self.monitoring.prometheus_url, region=args.region,
                    scrape_interval_seconds=args.addons.monitoring.scrape_interval_seconds,
                    namespace=service_namespaces[s.namespace], node_pools=self.karpenter.tier_capacity[s.tier],
                    gpu_operator=self.gpu_operator.release, monitoring_crds=self.monitoring.release,
                    keda_crds=self.keda.release, monitoring_namespace=render_addons.MONITORING_NAMESPACE, mirror=mirror,
                    router_crds=crds, general_pool=self.karpenter.general_capacity,
                    fast_image_pull=args.cluster.fast_image_pull.enabled),
                opts=in_cluster)
            for s in args.model_services
        }
        self.batch = {
            b.name: BatchInference(
                child(name, b.name),
                BatchInferenceArgs(worker=b, tier=args.tier(b.tier), cluster_name=self.cluster.cluster_name,
                                   region=args.region, namespace=service_namespaces[b.namespace],
                                   node_pools=self.karpenter.tier_capacity[b.tier],
                                   gpu_operator=self.gpu_operator.release, keda_crds=self.keda.release,
                                   storage_class=self.cluster.storage_class, mirror=mirror,
                                   general_pool=self.karpenter.general_capacity),
                opts=in_cluster)
            for b in args.batch_workers
        }
        self._warm_capacity(name, args, in_cluster, mirror)
        self.outputs = self._stack_outputs(args, list(service_namespaces.values()))
        self.register_outputs({
            "cluster": self.cluster, "karpenter": self.karpenter, "monitoring": self.monitoring, "keda": self.keda,
            "gpu_operator": self.gpu_operator, "services": self.services, "batch": self.batch,
            "outputs": self.outputs,
        })

    @staticmethod
    def _workload_namespaces(name: str, args: StackConfig, in_cluster: pulumi.ResourceOptions) -> dict[str, k8s.core.v1.Namespace]:
        """The namespaces of the model services and batch workers. Pod Security: a namespace whose
        pods mount the node's hostPath model cache can only be privileged (baseline forbids
        hostPath); the others enforce restricted."""
        host_path = _host_path_namespaces(args)
        # The llm-d Router chart (v0.10.0) sets no securityContext on the EPP container and has no
        # value for one, so a namespace with a router can enforce at most baseline.
        routed_ns = {s.namespace for s in args.model_services if render_router.routed(s)}
        return {
            ns: namespace(child(name, f"ns-{ns}"), ns, in_cluster,
                          enforce=workload_namespace_level(ns in host_path, routed=ns in routed_ns))
            for ns in sorted({s.namespace for s in args.model_services} | {b.namespace for b in args.batch_workers})
        }

    @staticmethod
    def _mirror(args: StackConfig) -> images.Mirror | None:
        """Where our images are pulled through the stack's cache rules (None when the cache is off)."""
        cache = args.cluster.egress.pull_through_cache
        if not cache.enabled:
            return None
        return images.mirror_for(cache, account=aws.get_caller_identity().account_id, region=args.region)

    def _warm_capacity(self, name: str, args: StackConfig, in_cluster: pulumi.ResourceOptions,
                       mirror: images.Mirror | None) -> None:
        """Warm GPU capacity for the tiers with a capacityBuffer (after their NodePools)."""
        chunks = {t.name: (t, c) for t in args.gpu_tiers if (c := buffer_chunk(args, t)) is not None}
        if chunks:
            WarmCapacity(child(name, "warm-capacity"), WarmCapacityArgs(
                chunks, {t: self.karpenter.tier_capacity[t] for t in chunks}, mirror), opts=in_cluster)

    def _default_deny(self, name: str, args: StackConfig, namespaces: Mapping[str, pulumi.Resource],
                      in_cluster: pulumi.ResourceOptions) -> None:
        """A namespace that serves models accepts no connection that a policy does not allow (each
        ModelService allows its consumers and Prometheus; BatchInference its Redis clients)."""
        for ns in sorted({s.namespace for s in args.model_services}):
            deny = network_policy.default_deny_ingress(ns)
            k8s.networking.v1.NetworkPolicy(
                child(name, f"ns-{ns}-deny"), metadata=deny["metadata"], spec=deny["spec"],
                opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[namespaces[ns]])))

    def _stack_outputs(self, args: StackConfig, workload_namespaces: list) -> dict[str, pulumi.Input[object]]:
        return {
            "clusterName": self.cluster.cluster_name,
            "kubeconfig": self.cluster.kubeconfig,
            "oidcIssuer": self.cluster.oidc_issuer,
            "nodePools": self.karpenter.node_pools,
            "gpuTiers": [t.name for t in args.gpu_tiers],
            # Full tier specs, so consumer stacks validate their services against them.
            "gpuTierSpecs": [t.model_dump(mode="json", by_alias=True) for t in args.gpu_tiers],
            "karpenterNodeRoleName": self.karpenter.node_role_name,
            "systemNodeRoleName": self.cluster.system_node_role_name,
            "interruptionQueueName": self.karpenter.interruption_queue_name,
            "prometheusUrl": self.monitoring.prometheus_url,
            "grafanaService": self.monitoring.grafana_service,
            "services": {n: {"url": m.url, "deployments": m.deployments, "scaledObjects": m.scaled_objects}
                         for n, m in self.services.items()},
            "batch": {n: {"redisAddress": b.redis_address, "queue": b.queue_name, "scaledJob": b.scaled_job_name}
                      for n, b in self.batch.items()},
            "namespaces": pulumi.Output.all(
                monitoring=self.monitoring.namespace, keda=self.keda.namespace, gpuOperator=self.gpu_operator.namespace),
            "workloadNamespaces": [ns.metadata.apply(lambda m: m["name"]) for ns in workload_namespaces],
            "environment": args.environment,
            "region": args.region,
        }

    def export(self) -> None:
        """Export the outputs consumers need as stack outputs (StackReference them)."""
        for key, value in self.outputs.items():
            pulumi.export(key, value)


def _general_cpu_millicores(args: StackConfig) -> int:
    """CPU the general-purpose NodePool must hold: the routers and the batch workers' own Redis."""
    return (sum(render_router.cpu_millicores(s) for s in args.model_services if render_router.routed(s))
            + render_batch.REDIS_CPU_MILLICORES * sum(1 for b in args.batch_workers if b.redis is None))


def _host_path_namespaces(args: StackConfig) -> set[str]:
    """Namespaces whose pods mount the node's hostPath cache (a service streaming from S3 without a
    persisted compile cache mounts none)."""
    return {s.namespace for s in args.model_services if s.cache.medium == "hostPath"
            and (not s.loader.skips_cache or s.compile_cache.persist)} | {
        b.namespace for b in args.batch_workers if b.model is not None}
