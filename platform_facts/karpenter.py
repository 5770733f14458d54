"""Karpenter's own metric names and label values, from kubernetes-sigs/karpenter v1.14.1
(the core the pinned chart's controller is built on; components/versions.py)."""

from __future__ import annotations

# pkg/cloudprovider/metrics/cloudprovider.go: ErrorsTotal, Namespace "karpenter", Subsystem
# "cloudprovider", labels controller, method, provider, error. The AWS provider wraps its cloud
# provider in this decorator (metrics.Decorate), so every failed EC2 launch counts here.
CLOUDPROVIDER_ERRORS = "karpenter_cloudprovider_errors_total"
# The decorator's method label for a launch (decorator.Create: method := "Create").
CREATE_METHOD = "Create"
# GetErrorTypeLabelValue: the error label of an InsufficientCapacityError ("" when unknown).
INSUFFICIENT_CAPACITY_ERROR = "InsufficientCapacityError"

METRICS = frozenset({CLOUDPROVIDER_ERRORS})

# Chart (karpenter 1.14.1) templates/servicemonitor.yaml: the Service's metrics port name and
# the selector labels (karpenter.selectorLabels: name and instance).
METRICS_PORT = "http-metrics"
