"""The router's ServiceMonitor, alerts and KEDA triggers (``routing.mode: router``).

Every series comes from the EPP's /metrics (``platform_facts.llmd``), selected by namespace and
the EPP Service the ServiceMonitor scrapes, so one router's series never mix with another's.
"""

from __future__ import annotations

from typing import Any

from components.config import ModelServiceConfig
from components.naming import k8s_name
from components.render import router
from platform_facts import llmd

# A sustained share of requests refused (429) or shed at the queue timeout that pages.
SHED_RATIO_ALERT = 0.05


def _m(metric: str, svc: ModelServiceConfig, namespace: str, extra: str = "") -> str:
    sel = f'namespace="{namespace}",service="{router.epp_name(svc)}"'
    return metric + "{" + sel + (f",{extra}" if extra else "") + "}"


def service_monitor(svc: ModelServiceConfig, namespace: str, interval_seconds: int) -> dict[str, Any]:
    """Scrapes the EPP Service's metrics port (the chart labels its Service with its name)."""
    return {
        "metadata": {"name": router.release_name(svc), "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": router.epp_name(svc)}},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [{"port": llmd.METRICS_PORT_NAME, "path": "/metrics", "interval": f"{interval_seconds}s"}],
        },
    }


def queries(svc: ModelServiceConfig, namespace: str) -> dict[str, str]:
    """Trigger PromQL; each returns one series, also when the router exports none yet."""
    queued = _m(llmd.FLOW_CONTROL_QUEUE_SIZE, svc, namespace)
    seen = _m(llmd.FLOW_CONTROL_REQUESTS_TOTAL, svc, namespace)
    return {
        # Requests held in the router: with flow control, a request waits there only while every
        # pod is saturated (or there is none), so each one is demand beyond the live pods.
        "queue": f"sum({queued}) or vector(0)",
        # 1 while the router held a request or finished one (any outcome, 503 at zero pods included)
        # in the last 2 minutes: the wake-from-zero signal, which exists before any pod does.
        "wake": (f"max(((sum(max_over_time({queued}[2m])) or vector(0)) + "
                 f"(sum(increase({seen}[2m])) or vector(0))) > bool 0)"),
    }


def triggers(svc: ModelServiceConfig, namespace: str, prometheus_url: str) -> list[dict[str, Any]]:
    """KEDA triggers added in router mode (``scaling._triggers``)."""
    q, sc = queries(svc, namespace), svc.scaling

    def trigger(name: str, query: str, threshold: float) -> dict[str, Any]:
        return {"type": "prometheus", "name": name, "metricType": "AverageValue", "metadata": {
            "serverAddress": prometheus_url, "query": query, "threshold": f"{threshold:g}",
            "activationThreshold": "0"}}

    # AverageValue on a demand more burst pods drain rather than raise: ceil(queued / target).
    out = [trigger("router-queue", q["queue"], sc.target_waiting_per_replica)]
    if sc.min_replicas == 0:
        # Activation-only wake (0/1 on threshold 1) for a service with no baseline: requests held
        # at zero pods wake the burst, so activeHours or a hand-written wakeQuery are not needed.
        # With a baseline it would hold a burst replica under any traffic, so it is left out.
        out.append(trigger("router-wake", q["wake"], 1))
    return out


def prometheus_rule(svc: ModelServiceConfig, namespace: str) -> dict[str, Any]:
    title = "".join(p.capitalize() for p in svc.name.split("-"))
    common = {"service": svc.name, "namespace": namespace}

    def alert(name: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
        return {"alert": f"{title}{name}", "expr": expr, "for": for_,
                "labels": {**common, "severity": severity}, "annotations": {"summary": summary}}

    up = f'up{{namespace="{namespace}",service="{router.epp_name(svc)}"}}'
    total = f"sum(rate({_m(llmd.FLOW_CONTROL_REQUESTS_TOTAL, svc, namespace)}[5m]))"
    shed = "|".join(llmd.SHED_OUTCOMES)
    shed_rate = f'sum(rate({_m(llmd.FLOW_CONTROL_REQUESTS_TOTAL, svc, namespace, f"outcome=~{chr(34)}{shed}{chr(34)}")}[5m]))'
    saturation = _m(llmd.FLOW_CONTROL_POOL_SATURATION, svc, namespace)
    rules = [
        # Every request goes through the router: no scrapeable router pod is an outage.
        alert("RouterDown", f"absent({up} == 1)", "5m", "critical", f"{svc.name}: no router pod is up for 5m"),
        # Above 1.0 is oversubscription (an empty pool reads exactly 1.0 and does not fire).
        alert("RouterSaturated", f"max({saturation}) > 1", "15m", "warning",
              f"{svc.name}: the pool has been oversubscribed for 15m; requests wait in the router"),
        alert("RouterShedding", f"{shed_rate} / clamp_min({total}, 1e-9) > {SHED_RATIO_ALERT:g}", "10m", "warning",
              f"{svc.name}: over {SHED_RATIO_ALERT:.0%} of requests refused (429) or timed out in the router queue"),
    ]
    return {"metadata": {"name": k8s_name(svc.name, "router-alerts"), "namespace": namespace},
            "spec": {"groups": [{"name": f"{svc.name}.router.rules", "rules": rules}]}}
