"""KEDA operator metric names, from kedacore/keda v2.20.2 pkg/metricscollector/prommetrics.go
(Namespace "keda"; the pinned chart in components/versions.py)."""

from __future__ import annotations

# scalerErrors: Subsystem "scaler", Name "detail_errors_total"; labels namespace, metric,
# scaledObject, scaler, triggerIndex, type.
SCALER_ERRORS = "keda_scaler_detail_errors_total"
# emptyUpstreamResponses (v2.20.0, #7062): Subsystem "scaler", Name "empty_upstream_responses_total";
# labels namespace, scaledResource, triggerName, metricName, resourceType, ignoreNullValues.
EMPTY_UPSTREAM_RESPONSES = "keda_scaler_empty_upstream_responses_total"

METRICS = frozenset({SCALER_ERRORS, EMPTY_UPSTREAM_RESPONSES})

# Chart (keda 2.20.2) templates/manager/servicemonitor.yaml: with prometheus.operator.enabled
# the operator Service exposes port "metrics", selected by app.kubernetes.io/name.
OPERATOR_SERVICE_LABEL = {"app.kubernetes.io/name": "keda-operator"}
METRICS_PORT = "metrics"
