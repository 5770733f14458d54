"""Add one ModelService to a running gpu-platform cluster.

Everything that ties the service to the platform comes from the platform stack's
outputs: the kubeconfig (provider), the cluster name (Pod Identity), the Prometheus URL
(KEDA triggers) and the GPU tier's spec (validation and placement). Nothing is re-typed.
"""

import pulumi
import pulumi_kubernetes as k8s

from components import (
    ConfigError,
    GpuTier,
    ModelService,
    ModelServiceArgs,
    ModelServiceConfig,
    check_service_on_tier,
    load_model,
    read_output,
)

config = pulumi.Config()
platform = pulumi.StackReference(config.require("platformStack"))
service = load_model(ModelServiceConfig, config.require_object("service"), "service")

tiers = {t["name"]: load_model(GpuTier, t, "platform gpuTierSpecs") for t in read_output(platform, "gpuTierSpecs")}
if service.tier not in tiers:
    raise ConfigError([f"service.tier: {service.tier!r} is not a tier of the platform; it has: {', '.join(tiers)}"])
check_service_on_tier("service", service, tiers[service.tier], read_output(platform, "environment"))

provider = k8s.Provider("platform", kubeconfig=platform.require_output("kubeconfig"))
model_service = ModelService(
    service.name,
    ModelServiceArgs(
        service=service,
        tier=tiers[service.tier],
        cluster_name=platform.require_output("clusterName"),
        prometheus_url=platform.require_output("prometheusUrl"),
        region=read_output(platform, "region"),
    ),
    opts=pulumi.ResourceOptions(providers=[provider]),
)
pulumi.export("url", model_service.url)
pulumi.export("deployments", model_service.deployments)
