"""Monitoring: kube-prometheus-stack (Prometheus, Alertmanager, Grafana with dashboards)
and the Prometheus Adapter for HPAs on vLLM pod metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import helm, versions
from components.cluster import SYSTEM_PLACEMENT
from components.config import MonitoringConfig
from components.naming import child
from components.render import addons as render
from components.render import chart_images, dashboards
from components.render import karpenter as karpenter_render
from components.render.images import Mirror

# The Karpenter component's release name: the chart's Service carries it as
# app.kubernetes.io/instance (a test checks the two agree).
KARPENTER_RELEASE = "karpenter"


@dataclass(frozen=True)
class MonitoringArgs:
    config: MonitoringConfig
    """Retention, storage, scrape interval, Grafana on or off."""
    storage_class: k8s.storage.v1.StorageClass
    """The class Prometheus's volume claims (``GpuCluster.storage_class``); the release waits for it."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What the charts wait for: the nodes they are pinned to (the system node group)."""
    mirror: Mirror | None = None
    """The stack's ECR pull-through cache: chart images whose registry the chart lets us set go through it."""


class Monitoring(pulumi.ComponentResource):
    """Prometheus selecting monitors and rules in every namespace, Grafana, the adapter."""

    prometheus_url: pulumi.Output[str]
    """In-cluster Prometheus URL (stable: fullnameOverride), e.g. for KEDA triggers."""
    grafana_service: pulumi.Output[str]
    """Grafana Service as <namespace>/<name> ("" when Grafana is off)."""
    namespace: pulumi.Output[str]
    """The monitoring namespace."""
    release: k8s.helm.v3.Release
    """kube-prometheus-stack: ServiceMonitors and PrometheusRules depend on its CRDs."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:addons:Monitoring", name, None, opts)
        ns = helm.namespace(child(name, "namespace"), render.MONITORING_NAMESPACE, pulumi.ResourceOptions(parent=self))
        after_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns, args.storage_class, *args.depends_on])
        kps_images = chart_images.overrides(
            chart_images.KUBE_PROMETHEUS_STACK + chart_images.KUBE_PROMETHEUS_STACK_SUBCHARTS, args.mirror)
        values = args.storage_class.metadata.apply(
            lambda m: chart_images.merge(render.kube_prometheus_stack(args.config, SYSTEM_PLACEMENT, storage_class=m["name"]),
                                         kps_images))
        self.release = helm.release(
            child(name, "kube-prometheus-stack"), versions.KUBE_PROMETHEUS_STACK, release_name="kps",
            namespace=render.MONITORING_NAMESPACE, values=values, opts=after_ns)
        helm.release(child(name, "prometheus-adapter"), versions.PROMETHEUS_ADAPTER, release_name="prometheus-adapter",
                     namespace=render.MONITORING_NAMESPACE, values=chart_images.merge(
                         render.prometheus_adapter(SYSTEM_PLACEMENT),
                         chart_images.overrides(chart_images.PROMETHEUS_ADAPTER, args.mirror)),
                     opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]))
        # The platform's own controllers: scraped and alerted on once the CRDs exist.
        after_release = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        for monitor in render.platform_monitors(karpenter_render.NAMESPACE, KARPENTER_RELEASE):
            helm.monitoring_object(child(name, f"{monitor['metadata']['name']}-monitor"), "ServiceMonitor", monitor,
                                   after_release)
        helm.monitoring_object(child(name, "platform-alerts"), "PrometheusRule", render.platform_rules(), after_release)
        if args.config.grafana_enabled:
            for cm_name, data in dashboards.configmap_data().items():
                k8s.core.v1.ConfigMap(
                    child(name, cm_name),
                    metadata={"name": cm_name, "namespace": render.MONITORING_NAMESPACE,
                              "labels": {render.DASHBOARD_LABEL: "1"}},
                    data=data, opts=pulumi.ResourceOptions(parent=self, depends_on=[ns]))
        self.namespace = ns.metadata.apply(lambda m: m["name"])
        # The URL is fixed by fullnameOverride; deriving it from the release makes users wait for it.
        self.prometheus_url = self.release.status.apply(lambda _: render.prometheus_url())
        grafana = f"{render.MONITORING_NAMESPACE}/{render.KPS_FULLNAME}-grafana" if args.config.grafana_enabled else ""
        self.grafana_service = self.release.status.apply(lambda _: grafana)
        self.register_outputs({"prometheus_url": self.prometheus_url, "grafana_service": self.grafana_service,
                               "namespace": self.namespace, "release": self.release})
