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

# vLLM >= 0.18 is required for --shutdown-timeout (graceful drain); >= 0.12 for the
# current metric names (vllm:kv_cache_usage_perc).
VLLM_IMAGE = "vllm/vllm-openai:v0.33.0"
# The model-cache init container: the AWS CLI image syncs from S3.
MODEL_CACHE_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.31.12"
REDIS_IMAGE = "redis:7.4.6-alpine"
# The pre-pull DaemonSet's idle container.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
