"""What one replay produced: per-request times, counters, cost, and the timeline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Result:
    arrival: list[float]
    first_token: list[float]  # NaN: never served
    end: list[float]
    admitted: list[float]
    capacity: list[str]
    preemptions: int
    retries: int
    cost: float
    gpu_hours: float
    node_seconds: dict[str, float]
    timeline: list[dict]
    slo_seconds: float
    events: list = field(default_factory=list)  # simulator.state.Event, in time order
    rejected: int = 0  # requests longer than maxModelLen: refused at arrival, never served
    routing: str = "random"  # the routing policy (``simulator.routing``)
    cached_tokens: list[int] = field(default_factory=list)  # per request: prompt tokens the prefix cache saved
    prompt_tokens: list[int] = field(default_factory=list)  # per request, for the hit ratio

    def ttfts(self) -> list[float]:
        return [f - a for a, f in zip(self.arrival, self.first_token, strict=True) if not math.isnan(f)]

    def prefix_hit_ratio(self) -> float:
        """Prompt tokens served from the prefix cache over prompt tokens, among the requests served."""
        served = [(c, p) for c, p, f in zip(self.cached_tokens, self.prompt_tokens, self.first_token, strict=True)
                  if not math.isnan(f)]
        total = sum(p for _, p in served)
        return sum(c for c, _ in served) / total if total else 0.0

    def attainment(self, since: float = 0.0, until: float = math.inf, *, servable: bool = False) -> float | None:
        """The share of requests arriving in ``[since, until)`` whose first token came within the
        SLO; a request never served (rejected, or unfinished at the horizon) is a miss. With
        ``servable``, rejected requests are left out (no scaling serves them). None: no requests."""
        met = total = 0
        for a, f, where in zip(self.arrival, self.first_token, self.capacity, strict=True):
            if since <= a < until and not (servable and where == "rejected"):
                total += 1
                met += f - a <= self.slo_seconds  # NaN compares False
        return met / total if total else None


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
