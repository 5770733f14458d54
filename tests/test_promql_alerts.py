"""Each alert of each stack, unit-tested by `promtool test rules`: it fires when it should and
stays quiet when it should not.

The rules file is the stack's rendered PrometheusRule; the input series carry the labels our
scrape configuration gives them (tests/promql_kit.vllm_targets reads the ServiceMonitor, the
Service and the Deployments), so an alert selecting on a label that does not exist, or on a
misspelled metric, never fires and its "fires" case fails. The thresholds come from the stack
config (what the alert promises), never from the expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.conftest import STACKS
from tests.promql_kit import (
    KSM_TARGET,
    KV_CACHE,
    OTHER,
    POD_PHASES,
    RUNNING,
    SHADOW,
    TTFT_BUCKET,
    TTFT_BUCKETS,
    WAITING,  # noqa: F401
    Case,
    Served,
    histogram_series,
    pod_name,
    run_promtool_tests,
    series,
    served,
)
from tests.router_alert_cases import ROUTER_CASES

KV_CACHE_LIMIT = 0.95  # the KVCacheNearFull summary's "above 95%"


def _minutes(duration: str) -> int:
    m = re.fullmatch(r"(\d+)m", duration)
    assert m, f"alert for: {duration!r}: expected whole minutes"
    return int(m.group(1))


def _gauge(metric: str, targets: list[dict[str, str]], value: Callable[[dict[str, str]], str], minutes: int) -> list[dict[str, str]]:
    return [{"series": series(metric, t), "values": f"{value(t)}x{minutes}"} for t in targets]


def _constant(v: float) -> Callable[[dict[str, str]], str]:
    return lambda _t: f"{v:g}"


# --------------------------------------------------------------------------- cases per alert


def queue_backlog(s: Served, for_m: int) -> list[Case]:
    target, end = s.config.scaling.target_waiting_per_replica, for_m + 20
    e = for_m + 5
    own, foreign = s.targets(), s.foreign()
    running = _gauge(RUNNING, own, _constant(3), end)

    def waiting(per_pod: float, start: int = 0) -> list[dict[str, str]]:
        values = f"0x{start - 1} {per_pod:g}x{end - start}" if start else f"{per_pod:g}x{end}"
        return [{"series": series(WAITING, t), "values": values} for t in own]

    return [
        Case("one request per replica above target, for the whole window", True, waiting(target + 1) + running, e),
        Case("exactly at target per replica", False, waiting(target) + running, e),
        Case("above target for less than the for: duration", False, waiting(target + 1, start=e - for_m + 1) + running, e),
        Case("backlog on other services and namespaces only", False,
             waiting(0) + running + _gauge(WAITING, foreign, _constant(10 * target), end)
             + _gauge(RUNNING, foreign, _constant(1), end), e),
    ]


def _bucket_above(limit: float) -> float:
    """The upper bound of the first TTFT bucket whose lower bound is at least `limit`."""
    return next(b for lo, b in zip(TTFT_BUCKETS, TTFT_BUCKETS[1:], strict=False) if lo >= limit)


def _bucket_below(limit: float) -> float:
    return max(b for b in TTFT_BUCKETS if b <= limit)


def ttft_above_slo(s: Served, for_m: int) -> list[Case]:
    slo, end = s.config.slo.ttft_p95_seconds, for_m + 20
    e = for_m + 8
    own, foreign = s.targets(), s.foreign()

    def hist(targets, upper, per_minute=60):
        return [x for t in targets for x in histogram_series(TTFT_BUCKET, t, upper, per_minute, end)]

    slow, fast = _bucket_above(1.5 * slo), _bucket_below(slo / 1.5)
    return [
        Case(f"every first token in the bucket up to {slow:g}s (SLO {slo:g}s)", True, hist(own, slow), e),
        Case(f"every first token within {fast:g}s", False, hist(own, fast), e),
        Case("no requests at all (rate 0, quantile NaN)", False, hist(own, slow, per_minute=0), e),
        Case("slow first tokens on other services and namespaces only", False,
             hist(own, fast) + hist(foreign, slow), e),
    ]


def kv_cache_near_full(s: Served, for_m: int) -> list[Case]:
    end, e = for_m + 20, for_m + 5
    own, foreign = s.targets(), s.foreign()
    burst_pod = pod_name(s.burst, 0)

    def kv(hot: float):
        return lambda t: f"{hot:g}" if t["pod"] == burst_pod else "0.5"

    return [
        Case("one replica at 97%", True, _gauge(KV_CACHE, own, kv(0.97), end), e),
        Case("one replica at exactly 95%", False, _gauge(KV_CACHE, own, kv(KV_CACHE_LIMIT), end), e),
        Case("full caches on other services and namespaces only", False,
             _gauge(KV_CACHE, own, _constant(0.5), end)
             + _gauge(KV_CACHE, foreign, _constant(0.99), end), e),
    ]


def _phases(namespace: str, pod: str, pending_until: int | None, end: int) -> list[dict[str, str]]:
    """kube_pod_status_phase of one pod: 1 on its phase, 0 on the others (kube-state-metrics).
    Pending until `pending_until` minutes (None: all along), Running after."""
    out = []
    for phase in POD_PHASES:
        labels = {**KSM_TARGET, "namespace": namespace, "pod": pod, "uid": f"uid-{pod}", "phase": phase}
        if pending_until is None:
            values = f"{int(phase == 'Pending')}x{end}"
        else:
            before, after = int(phase == "Pending"), int(phase == "Running")
            values = f"{before}x{pending_until} {after}x{end - pending_until - 1}"
        out.append({"series": series("kube_pod_status_phase", labels), "values": values})
    return out


def gpu_pods_pending(s: Served, for_m: int) -> list[Case]:
    end, e = for_m + 20, for_m + 3
    cases = [Case(f"a {dep} pod Pending all along", True, _phases(s.namespace, pod_name(dep, 0), None, end), e)
             for dep in s.deployments]
    cases += [
        Case(f"a {s.burst} pod Pending for less than the for: duration, then Running", False,
             _phases(s.namespace, pod_name(s.burst, 0), for_m - 2, end), e),
        Case("Pending pods of another service and of another namespace", False,
             _phases(s.namespace, pod_name(s.burst.replace(s.config.name, OTHER, 1), 0), None, end)
             + _phases(SHADOW, pod_name(s.burst, 0), None, end), e),
    ]
    return cases


def pinned_at_max(s: Served, for_m: int) -> list[Case]:
    end, e = for_m + 20, for_m + 5

    def current(namespace: str, hpa: str, replicas: int) -> dict[str, str]:
        labels = {**KSM_TARGET, "namespace": namespace, "horizontalpodautoscaler": hpa}
        return {"series": series("kube_horizontalpodautoscaler_status_current_replicas", labels),
                "values": f"{replicas}x{end}"}

    other = s.hpa.replace(s.config.name, OTHER, 1)
    return [
        Case(f"{s.hpa} at maxReplicas {s.max_burst}", True, [current(s.namespace, s.hpa, s.max_burst)], e),
        Case(f"{s.hpa} one below maxReplicas", False, [current(s.namespace, s.hpa, s.max_burst - 1)], e),
        Case("another HPA at its maximum, and ours in another namespace", False,
             [current(s.namespace, s.hpa, s.max_burst - 1), current(s.namespace, other, 99),
              current(SHADOW, s.hpa, 99)], e),
    ]


CASES: dict[str, Callable[[Served, int], list[Case]]] = {
    "QueueBacklog": queue_backlog, "TTFTAboveSLO": ttft_above_slo, "KVCacheNearFull": kv_cache_near_full,
    "GPUPodsPending": gpu_pods_pending, "PinnedAtMax": pinned_at_max,
    **ROUTER_CASES,  # routing.mode router (tests/router_alert_cases.py)
}


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def services(synthesized) -> dict[str, list[Served]]:
    return {stack: served(stack, d) for stack, d in synthesized.items()}


def test_every_alert_has_cases(services):
    """A new alert needs its fire and quiet cases here before it ships."""
    for stack, svcs in services.items():
        for s in svcs:
            assert s.rules, f"{stack}: {s.config.name} has no alerts"
            missing = set(s.rules) - set(CASES)
            assert not missing, f"{stack}: {s.config.name}: alerts without promtool cases: {sorted(missing)}"


@pytest.mark.parametrize("stack", STACKS)
def test_alerts_fire_and_stay_quiet(stack, services, promtool, tmp_path):
    tests, fired, quiet = [], 0, 0
    # The rules file is the stack's PrometheusRules, verbatim.
    groups = [g for s in services[stack][:1] for r in s.build.of_kind("PrometheusRule") for g in r["spec"]["groups"]]
    for s in services[stack]:
        for suffix, rule in s.rules.items():
            for case in CASES[suffix](s, _minutes(rule["for"])):
                expected = [{"exp_labels": {**rule["labels"], "alertname": rule["alert"]},
                             "exp_annotations": rule["annotations"]}] if case.fires else []
                tests.append({"name": f"{rule['alert']}: {case.name}", "interval": "1m",
                              "input_series": case.input_series,
                              "alert_rule_test": [{"eval_time": f"{case.eval_minutes}m", "alertname": rule["alert"],
                                                   "exp_alerts": expected}]})
                fired, quiet = fired + case.fires, quiet + (not case.fires)
    proc = run_promtool_tests(promtool, tmp_path, groups, tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fired and quiet
    print(f"\n{stack}: {fired} firing and {quiet} quiet alert cases passed in promtool")
