"""The predictive trigger (issue 18) as Prometheus evaluates the rendered query
(``components/render/scaling.py`` ``predictive_query``; production facts 9b):

    clamp_min(predict_linear(sum(rate(vllm:request_success_total[1m]))[range:step], lookahead)
              - rps_per_replica * fixed_pods, 0)

``rate`` over the scraped counter samples in the last minute (the slope between the first and
the last sample, without Prometheus's extrapolation to the window's edges), the subquery at
every ``step`` within ``range`` (aligned to multiples of the step, as Prometheus aligns
subqueries), and ``predict_linear``: the least-squares line through those points, read
``lookahead`` seconds after the evaluation time.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

RATE_WINDOW_SECONDS = 60.0  # rate(...[1m]) in the rendered query


def rate_at(samples: Sequence[tuple[float, float]], at: float, window: float = RATE_WINDOW_SECONDS,
            times: Sequence[float] | None = None) -> float | None:
    """Per-second increase of the counter over the samples in ``(at - window, at]``; None with fewer
    than two. ``samples`` are in time order (scrapes); ``times``, their times, when the caller
    reads many windows of the same samples (the window is found by bisection)."""
    times = [s[0] for s in samples] if times is None else times
    lo, hi = bisect_right(times, at - window), bisect_right(times, at)
    if hi - lo < 2 or times[hi - 1] <= times[lo]:
        return None
    (t0, c0), (t1, c1) = samples[lo], samples[hi - 1]
    return max(c1 - c0, 0.0) / (t1 - t0)


def predict_linear(points: Sequence[tuple[float, float]], at: float, lookahead: float) -> float | None:
    """The least-squares line through ``points``, ``lookahead`` seconds after ``at``; None with fewer than two."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx > 0 else 0.0
    return my + slope * (at + lookahead - mx)


def predicted_rate(samples: Sequence[tuple[float, float]], at: float, range_seconds: float, step_seconds: float,
                   lookahead: float) -> float:
    """``predict_linear(rate(counter[1m])[range:step], lookahead)`` at ``at``; 0 without data (``or vector(0)``)."""
    first = (at - range_seconds) // step_seconds * step_seconds + step_seconds
    held = list(samples)
    times = [s[0] for s in held]
    points = []
    k = 0
    while first + k * step_seconds <= at:
        tau = first + k * step_seconds
        r = rate_at(held, tau, times=times)
        if r is not None:
            points.append((tau, r))
        k += 1
    predicted = predict_linear(points, at, lookahead)
    return 0.0 if predicted is None else predicted


def record(samples: deque[tuple[float, float]], t: float, count: float, keep_seconds: float) -> None:
    """Append one scrape of the counter; drop samples no query can reach any more."""
    samples.append((t, count))
    while samples and samples[0][0] < t - keep_seconds:
        samples.popleft()


@dataclass(frozen=True)
class PredictiveTrigger:
    """The service's ``predictiveScaling`` as rendered (lookahead resolved)."""

    rps_per_replica: float
    lookahead_seconds: float
    range_seconds: float
    step_seconds: float

    @property
    def keep_seconds(self) -> float:
        return self.range_seconds + RATE_WINDOW_SECONDS + self.step_seconds
