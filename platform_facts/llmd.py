"""llm-d Router (Endpoint Picker + Envoy) facts at the pinned release, llm-d/llm-d-router v0.10.0
(commit 71f4f0999f95b96c49a9d0c4afbd18dfdb943c26; the chart in components/versions.py).

Metric names are from pkg/epp/metrics/llm_d_router_metrics.go (``Subsystem:
LLMDRouterEndpointPickerSubsystem = "llm_d_epp"``, so every name is ``llm_d_epp_<Name>``);
docs/metrics.md lists the same. A PromQL expression may only use the names below
(tests/test_router_promql.py), so a misspelling fails a test instead of a silent empty query.
"""

from __future__ import annotations

PREFIX = "llm_d_epp_"

# Pool gauges, label {name} = the InferencePool name (poolLabels).
READY_ENDPOINTS = PREFIX + "ready_endpoints"
AVERAGE_QUEUE_SIZE = PREFIX + "average_queue_size"  # mean vLLM waiting queue over the pool's endpoints
AVERAGE_KV_CACHE_UTILIZATION = PREFIX + "average_kv_cache_utilization"
# Request counters, labels model_name, target_model_name, fairness_id, priority (+ error_code).
REQUEST_TOTAL = PREFIX + "request_total"
REQUEST_ERROR_TOTAL = PREFIX + "request_error_total"
# Flow control (only with the ``flowControl`` feature gate). Labels fairness_id, priority,
# inference_pool, model_name, target_model_name: requests held in the EPP, not yet dispatched.
FLOW_CONTROL_QUEUE_SIZE = PREFIX + "flow_control_queue_size"
# Label inference_pool. 1.0 is the gating set point; > 1.0 oversubscribed; an empty pool reads 1.0.
FLOW_CONTROL_POOL_SATURATION = PREFIX + "flow_control_pool_saturation"
# Labels outcome, priority, inference_pool. Outcomes: Dispatched, RejectedCapacity (HTTP 429),
# RejectedNoEndpoints (HTTP 503), RejectedOther, EvictedTTL, EvictedContextCancelled, EvictedOther.
FLOW_CONTROL_REQUESTS_TOTAL = PREFIX + "flow_control_requests_total"

METRICS = frozenset({READY_ENDPOINTS, AVERAGE_QUEUE_SIZE, AVERAGE_KV_CACHE_UTILIZATION, REQUEST_TOTAL,
                     REQUEST_ERROR_TOTAL, FLOW_CONTROL_QUEUE_SIZE, FLOW_CONTROL_POOL_SATURATION,
                     FLOW_CONTROL_REQUESTS_TOTAL})
# flow_control_requests_total outcomes that answer 429 (backpressure) or evict from the queue.
OUTCOME_REJECTED_CAPACITY = "RejectedCapacity"
OUTCOME_EVICTED_TTL = "EvictedTTL"
SHED_OUTCOMES = (OUTCOME_REJECTED_CAPACITY, OUTCOME_EVICTED_TTL)

# Ports (routerlib templates/_deployment.yaml and _service.yaml): EPP ext-proc, metrics; the
# Envoy sidecar's listener (standalone values.yaml: proxy listener "vllm" on 8081, Service port "http").
EXT_PROC_PORT = 9002
METRICS_PORT = 9090
METRICS_PORT_NAME = "http-metrics"
PROXY_PORT = 8081
# The header that selects an InferenceObjective (pkg/epp/metadata/consts.go ObjectiveKey).
OBJECTIVE_HEADER = "x-llm-d-inference-objective"

# Scorer plugin types (routerlib templates/_config.yaml, default-plugins.yaml).
PREFIX_CACHE_SCORER = "prefix-cache-scorer"
QUEUE_SCORER = "queue-scorer"
KV_CACHE_SCORER = "kv-cache-utilization-scorer"
# Default weights prefix : queue : KV cache = 2 : 2 : 1, the llm-d guides' default (llm-d/llm-d#1156).
# The chart's own default-plugins.yaml at v0.10.0 weighs them 3 : 2 : 2; we follow the guides.
DEFAULT_PREFIX_CACHE_WEIGHT = 2
DEFAULT_QUEUE_WEIGHT = 2
DEFAULT_KV_CACHE_WEIGHT = 1

# Flow control (apix/config/v1alpha1/endpointpickerconfig_types.go; pkg/epp/flowcontrol/README.md):
# off unless featureGates lists it; per-band maxRequests defaults to 5000 and maxBytes to 1G; the
# global caps default to unlimited; defaultRequestTTL defaults to 60s. With no endpoints in the pool
# the queue holds requests for the full TTL ("a scale-from-zero waiting room").
FLOW_CONTROL_GATE = "flowControl"
BAND_MAX_REQUESTS_DEFAULT = 5000
DEFAULT_REQUEST_TTL_SECONDS = 60

# InferenceObjective.spec.priority is an int32 (llm-d.ai_inferenceobjectives.yaml); below 0 = sheddable.
PRIORITY_MIN = -(2**31)
PRIORITY_MAX = 2**31 - 1

# Sizing (docs/operations.md at v0.10.0, measured with EPP 0.9.0 on a simulator):
# EPP 0.5-1.0 CPU per request/s for ~100k-input / 1k-output requests, scaling with prompt size;
# idle CPU grows with the pool (~7.5 cores at 100 model-server pods); 4-6 GiB at 50-100 req/s.
EPP_CPU_PER_RPS_AT_100K_TOKENS = 0.5
EPP_SIZING_PROMPT_TOKENS = 100_000
EPP_IDLE_CPU_PER_POD = 7.5 / 100
EPP_MEMORY_GIB_AT_50_RPS = 4
# Envoy: 1.2-2 cores below 10 req/s, >= 2 GiB (peak 1.3-1.4 GiB) (same guide).
ENVOY_CPU_BELOW_10_RPS = 1.2
ENVOY_MEMORY_GIB = 2
# Chart defaults we override (standalone values.yaml / routerlib values.yaml): EPP 8 CPU / 8 Gi
# (limit 16 Gi), Envoy 4 CPU / 8 Gi (limit 16 Gi).
CHART_EPP_REQUESTS = {"cpu": "8", "memory": "8Gi"}
CHART_PROXY_REQUESTS = {"cpu": "4", "memory": "8Gi"}

# Names the standalone chart gives its objects (routerlib templates/_helpers.tpl): the EPP
# Deployment and Service are "<release truncated to 40>-epp"; with inferencePool.create (our
# setting) its pods carry the label llm-d-router-gateway: <that name>.
CHART_NAME = "llm-d-router-standalone"
RELEASE_NAME_TRUNCATE = 40
EPP_SUFFIX = "-epp"
ROUTER_POD_LABEL = "llm-d-router-gateway"
