"""The Kubernetes HPA algorithm, as pure functions (kubernetes/kubernetes
``pkg/controller/podautoscaler``: ``horizontal.go``, ``replica_calculator.go``; defaults from
``pkg/apis/autoscaling/v2/defaults.go``). Times are seconds as floats.

One sync (every 15 s): per metric a replica proposal, the max over metrics, then either
the legacy normalization (``behavior`` unset, KEDA's default) or stabilization windows
plus rate policies (``behavior`` set). KEDA-created HPAs read External metrics:
``AverageValue`` proposes ``ceil(total/target)`` whatever the readiness of pods; ``Value``
multiplies the ratio by the Ready pods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

SYNC_PERIOD_SECONDS = 15.0
TOLERANCE = 0.1
LEGACY_DOWNSCALE_WINDOW_SECONDS = 300.0
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)


@dataclass(frozen=True)
class Policy:
    type: Literal["Pods", "Percent"]
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    stabilization_seconds: int | None = None
    select: Literal["Max", "Min", "Disabled"] = "Max"
    policies: tuple[Policy, ...] = ()


@dataclass(frozen=True)
class Behavior:
    scale_up: Rules
    scale_down: Rules


def behavior_with_defaults(up: Rules | None, down: Rules | None,
                           downscale_window: float = LEGACY_DOWNSCALE_WINDOW_SECONDS) -> Behavior:
    """``GenerateHPAScaleUpRules`` / ``GenerateHPAScaleDownRules``: unset parts take the API defaults
    (up: 0 s, Max, Pods 4/15 s and Percent 100/15 s; down: the controller's window, Max, Percent 100/15 s)."""
    up = up or Rules()
    down = down or Rules()
    return Behavior(
        Rules(0 if up.stabilization_seconds is None else up.stabilization_seconds, up.select,
              up.policies or (Policy("Pods", 4, 15), Policy("Percent", 100, 15))),
        Rules(int(downscale_window) if down.stabilization_seconds is None else down.stabilization_seconds, down.select,
              down.policies or (Policy("Percent", 100, 15),)),
    )


@dataclass
class Recommendation:
    value: int
    t: float


@dataclass
class ScaleEvent:
    change: int
    t: float
    outdated: bool = False


@dataclass
class HpaState:
    """The controller's in-memory history for one HPA."""

    recommendations: list[Recommendation] = field(default_factory=list)
    up_events: list[ScaleEvent] = field(default_factory=list)
    down_events: list[ScaleEvent] = field(default_factory=list)


# --------------------------------------------------------------------------- proposals


def within_tolerance(ratio: float, tolerance: float = TOLERANCE) -> bool:
    return (1 - tolerance) <= ratio <= (1 + tolerance)


def external_average_value(total: float, target: float, status_replicas: int, current: int,
                           tolerance: float = TOLERANCE) -> int:
    """``GetExternalPerPodMetricReplicas``: External metric, ``AverageValue`` target."""
    ratio = total / (target * status_replicas) if status_replicas else math.inf if total else math.nan
    if within_tolerance(ratio, tolerance):
        return current
    return math.ceil(total / target)


def external_value(value: float, target: float, ready_pods: int, current: int, tolerance: float = TOLERANCE) -> int:
    """``GetExternalMetricReplicas``: External metric, ``Value`` target (ratio x Ready pods)."""
    ratio = value / target
    if current == 0:
        return math.ceil(ratio)
    if within_tolerance(ratio, tolerance):
        return current
    return math.ceil(ratio * ready_pods)


def pods_average_value(values: list[float], target: float, current: int, unready: int, missing: int,
                       tolerance: float = TOLERANCE) -> int:
    """``calcPlainMetricReplicas`` for a Pods metric with an ``AverageValue`` target: the average
    (milli-units, floored) over the pods that report, times their count; Pending pods
    (``unready``) count as 0 when scaling up, pods without a metric (``missing``) as the target
    when scaling down and 0 when scaling up, and the current count holds when that correction
    reverses the direction. ``values`` must not be empty (the HPA errors and holds)."""
    target_milli = round(target * 1000)
    milli = [round(v * 1000) for v in values]

    def ratio(ms: list[int]) -> float:
        return (sum(ms) // len(ms)) / target_milli

    usage = ratio(milli)
    scale_up_with_unready = unready > 0 and usage > 1.0
    if not scale_up_with_unready and missing == 0:
        return current if within_tolerance(usage, tolerance) else math.ceil(usage * len(milli))
    if missing:
        milli += [target_milli if usage < 1.0 else 0] * missing
    if scale_up_with_unready:
        milli += [0] * unready
    corrected = ratio(milli)
    if within_tolerance(corrected, tolerance) or (usage > 1.0 > corrected) or (usage < 1.0 < corrected):
        return current
    proposal = math.ceil(corrected * len(milli))
    if (corrected < 1.0 and proposal > current) or (corrected > 1.0 and proposal < current):
        return current
    return proposal


# --------------------------------------------------------------------------- legacy path


def stabilize_legacy(state: HpaState, proposal: int, now: float,
                     window: float = LEGACY_DOWNSCALE_WINDOW_SECONDS) -> int:
    """``stabilizeRecommendation``: the max of the proposals younger than the window."""
    best = proposal
    old_index = None
    cutoff = now - window
    for i, rec in enumerate(state.recommendations):
        if rec.t < cutoff:
            old_index = i
        elif rec.value > best:
            best = rec.value
    if old_index is not None:
        state.recommendations[old_index] = Recommendation(proposal, now)
    else:
        state.recommendations.append(Recommendation(proposal, now))
    return best


def convert_legacy(current: int, desired: int, min_replicas: int, max_replicas: int,
                   factor: float = SCALE_UP_LIMIT_FACTOR) -> tuple[int, str]:
    """``convertDesiredReplicasWithRules``: clamp to min and to min(max, max(factor x current, 4))."""
    scale_up_limit = int(max(factor * current, SCALE_UP_LIMIT_MINIMUM))
    if max_replicas > scale_up_limit:
        maximum, condition = scale_up_limit, "ScaleUpLimit"
    else:
        maximum, condition = max_replicas, "TooManyReplicas"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas"
    if desired > maximum:
        return maximum, condition
    return desired, "DesiredWithinRange"


# --------------------------------------------------------------------------- behavior path


def stabilize_with_behaviors(state: HpaState, proposal: int, current: int, now: float,
                             up_window: float, down_window: float) -> int:
    """``stabilizeRecommendationWithBehaviors``: up follows the min over the up window, down the
    max over the down window; the current count holds when they straddle it."""
    up_rec = down_rec = proposal
    old_index = None
    up_cutoff, down_cutoff = now - up_window, now - down_window
    for i, rec in enumerate(state.recommendations):
        if rec.t > up_cutoff:
            up_rec = min(up_rec, rec.value)
        if rec.t > down_cutoff:
            down_rec = max(down_rec, rec.value)
        if rec.t < up_cutoff and rec.t < down_cutoff:
            old_index = i
    result = current
    if result < up_rec:
        result = up_rec
    if result > down_rec:
        result = down_rec
    if old_index is not None:
        state.recommendations[old_index] = Recommendation(proposal, now)
    else:
        state.recommendations.append(Recommendation(proposal, now))
    return result


def replicas_change_per_period(period_seconds: float, events: list[ScaleEvent], now: float) -> int:
    cutoff = now - period_seconds
    return sum(e.change for e in events if e.t > cutoff)


def scale_up_limit(current: int, up_events: list[ScaleEvent], down_events: list[ScaleEvent], rules: Rules,
                   now: float) -> int:
    """``calculateScaleUpLimitWithScalingRules``."""
    if rules.select == "Disabled":
        return current
    pick, result = (max, INT32_MIN) if rules.select == "Max" else (min, INT32_MAX)
    for p in rules.policies:
        start = (current - replicas_change_per_period(p.period_seconds, up_events, now)
                 + replicas_change_per_period(p.period_seconds, down_events, now))
        proposed = start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100))
        result = pick(result, proposed)
    return result


def scale_down_limit(current: int, up_events: list[ScaleEvent], down_events: list[ScaleEvent], rules: Rules,
                     now: float) -> int:
    """``calculateScaleDownLimitWithBehaviors``."""
    if rules.select == "Disabled":
        return current
    pick, result = (min, INT32_MAX) if rules.select == "Max" else (max, INT32_MIN)
    for p in rules.policies:
        start = (current - replicas_change_per_period(p.period_seconds, up_events, now)
                 + replicas_change_per_period(p.period_seconds, down_events, now))
        proposed = start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100))
        result = pick(result, proposed)
    return result


def convert_with_behavior_rate(state: HpaState, desired: int, current: int, min_replicas: int, max_replicas: int,
                               behavior: Behavior, now: float) -> tuple[int, str]:
    """``convertDesiredReplicasWithBehaviorRate``."""
    if desired > current:
        limit = max(scale_up_limit(current, state.up_events, state.down_events, behavior.scale_up, now), current)
        if max_replicas > limit:
            maximum, condition = limit, "ScaleUpLimit"
        else:
            maximum, condition = max_replicas, "TooManyReplicas"
        return (maximum, condition) if desired > maximum else (desired, "DesiredWithinRange")
    if desired < current:
        limit = min(scale_down_limit(current, state.up_events, state.down_events, behavior.scale_down, now), current)
        if min_replicas < limit:
            minimum, condition = limit, "ScaleDownLimit"
        else:
            minimum, condition = min_replicas, "TooFewReplicas"
        return (minimum, condition) if desired < minimum else (desired, "DesiredWithinRange")
    return desired, "DesiredWithinRange"


def store_scale_event(state: HpaState, behavior: Behavior, previous: int, new: int, now: float) -> None:
    """``storeScaleEvent``: remember the change, reusing an outdated slot."""
    if previous == new:
        return
    up = new > previous
    rules = behavior.scale_up if up else behavior.scale_down
    events = state.up_events if up else state.down_events
    longest = max((p.period_seconds for p in rules.policies), default=0)
    cutoff = now - longest
    reuse = None
    for i, e in enumerate(events):
        if e.t < cutoff:
            e.outdated = True
            reuse = i
    event = ScaleEvent(abs(new - previous), now)
    if reuse is None:
        events.append(event)
    else:
        events[reuse] = event


# --------------------------------------------------------------------------- one sync


def sync(state: HpaState, now: float, current: int, min_replicas: int, max_replicas: int,
         proposals: list[int], behavior: Behavior | None) -> int:
    """One reconcile: the new ``spec.replicas`` (1.8 of the facts)."""
    if current == 0 and min_replicas != 0:
        return 0  # autoscaling disabled; KEDA owns 0 <-> 1
    if current > max_replicas:
        return max_replicas
    if current < min_replicas:
        return min_replicas
    if not proposals:
        return current
    proposal = max(proposals)
    if behavior is None:
        stabilized = stabilize_legacy(state, proposal, now)
        desired, _ = convert_legacy(current, stabilized, min_replicas, max_replicas)
        return desired
    stabilized = stabilize_with_behaviors(state, proposal, current, now,
                                          float(behavior.scale_up.stabilization_seconds or 0),
                                          float(behavior.scale_down.stabilization_seconds or 0))
    desired, _ = convert_with_behavior_rate(state, stabilized, current, min_replicas, max_replicas, behavior, now)
    store_scale_event(state, behavior, current, desired, now)
    return desired
