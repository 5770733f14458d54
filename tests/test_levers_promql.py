"""The predictive trigger's query evaluated by a real Prometheus (promtool) on a known ramp.

A counter c(t) = t^2 / 600 (t in seconds, one sample per 15 s) has a request rate that grows by
1/300 req/s every second. Prometheus' rate over [1m] at t is the increase between the first and
last samples in the window, scaled to the window, which for a quadratic is the derivative at the
sampled midpoint: Prometheus 2 reads the closed window (samples t-60 .. t): (t - 30) / 300;
Prometheus 3 left-opens it (t-45 .. t, extrapolated by 15 s): (t - 22.5) / 300. Either is linear
in t, so predict_linear over the subquery fits it exactly, and the prediction L seconds after an
evaluation at T is (T + L - offset) / 300. The query then subtracts what the fixed pods serve.
"""

from __future__ import annotations

import re
import subprocess

from components.render import scaling
from tests.conftest import load_with
from tests.promql_kit import promtool, run_promtool_tests  # noqa: F401  (promtool is a fixture)

STEP = 15
EVAL_SECONDS = 900
LOOKAHEAD = 300
PER_REPLICA = 1.0


def _service():
    def mutate(values: dict) -> None:
        values["modelServices"][0]["predictiveScaling"] = {"enabled": True, "requestsPerSecondPerReplica": PER_REPLICA}
    return load_with("prod", mutate).model_services[0]


def _midpoint_offset(promtool: str) -> float:  # noqa: F811
    """Seconds between an evaluation and the sampled midpoint of its [1m] window (see above)."""
    out = subprocess.run([promtool, "--version"], capture_output=True, text=True, timeout=30)
    major = int(re.search(r"version (\d+)\.", out.stdout + out.stderr).group(1))  # type: ignore[union-attr]
    return 30.0 if major < 3 else 22.5


def _counter(labels: str, samples: int) -> dict[str, str]:
    values = " ".join(repr((STEP * k) ** 2 / 600) for k in range(samples))
    return {"series": f"vllm:request_success_total{{{labels}}}", "values": values}


def test_predicted_rate_on_a_ramp_and_guarded_when_absent(promtool, tmp_path):  # noqa: F811
    svc = _service()
    query = scaling.predictive_query(svc, "inference", LOOKAHEAD)
    own = f'namespace="inference",service="{svc.name}"'
    baseline = own + ',pod="b-0",platform_gpu_role="baseline"'
    samples = EVAL_SECONDS // STEP + 1
    ramp = [
        _counter(baseline, samples),
        # One baseline pod reports (the waiting gauge counts the fixed pods): 1 x PER_REPLICA is theirs.
        {"series": f"vllm:num_requests_waiting{{{baseline}}}", "values": f"0x{samples}"},
        # Another service's requests are not this service's demand.
        _counter('namespace="inference",service="other-model",pod="o-0",platform_gpu_role="baseline"', samples),
    ]
    predicted = (EVAL_SECONDS + LOOKAHEAD - _midpoint_offset(promtool)) / 300  # 3.9 req/s (Prometheus 2)
    tests = [
        {"name": "ramp", "interval": f"{STEP}s", "input_series": ramp, "promql_expr_test": [
            # promtool 2.42 compares floats exactly; the regression leaves ~1e-15 of rounding.
            {"expr": f"round({query}, 0.000001)", "eval_time": f"{EVAL_SECONDS}s",
             "exp_samples": [{"labels": "{}", "value": round(predicted - PER_REPLICA, 6)}]}]},
        {"name": "absent", "interval": f"{STEP}s", "input_series": [], "promql_expr_test": [
            {"expr": query, "eval_time": f"{EVAL_SECONDS}s", "exp_samples": [{"labels": "{}", "value": 0}]}]},
        # A falling rate predicts below zero: floored at 0, never a negative demand.
        {"name": "falling", "interval": f"{STEP}s", "input_series": [
            {"series": f"vllm:request_success_total{{{baseline}}}",
             "values": " ".join(repr(3 * STEP * k - (STEP * k) ** 2 / 600) for k in range(samples))},
            {"series": f"vllm:num_requests_waiting{{{baseline}}}", "values": f"0x{samples}"}],
         "promql_expr_test": [{"expr": query, "eval_time": f"{EVAL_SECONDS}s",
                               "exp_samples": [{"labels": "{}", "value": 0}]}]},
    ]
    proc = run_promtool_tests(promtool, tmp_path, [], tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
