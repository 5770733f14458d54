"""The router-wake trigger on a real engine: dev's scale-to-zero service put behind the router
(no stack routes a service without a baseline, so the stack-wide promtool suite never sees it)."""

from __future__ import annotations

from types import SimpleNamespace

from components.render import scaling
from tests.conftest import load_with
from tests.promql_kit import run_promtool_tests
from tests.router_trigger_cases import ROUTER_SITUATIONS
from tests.test_router import _routed


def test_wake_from_zero_without_active_hours(promtool, tmp_path):
    (svc,) = load_with("dev", _routed).model_services
    assert svc.scaling.min_replicas == 0 and svc.scaling.active_hours is None and svc.scaling.wake_query is None
    triggers = {t["name"]: t for t in scaling.scaled_object(svc, svc.namespace, "http://p")["spec"]["triggers"]}
    assert {"router-queue", "router-wake"} <= set(triggers) and "active-hours" not in triggers
    served = SimpleNamespace(config=svc, namespace=svc.namespace)
    tests = []
    for name in ("router-wake", "router-queue"):
        for case in ROUTER_SITUATIONS[name](served, triggers[name]):
            tests.append({"name": f"{name}: {case.name}", "interval": "1m", "input_series": case.input_series,
                          "promql_expr_test": [{"expr": triggers[name]["metadata"]["query"], "eval_time": "5m",
                                                "exp_samples": [{"labels": "{}", "value": case.expected}]}]})
    proc = run_promtool_tests(promtool, tmp_path, [], tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
