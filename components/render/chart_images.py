"""Chart images through the pull-through cache, where the chart lets us set the registry.

Each table lists, per chart at its pinned version, the values path of an image and the
registry and repository the chart's default values.yaml gives it (a test holds the parent
charts' entries equal to the vendored defaults). ``overrides`` maps them through
``images.image_ref`` and returns only what moves, for a deep merge into the chart values.

Left as they are (README, "Egress"): the GPU Operator and its operands (nvcr.io, which ECR
cannot cache), the Karpenter controller (pinned by digest in the chart; pulls by digest
through a cache rule are not established here, and it comes from ECR Public, not Docker Hub),
and images the chart does not let us split into registry and repository.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.render.images import Mirror, chart_image, image_ref


@dataclass(frozen=True)
class ChartImage:
    path: tuple[str, ...]
    """Where the image's map sits in the chart values."""
    registry: str | None
    """The chart's ``registry`` default; None when the chart has one ``repository`` with the host in it."""
    repository: str


KUBE_PROMETHEUS_STACK: tuple[ChartImage, ...] = (
    ChartImage(("crds", "upgradeJob", "image", "busybox"), "docker.io", "busybox"),
    ChartImage(("crds", "upgradeJob", "image", "kubectl"), "registry.k8s.io", "kubectl"),
    ChartImage(("alertmanager", "alertmanagerSpec", "image"), "quay.io", "prometheus/alertmanager"),
    ChartImage(("prometheusOperator", "admissionWebhooks", "deployment", "image"), "quay.io",
               "prometheus-operator/admission-webhook"),
    ChartImage(("prometheusOperator", "admissionWebhooks", "patch", "image"), "ghcr.io", "jkroepke/kube-webhook-certgen"),
    ChartImage(("prometheusOperator", "image"), "quay.io", "prometheus-operator/prometheus-operator"),
    ChartImage(("prometheusOperator", "prometheusConfigReloader", "image"), "quay.io",
               "prometheus-operator/prometheus-config-reloader"),
    ChartImage(("prometheus", "prometheusSpec", "image"), "quay.io", "prometheus/prometheus"),
)
# Subcharts pinned by kube-prometheus-stack 88.5.3 (grafana 12.11.1, kube-state-metrics 8.4.0,
# prometheus-node-exporter 4.56.1), values under the subchart's key. node-exporter runs on
# every node, GPU nodes included: the image a node churn pulls most.
KUBE_PROMETHEUS_STACK_SUBCHARTS: tuple[ChartImage, ...] = (
    ChartImage(("grafana", "image"), "docker.io", "grafana/grafana"),
    ChartImage(("grafana", "sidecar", "image"), "quay.io", "kiwigrid/k8s-sidecar"),
    ChartImage(("kube-state-metrics", "image"), "registry.k8s.io", "kube-state-metrics/kube-state-metrics"),
    ChartImage(("prometheus-node-exporter", "image"), "quay.io", "prometheus/node-exporter"),
)
PROMETHEUS_ADAPTER: tuple[ChartImage, ...] = (
    ChartImage(("image",), None, "registry.k8s.io/prometheus-adapter/prometheus-adapter"),
)
# ghcr.io: moved only when the stack gives GitHub credentials (a rule for github-container-registry).
KEDA: tuple[ChartImage, ...] = (
    ChartImage(("image", "keda"), "ghcr.io", "kedacore/keda"),
    ChartImage(("image", "metricsApiServer"), "ghcr.io", "kedacore/keda-metrics-apiserver"),
    ChartImage(("image", "webhooks"), "ghcr.io", "kedacore/keda-admission-webhooks"),
)
# The operator and its operands are on nvcr.io; only the node-feature-discovery subchart
# (0.19.0) comes from a registry ECR caches. Its workers run on every node.
GPU_OPERATOR_SUBCHARTS: tuple[ChartImage, ...] = (
    ChartImage(("node-feature-discovery", "image"), None, "registry.k8s.io/nfd/node-feature-discovery"),
)


def _moved(image: ChartImage, mirror: Mirror | None) -> dict[str, str] | None:
    if image.registry is None:
        mapped = image_ref(image.repository, mirror)
        return None if mapped == image.repository else {"repository": mapped}
    registry, repository = chart_image(image.registry, image.repository, mirror)
    return None if registry == image.registry else {"registry": registry, "repository": repository}


def overrides(table: Sequence[ChartImage], mirror: Mirror | None) -> dict[str, Any]:
    """The values that move the table's images through the cache (empty when none moves)."""
    out: dict[str, Any] = {}
    for image in table:
        moved = _moved(image, mirror)
        if moved is None:
            continue
        node = out
        for key in image.path:
            node = node.setdefault(key, {})
        node.update(moved)
    return out


def merge(values: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with ``extra`` merged in, maps key by key (``extra`` wins on a scalar)."""
    out = dict(values)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
