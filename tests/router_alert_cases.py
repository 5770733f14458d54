"""promtool cases for the router alerts (render/router_monitoring.py), used by test_promql_alerts.

The EPP series carry the labels its ServiceMonitor produces: namespace, service and job (the EPP
Service, `<release>-epp`), pod, container, endpoint, instance. Each alert fires on its own
router's series only, not on another router's or another namespace's.
"""

from __future__ import annotations

from components.render import router as render
from components.render import router_monitoring
from platform_facts import llmd
from tests.promql_kit import OTHER, SHADOW, Case, Served, pod_name, series


def router_targets(s: Served) -> list[dict[str, str]]:
    """One target per router pod (render/router.REPLICAS), plus a second one as a rollout's
    replacement pod would show up next to it."""
    epp = render.epp_name(s.config)
    return [{"namespace": s.namespace, "service": epp, "job": epp, "pod": pod_name(epp, i), "container": "epp",
             "endpoint": llmd.METRICS_PORT_NAME, "instance": f"10.0.9.{i + 10}:{llmd.METRICS_PORT}"}
            for i in range(render.REPLICAS + 1)]


def _foreign(s: Served) -> list[dict[str, str]]:
    own = router_targets(s)
    other = render.epp_name(s.config).replace(s.config.name, OTHER, 1)
    return ([{**t, "namespace": SHADOW} for t in own]
            + [{**t, "service": other, "job": other, "pod": t["pod"].replace(s.config.name, OTHER, 1)} for t in own])


def _gauge(metric: str, targets: list[dict[str, str]], values: str, **extra: str) -> list[dict[str, str]]:
    return [{"series": series(metric, {**t, **extra}), "values": values} for t in targets]


def router_down(s: Served, for_m: int) -> list[Case]:
    end, e = for_m + 20, for_m + 5
    own, foreign = router_targets(s), _foreign(s)
    up = "up"
    return [
        Case("every router pod failing its scrape", True, _gauge(up, own, f"0x{end}") + _gauge(up, foreign, f"1x{end}"), e),
        Case("no router series at all (release gone)", True, _gauge(up, foreign, f"1x{end}"), e),
        Case("one router pod up (the other one replaced)", False, _gauge(up, own[:1], f"1x{end}") + _gauge(up, own[1:], f"0x{end}"), e),
        Case("down for less than the for: duration", False,
             _gauge(up, own, f"1x{e - for_m + 1} 0x{end - (e - for_m + 1)}"), e),
    ]


def router_saturated(s: Served, for_m: int) -> list[Case]:
    end, e = for_m + 20, for_m + 5
    own, foreign = router_targets(s)[:1], _foreign(s)
    sat = llmd.FLOW_CONTROL_POOL_SATURATION
    pool = {"inference_pool": render.release_name(s.config)}
    return [
        Case("oversubscribed at 1.5 all along", True, _gauge(sat, own, f"1.5x{end}", **pool), e),
        Case("exactly 1.0 (an empty pool or stale metrics read 1.0)", False, _gauge(sat, own, f"1x{end}", **pool), e),
        Case("another router oversubscribed", False,
             _gauge(sat, own, f"0.5x{end}", **pool) + _gauge(sat, foreign, f"3x{end}", **pool), e),
    ]


def _outcomes(targets: list[dict[str, str]], per_minute: dict[str, int], end: int) -> list[dict[str, str]]:
    return [{"series": series(llmd.FLOW_CONTROL_REQUESTS_TOTAL, {**t, "outcome": o, "priority": "0",
                                                                  "inference_pool": "pool"}),
             "values": f"0+{n}x{end}"} for t in targets for o, n in per_minute.items()]


def router_shedding(s: Served, for_m: int) -> list[Case]:
    end, e = for_m + 20, for_m + 8
    own, foreign = router_targets(s)[:1], _foreign(s)
    limit_pct = round(100 * router_monitoring.SHED_RATIO_ALERT)
    return [
        Case("10% refused with 429", True, _outcomes(own, {"Dispatched": 540, llmd.OUTCOME_REJECTED_CAPACITY: 60}, end), e),
        Case("10% shed at the queue timeout", True, _outcomes(own, {"Dispatched": 540, llmd.OUTCOME_EVICTED_TTL: 60}, end), e),
        Case(f"1% refused (limit {limit_pct}%)", False,
             _outcomes(own, {"Dispatched": 594, llmd.OUTCOME_REJECTED_CAPACITY: 6}, end), e),
        Case("no traffic at all", False, _outcomes(own, {"Dispatched": 0}, end), e),
        Case("another router shedding", False,
             _outcomes(own, {"Dispatched": 600}, end) + _outcomes(foreign, {llmd.OUTCOME_REJECTED_CAPACITY: 600}, end), e),
    ]


ROUTER_CASES = {"RouterDown": router_down, "RouterSaturated": router_saturated, "RouterShedding": router_shedding}
