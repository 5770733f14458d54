"""Grafana dashboards (JSON model) for vLLM and the DCGM exporter, as ConfigMap data.

Every query names only metrics that vLLM >= 0.12 and the GPU Operator's DCGM exporter
emit (``platform_facts.vllm.METRIC_FAMILIES`` and ``platform_facts.dcgm.METRICS``); a test
checks each expression.
"""

from __future__ import annotations

import json
from typing import Any


def _panel(pid: int, title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "expr": e, "legendFormat": legend} for i, (e, legend) in enumerate(exprs)],
    }


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]], var_query: str, var: str) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["gpu-platform"],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-3h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": var, "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": var_query, "includeAll": True, "multi": True, "refresh": 2},
        ]},
        "panels": panels,
    }


def _q(quantile: float, hist: str) -> str:
    return f'histogram_quantile({quantile}, sum by (le, model_name) (rate({hist}_bucket{{model_name=~"$model"}}[5m])))'


def vllm() -> dict[str, Any]:
    sel = '{model_name=~"$model"}'
    panels = [
        _panel(1, "Requests waiting (queue)", [(f"sum by (model_name) (vllm:num_requests_waiting{sel})", "{{model_name}}")], "short", 0, 0),
        _panel(2, "Requests running", [(f"sum by (model_name) (vllm:num_requests_running{sel})", "{{model_name}}")], "short", 12, 0),
        _panel(3, "KV cache usage", [(f"max by (model_name, pod) (vllm:kv_cache_usage_perc{sel})", "{{pod}}")], "percentunit", 0, 8),
        _panel(4, "Time to first token", [(_q(q, "vllm:time_to_first_token_seconds"), f"p{int(q * 100)} {{{{model_name}}}}")
                                          for q in (0.5, 0.95, 0.99)], "s", 12, 8),
        _panel(5, "End-to-end latency", [(_q(q, "vllm:e2e_request_latency_seconds"), f"p{int(q * 100)} {{{{model_name}}}}")
                                         for q in (0.5, 0.95, 0.99)], "s", 0, 16),
        _panel(6, "Tokens per second", [
            (f"sum by (model_name) (rate(vllm:generation_tokens_total{sel}[5m]))", "generated {{model_name}}"),
            (f"sum by (model_name) (rate(vllm:prompt_tokens_total{sel}[5m]))", "prompt {{model_name}}"),
        ], "short", 12, 16),
        _panel(7, "Preemptions per second", [(f"sum by (model_name) (rate(vllm:num_preemptions_total{sel}[5m]))", "{{model_name}}")], "short", 0, 24),
        _panel(8, "Queue time", [(_q(0.95, "vllm:request_queue_time_seconds"), "p95 {{model_name}}")], "s", 12, 24),
    ]
    return _dashboard("gpu-platform-vllm", "vLLM serving", panels, "label_values(vllm:num_requests_running, model_name)", "model")


def dcgm() -> dict[str, Any]:
    # The DCGM "Hostname" label was renamed upstream; select only on pod attribution labels.
    sel = '{namespace=~"$namespace"}'
    panels = [
        _panel(1, "GPU utilization", [(f"avg by (pod, gpu) (DCGM_FI_DEV_GPU_UTIL{sel})", "{{pod}} gpu{{gpu}}")], "percent", 0, 0),
        _panel(2, "Graphics engine active", [(f"avg by (pod, gpu) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{sel})", "{{pod}} gpu{{gpu}}")],
               "percentunit", 12, 0),
        _panel(3, "Framebuffer memory used", [(f"sum by (pod, gpu) (DCGM_FI_DEV_FB_USED{sel})", "{{pod}} gpu{{gpu}}")], "decmbytes", 0, 8),
        _panel(4, "Power", [(f"sum by (pod, gpu) (DCGM_FI_DEV_POWER_USAGE{sel})", "{{pod}} gpu{{gpu}}")], "watt", 12, 8),
        _panel(5, "Temperature", [(f"max by (pod, gpu) (DCGM_FI_DEV_GPU_TEMP{sel})", "{{pod}} gpu{{gpu}}")], "celsius", 0, 16),
        _panel(6, "XID errors", [(f"max by (pod, gpu) (DCGM_FI_DEV_XID_ERRORS{sel})", "{{pod}} gpu{{gpu}}")], "short", 12, 16),
    ]
    return _dashboard("gpu-platform-dcgm", "GPUs (DCGM)", panels, "label_values(DCGM_FI_DEV_GPU_UTIL, namespace)", "namespace")


def configmap_data() -> dict[str, dict[str, str]]:
    """ConfigMap name -> data (file name -> dashboard JSON)."""
    return {
        "dashboard-vllm": {"vllm.json": json.dumps(vllm(), indent=1, sort_keys=True)},
        "dashboard-dcgm": {"dcgm.json": json.dumps(dcgm(), indent=1, sort_keys=True)},
    }
