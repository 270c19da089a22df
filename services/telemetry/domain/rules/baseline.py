"""Night-time heart or breathing rate off the resident's own baseline of the previous nights."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Finding, Rule, Severity
from services.telemetry.domain.rules.night import night_bounds
from services.telemetry.domain.rules.vitals import Vital

RULE_OF: dict[Vital, Rule] = {"heart_rate": Rule.NIGHT_HEART_RATE, "respiration_rate": Rule.NIGHT_RESPIRATION_RATE}
_NAME = {"heart_rate": "heart rate", "respiration_rate": "respiration rate"}


@dataclass(frozen=True)
class Night:
    """A resident's night from the minute rollups: mean of each vital and minutes with data."""

    night: date
    heart_rate: float | None
    heart_rate_minutes: int
    respiration_rate: float | None
    respiration_rate_minutes: int

    def mean(self, vital: Vital) -> float | None:
        return self.heart_rate if vital == "heart_rate" else self.respiration_rate

    def minutes(self, vital: Vital) -> int:
        return self.heart_rate_minutes if vital == "heart_rate" else self.respiration_rate_minutes


def usable(night: Night, vital: Vital, limits: RuleLimits) -> bool:
    """A night counts when it has a mean from enough minutes of data."""
    return night.mean(vital) is not None and night.minutes(vital) >= limits.baseline_min_minutes


def deviation(
    tonight: Night, previous: Sequence[Night], vital: Vital, limits: RuleLimits, resident_id: str
) -> Finding | None:
    """An alert when tonight's mean is off the baseline by both baseline_sigmas standard
    deviations and baseline_min_change of the baseline mean; None without enough nights."""
    if not usable(tonight, vital, limits):
        return None
    recent = sorted((n for n in previous if n.night < tonight.night), key=lambda n: n.night)
    recent = recent[-limits.baseline_nights:]
    history = [m for n in recent if usable(n, vital, limits) and (m := n.mean(vital)) is not None]
    value = tonight.mean(vital)
    if len(history) < limits.baseline_min_nights or value is None:
        return None
    mean = statistics.fmean(history)
    sigma = statistics.stdev(history)
    off = value - mean
    if abs(off) < limits.baseline_sigmas * sigma or abs(off) < limits.baseline_min_change * mean:
        return None
    start, end = night_bounds(tonight.night, limits)
    direction = "above" if off > 0 else "below"
    rule = RULE_OF[vital]
    return Finding(
        rule=rule,
        severity=Severity.MEDIUM,
        resident_id=resident_id,
        device_id=None,
        started_at=start,
        summary=(f"night {_NAME[vital]} {value:.1f}/min is {abs(off) / mean:.0%} {direction} "
                 f"the {len(history)}-night baseline {mean:.1f}/min"),
        occurrence=f"{rule.value}:{resident_id}:{tonight.night.isoformat()}",
        evidence={
            "night": tonight.night.isoformat(), "from": start.isoformat(), "to": end.isoformat(),
            "mean": value, "minutes": tonight.minutes(vital), "baseline_mean": mean, "baseline_sigma": sigma,
            "sigmas": limits.baseline_sigmas, "min_change": limits.baseline_min_change,
            "baseline": [{"night": n.night.isoformat(), "mean": n.mean(vital), "minutes": n.minutes(vital)}
                         for n in recent],
        },
    )
