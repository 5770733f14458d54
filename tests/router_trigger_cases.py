"""promtool situations for the router's KEDA triggers (render/router_monitoring.py), used by
test_promql_triggers. Series are 10 one-minute samples; the trigger is evaluated at 5m."""

from __future__ import annotations

from typing import Any

from platform_facts import llmd
from tests.promql_kit import Served, Situation, series
from tests.router_alert_cases import _foreign, router_targets


def _queued(targets: list[dict[str, str]], values: str, priority: str = "0") -> list[dict[str, str]]:
    return [{"series": series(llmd.FLOW_CONTROL_QUEUE_SIZE, {**t, "fairness_id": "default", "priority": priority,
                                                              "inference_pool": "pool", "model_name": "m",
                                                              "target_model_name": "m"}),
             "values": values} for t in targets]


def _seen(targets: list[dict[str, str]], values: str, outcome: str = "Dispatched") -> list[dict[str, str]]:
    return [{"series": series(llmd.FLOW_CONTROL_REQUESTS_TOTAL, {**t, "outcome": outcome, "priority": "0",
                                                                  "inference_pool": "pool"}),
             "values": values} for t in targets]


def router_queue(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    """Requests held in our router, over every priority band and replica: AverageValue, so KEDA
    asks for ceil(queued / threshold) burst replicas."""
    leader, foreign = router_targets(s)[:1], _foreign(s)
    noise = _queued(foreign, "50x9")
    return [
        Situation("12 held (8 at priority 0, 4 sheddable), other routers busy", _queued(leader, "8x9")
                  + _queued(leader, "4x9", priority="-1") + noise, 12.0),
        Situation("nothing held", _queued(router_targets(s), "0x9") + noise, 0.0),
    ]


def router_wake(s: Served, trigger: dict[str, Any]) -> list[Situation]:
    """1 while our router held or finished a request in the last 2 minutes (activation-only)."""
    leader, foreign = router_targets(s)[:1], _foreign(s)
    busy_elsewhere = _queued(foreign, "9x9") + _seen(foreign, "0+5x9")
    flat = _seen(leader, "5x9")
    return [
        Situation("one request held at zero pods, seen in the 4m scrape", _queued(leader, "0 0 0 0 1 0 0 0 0 0") + flat
                  + busy_elsewhere, 1.0),
        Situation("requests answered 503 with no endpoints (counter rising), none held",
                  _queued(leader, "0x9") + _seen(leader, "0+1x9", "RejectedNoEndpoints") + busy_elsewhere, 1.0),
        Situation("a request held 4 minutes ago, nothing since", _queued(leader, "0 1 0 0 0 0 0 0 0 0") + flat
                  + busy_elsewhere, 0.0),
        Situation("idle router, other routers busy", _queued(leader, "0x9") + flat + busy_elsewhere, 0.0),
    ]


ROUTER_SITUATIONS = {"router-queue": router_queue, "router-wake": router_wake}
