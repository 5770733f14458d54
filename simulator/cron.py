"""Cron schedules: KEDA's cron scaler as far as ``activeHours`` uses it (is the window open at
simulated time t?), and the match Karpenter's scheduled disruption budgets use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from components.config import ActiveHours

WEEK_MINUTES = 7 * 24 * 60


def field_matches(field_: str, value: int) -> bool:
    """One cron field: ``*``, numbers, ranges ``a-b`` and comma lists of those."""
    if field_ == "*":
        return True
    for part in field_.split(","):
        if re.fullmatch(r"\d+-\d+", part):
            a, b = map(int, part.split("-"))
            if a <= value <= b:
                return True
        elif part.isdigit() and int(part) == value:
            return True
    return False


def cron_matches(expr: str, when: datetime) -> bool:
    """The five fields of a cron (minute, hour, day of month, month, day of week with 0 = Sunday),
    all of which must match (a restricted day of month and day of week are not OR-ed as in cron)."""
    minute, hour, dom, month, dow = expr.split()
    return (field_matches(minute, when.minute) and field_matches(hour, when.hour)
            and field_matches(dom, when.day) and field_matches(month, when.month)
            and field_matches(dow, (when.weekday() + 1) % 7))


@dataclass
class ActiveWindow:
    """Open from the last ``start`` match until an ``end`` match (UTC; other zones are treated as
    UTC), evaluated once per simulated minute and remembered."""

    hours: ActiveHours
    start: datetime  # wall-clock time of simulated t = 0
    open_by_minute: dict[int, bool] = field(default_factory=dict)

    def is_open(self, t: float) -> bool:
        minute = int(t // 60)
        if minute not in self.open_by_minute:
            self.open_by_minute[minute] = self._opened_since_last_end(minute)
        return self.open_by_minute[minute]

    def _opened_since_last_end(self, minute: int) -> bool:
        now = (self.start + timedelta(minutes=minute)).replace(second=0, microsecond=0)
        for back in range(WEEK_MINUTES):
            moment = now - timedelta(minutes=back)
            if back > 0 and cron_matches(self.hours.end, moment):
                return False
            if cron_matches(self.hours.start, moment):
                return True
        return False
