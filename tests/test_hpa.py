"""The HPA algorithm against scenarios transcribed from the upstream Kubernetes tests
(kubernetes/kubernetes ``pkg/controller/podautoscaler/horizontal_test.go``:
TestConvertDesiredReplicasWithRules, TestNormalizeDesiredReplicas,
TestNormalizeDesiredReplicasWithBehavior, TestScalingWithRules,
TestCalculateScaleUpLimitWithScalingRules, TestCalculateScaleDownLimitWithBehaviors; and the
replica calculator cases named in the facts file)."""

from __future__ import annotations

import pytest

from simulator import hpa
from simulator.hpa import HpaState, Policy, Recommendation, Rules, ScaleEvent

NOW = 10_000.0


def rules(pods: int, pods_period: int, percent: int, percent_period: int, window: int) -> Rules:
    """generateScalingRules(pods, podsPeriod, percent, percentPeriod, stabilizationWindow)."""
    policies = []
    if pods:
        policies.append(Policy("Pods", pods, pods_period))
    if percent:
        policies.append(Policy("Percent", percent, percent_period))
    return Rules(window, "Max", tuple(policies))


def uniform_events(raw: list[int], period: int) -> list[ScaleEvent]:
    """generateEventsUniformDistribution: each event at the centre of its segment of the window.
    Upstream builds them before taking "now", so they are a hair older than their offset."""
    seg = period / len(raw)
    return [ScaleEvent(v, NOW - (period - seg * (i + 1) + seg / 2) - 1e-6) for i, v in enumerate(raw)]


# TestConvertDesiredReplicasWithRules (legacy path; production scaleUpLimitFactor 2)
@pytest.mark.parametrize("current,desired,lo,hi,expected,condition", [
    (5, 7, 3, 8, 7, "DesiredWithinRange"),
    (3, 1, 2, 8, 2, "TooFewReplicas"),
    (1, 0, 0, 10, 0, "DesiredWithinRange"),
    (20, 1000, 1, 10, 10, "TooManyReplicas"),
    (3, 1000, 1, 2000, 6, "ScaleUpLimit"),  # calculateScaleUpLimit(3) = max(2*3, 4)
])
def test_convert_desired_replicas_with_rules(current, desired, lo, hi, expected, condition):
    assert hpa.convert_legacy(current, desired, lo, hi) == (expected, condition)


def test_scale_up_limit_factor_as_upstream_tests_set_it():
    # The upstream test file sets scaleUpLimitFactor = 8 in init(): calculateScaleUpLimit(3) = 24.
    assert hpa.convert_legacy(3, 1000, 1, 2000, factor=8) == (24, "ScaleUpLimit")


# TestNormalizeDesiredReplicas (legacy 5-minute downscale stabilization)
@pytest.mark.parametrize("recs,proposal,expected,log_length", [
    ([], 5, 5, 1),
    ([(4, -120), (5, -60)], 3, 5, 3),
    ([(1, -120), (2, -60)], 3, 3, 3),
    ([(10, -600), (9, -540)], 3, 3, 2),
    ([(10, -600), (4, -60), (5, -120), (9, -540)], 3, 5, 4),
], ids=["empty log", "stabilize", "no stabilize", "no stabilize - old", "stabilize - old"])
def test_normalize_desired_replicas(recs, proposal, expected, log_length):
    state = HpaState([Recommendation(v, NOW + dt) for v, dt in recs])
    assert hpa.stabilize_legacy(state, proposal, NOW) == expected
    assert len(state.recommendations) == log_length


# TestNormalizeDesiredReplicasWithBehavior
@pytest.mark.parametrize("recs,current,proposal,expected,stored,up,down", [
    ([], 100, 5, 5, [5], 0, 0),
    ([(4, -120), (5, -60)], 100, 3, 5, [4, 5, 3], 0, 180),
    ([(4, -120), (5, -60)], 1, 7, 4, [4, 5, 7], 300, 0),
    ([(1, -120), (2, -60)], 100, 3, 3, [1, 2, 3], 300, 0),
    ([(4, -120), (5, -60)], 1, 3, 3, [4, 5, 3], 0, 300),
    ([(10, -600), (9, -540)], 100, 3, 3, [10, 3], 0, 0),
    ([(10, -600), (9, -540)], 1, 100, 100, [10, 100], 0, 0),
    ([(10, -600), (4, -60), (5, -120), (9, -540)], 100, 3, 5, [10, 4, 5, 3], 0, 180),
    ([(10, -6000), (6, -60), (5, -120), (9, -180)], 1, 100, 5, [100, 6, 5, 9], 300, 0),
    ([(2, -6000), (3, -180)], 2, 1, 2, None, 300, 300),
    ([(2, -6000), (1, -180)], 2, 3, 2, None, 300, 300),
])
def test_normalize_desired_replicas_with_behavior(recs, current, proposal, expected, stored, up, down):
    state = HpaState([Recommendation(v, NOW + dt) for v, dt in recs])
    assert hpa.stabilize_with_behaviors(state, proposal, current, NOW, up, down) == expected
    if stored is not None:
        assert [r.value for r in state.recommendations] == stored


def test_calculate_limits_with_min_select_policy():
    r = Rules(300, "Min", (Policy("Pods", 2, 60), Policy("Percent", 50, 60)))
    assert hpa.scale_up_limit(1, [], [], r, NOW) == 2
    assert hpa.scale_down_limit(5, [], [], r, NOW) == 3


# TestScalingWithRules: (up events, down events, min, max, up rules, down rules, current, desired, expected, condition)
SCALING = [
    ("within range", [], [], 3, 8, None, None, 5, 7, 7, "DesiredWithinRange"),
    ("< minReplicas", [], [], 2, 8, None, None, 3, 1, 2, "TooFewReplicas"),
    ("min 0", [], [], 0, 10, None, None, 1, 0, 0, "DesiredWithinRange"),
    ("max < scaleUpLimit", [], [], 1, 10, None, None, 20, 1000, 10, "TooManyReplicas"),
    ("desired > max", [], [], 100, 150, None, None, 100, 1000, 150, "TooManyReplicas"),
    ("user percent policy", [], [], 1, 2000, rules(0, 0, 1, 60, 0), None, 3, 1000, 4, "ScaleUpLimit"),
    ("scaleUp default behavior", [], [], 1, 1000, None, None, 10, 50, 20, "ScaleUpLimit"),
    ("pods > percent", [], [], 1, 1000, rules(100, 60, 100, 60, 0), None, 10, 500, 110, "ScaleUpLimit"),
    ("percent > pods", [], [], 1, 1000, rules(2, 60, 100, 60, 0), None, 10, 500, 20, "ScaleUpLimit"),
    ("max with large pod policy", [], [], 1, 1000, rules(100, 60, 0, 0, 0), None, 10, 50, 50, "DesiredWithinRange"),
    ("max with large percent policy", [], [], 1, 1000, rules(10000, 60, 0, 0, 0), None, 10, 50, 50, "DesiredWithinRange"),
    ("pod policy limitation", [], [], 1, 1000, rules(30, 60, 0, 0, 0), None, 10, 50, 40, "ScaleUpLimit"),
    ("percent policy limitation", [], [], 1, 1000, rules(0, 0, 200, 60, 0), None, 10, 50, 30, "ScaleUpLimit"),
    ("down percent > pod", [], [], 1, 1000, None, rules(20, 60, 1, 60, 300), 100, 2, 80, "ScaleDownLimit"),
    ("down pod > percent", [], [], 1, 1000, None, rules(2, 60, 1, 60, 300), 100, 2, 98, "ScaleDownLimit"),
    ("down min with large pod policy", [], [], 1, 1000, None, rules(100, 60, 0, 0, 300), 10, 0, 1, "TooFewReplicas"),
    ("down min with large percent policy", [], [], 5, 1000, None, rules(0, 0, 100, 60, 300), 10, 2, 5, "TooFewReplicas"),
    ("down pod policy limitation", [], [], 1, 1000, None, rules(5, 60, 0, 0, 300), 10, 2, 5, "ScaleDownLimit"),
    ("down percent policy", [], [], 1, 1000, None, rules(0, 0, 50, 60, 300), 10, 5, 5, "DesiredWithinRange"),
    ("max with events", [1, 5, 9], [], 1, 200, rules(300, 60, 0, 0, 0), None, 100, 500, 200, "TooManyReplicas"),
    ("max percent with events", [1, 5, 9], [], 1, 200, rules(0, 0, 10000, 60, 0), None, 100, 500, 200, "TooManyReplicas"),
    ("many recent up events", [1, 5, 9], [], 1, 1000, rules(5, 120, 0, 0, 0), None, 100, 500, 100, "ScaleUpLimit"),
    ("pod policy and up events", [1, 5, 9], [], 1, 1000, rules(150, 120, 0, 0, 0), None, 100, 500, 235, "ScaleUpLimit"),
    ("percent policy and up events", [1, 5, 9], [], 1, 1000, rules(0, 0, 200, 120, 0), None, 100, 500, 255, "ScaleUpLimit"),
    ("percent, up and down events", [4], [2], 1, 1000, rules(0, 0, 300, 300, 0), None, 6, 24, 16, "ScaleUpLimit"),
    ("down default with events", [], [1, 5, 9], 1, 1000, None, None, 10, 5, 5, "DesiredWithinRange"),
    ("down min with pod policy and events", [], [1, 5, 9], 1, 1000, None, rules(115, 120, 0, 0, 300), 100, 0, 1, "TooFewReplicas"),
    ("down min 5 with pod policy and events", [], [1, 5, 9], 5, 1000, None, rules(130, 120, 0, 0, 300), 100, 0, 5, "TooFewReplicas"),
    ("down min 5 percent and events", [], [1, 5, 9], 5, 1000, None, rules(0, 0, 100, 120, 300), 100, 2, 5, "TooFewReplicas"),
    ("down pod policy and events", [], [1, 5, 9], 1, 1000, None, rules(5, 120, 0, 0, 300), 100, 2, 100, "ScaleDownLimit"),
    ("down percent policy and events", [], [2, 4, 6], 1, 1000, None, rules(0, 0, 50, 120, 300), 100, 0, 56, "ScaleDownLimit"),
    ("down percent, up and down events", [2], [4], 1, 1000, None, rules(0, 0, 50, 180, 0), 10, 1, 6, "ScaleDownLimit"),
    ("events preventing scale down", [], [10, 10, 10], 1, 1000, None, rules(0, 0, 10, 120, 300), 100, 0, 100, "ScaleDownLimit"),
    ("events still allowing scale down", [], [10, 10, 10], 1, 1000, None, rules(0, 0, 1000, 120, 300), 10, 5, 5, "DesiredWithinRange"),
    ("outdated up, one policy", [8, 12, 9, 11], [], 1, 1000, rules(1000, 60, 0, 0, 0), None, 100, 200, 200, "DesiredWithinRange"),
    ("up, two policies", [8, 12, 9, 11], [], 1, 1000, rules(1000, 120, 100, 60, 0), None, 100, 200, 200, "DesiredWithinRange"),
    ("up, two policies outdated", [8, 12, 9, 11], [], 1, 1000, rules(1000, 30, 100, 60, 0), None, 100, 200, 200, "DesiredWithinRange"),
    ("outdated down, one policy", [], [8, 12, 9, 11], 1, 1000, None, rules(1000, 60, 0, 0, 300), 100, 5, 5, "DesiredWithinRange"),
    ("down, two policies", [], [8, 12, 9, 11], 1, 1000, None, rules(1000, 120, 100, 60, 300), 100, 5, 5, "DesiredWithinRange"),
    ("down, two policies outdated", [], [8, 12, 9, 11], 1, 1000, None, rules(1000, 30, 100, 60, 300), 100, 5, 5, "DesiredWithinRange"),
]


@pytest.mark.parametrize("name,up_ev,down_ev,lo,hi,up,down,current,desired,expected,condition", SCALING,
                         ids=[s[0] for s in SCALING])
def test_scaling_with_rules(name, up_ev, down_ev, lo, hi, up, down, current, desired, expected, condition):
    state = HpaState(up_events=uniform_events(up_ev, 120) if up_ev else [],
                     down_events=uniform_events(down_ev, 120) if down_ev else [])
    behavior = hpa.behavior_with_defaults(up, down)
    assert hpa.convert_with_behavior_rate(state, desired, current, lo, hi, behavior, NOW) == (expected, condition)


# Replica calculator, External metrics (the facts' rc-* cases and the KEDA semantics)
def test_external_value_multiplies_ready_pods_only():
    # rc-external-value-ready-pods-only: 3 pods, 1 Ready, total 8600 vs target 4400 -> 2.
    assert hpa.external_value(8600, 4400, ready_pods=1, current=3) == 2


def test_external_average_value_ignores_readiness():
    # ceil(total / target) whatever the pods: a queue of 20 at threshold 5 gives 4.
    assert hpa.external_average_value(20, 5, status_replicas=1, current=1) == 4
    assert hpa.external_average_value(20, 5, status_replicas=4, current=4) == 4


def test_tolerance_keeps_the_current_count():
    assert hpa.external_average_value(21, 5, status_replicas=4, current=4) == 4  # ratio 1.05
    assert hpa.external_value(0.85, 0.8, ready_pods=3, current=3) == 3  # ratio 1.0625


def test_sync_legacy_path_doubles_at_most_and_waits_to_scale_down():
    state = HpaState()
    assert hpa.sync(state, 0, 1, 1, 20, [10], None) == 4  # max(2*1, 4)
    assert hpa.sync(state, 15, 4, 1, 20, [10], None) == 8
    assert hpa.sync(state, 30, 8, 1, 20, [2], None) == 10  # max of the proposals in the last 300 s
    assert hpa.sync(state, 400, 10, 1, 20, [2], None) == 2


def test_sync_leaves_zero_to_keda():
    assert hpa.sync(HpaState(), 0, 0, 1, 10, [5], None) == 0
