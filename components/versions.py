"""Every pinned chart and image version, in one place.

Charts are pinned to the releases whose default values are vendored under
``tests/upstream/charts`` (see its PROVENANCE.md): a bump here must come with the new
values.yaml so the values checks keep meaning something.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    chart: str
    version: str
    repository: str | None  # None for OCI charts, whose address is the chart itself


KARPENTER_VERSION = "1.14.1"

KARPENTER_CRD = Chart("oci://public.ecr.aws/karpenter/karpenter-crd", KARPENTER_VERSION, None)
KARPENTER = Chart("oci://public.ecr.aws/karpenter/karpenter", KARPENTER_VERSION, None)
KUBE_PROMETHEUS_STACK = Chart(
    "kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts"
)
PROMETHEUS_ADAPTER = Chart(
    "prometheus-adapter", "5.3.0", "https://prometheus-community.github.io/helm-charts"
)
KEDA = Chart("keda", "2.20.2", "https://kedacore.github.io/charts")
# GPU Operator versions carry a leading "v" (the docs install with --version=v26.7.0).
GPU_OPERATOR = Chart("gpu-operator", "v26.7.0", "https://helm.ngc.nvidia.com/nvidia")

# EKS add-ons: versions AWS lists for our Kubernetes versions (re-check with
# `aws eks describe-addon-versions --addon-name <name> --kubernetes-version <v>` on a bump).
# v1.66.0-eksbuild.1 is the EBS CSI default for 1.36 (2026-09) and is offered for 1.33-1.36.
EBS_CSI_DRIVER_ADDON = "v1.66.0-eksbuild.1"
# CoreDNS add-on builds follow the control-plane version (EKS user guide, "Manage CoreDNS":
# 1.34 -> v1.13.2-eksbuild.7, 1.35 -> v1.14.2-eksbuild.4). 1.33 takes the 1.34 build and 1.36
# the 1.35 build: confirm both with describe-addon-versions before deploying those versions.
COREDNS_ADDON = {
    "1.33": "v1.13.2-eksbuild.7",
    "1.34": "v1.13.2-eksbuild.7",
    "1.35": "v1.14.2-eksbuild.4",
    "1.36": "v1.14.2-eksbuild.4",
}
# kube-prometheus-stack's CRD upgrade job copies the CRDs with busybox (chart default: latest).
KPS_CRD_UPGRADE_BUSYBOX_TAG = "1.37.0"

# vLLM >= 0.18 is required for --shutdown-timeout (graceful drain); >= 0.12 for the
# current metric names (vllm:kv_cache_usage_perc).
VLLM_IMAGE = "vllm/vllm-openai:v0.33.0"
# The model-cache init container: the AWS CLI image syncs from S3.
MODEL_CACHE_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.31.12"
REDIS_IMAGE = "redis:7.4.6-alpine"
# The pre-pull DaemonSet's idle container.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
# llm-d Router, standalone mode (Endpoint Picker + Envoy sidecar, no Gateway controller). The
# published chart's version is the release tag; its values.yaml in git says image tag "main", which
# the release tooling rewrites to the tag at packaging, so we set the EPP image explicitly.
LLMD_ROUTER = Chart("oci://ghcr.io/llm-d/charts/llm-d-router-standalone", "v0.10.0", None)
# The chart's Envoy preset image (standalone values.yaml, presets.envoy), set explicitly as
# router.proxy.image so it can go through the pull-through cache (Docker Hub).
LLMD_ENVOY_IMAGE = "docker.io/envoyproxy/envoy:distroless-v1.33.2"
LLMD_EPP_IMAGE = {"registry": "ghcr.io/llm-d", "repository": "llm-d-router-endpoint-picker", "tag": "v0.10.0",
                  "pullPolicy": "IfNotPresent"}
