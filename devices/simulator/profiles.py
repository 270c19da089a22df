"""How often residents ask for each service, by hour of day (plain data, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from homecare.contract import Service


def _profile(per_day: float, weights: Mapping[int, float], base: float = 0.0) -> tuple[float, ...]:
    """Spread `per_day` presses over the hours in proportion to `weights` (+ `base` each hour)."""
    raw = [base + weights.get(hour, 0.0) for hour in range(24)]
    total = sum(raw)
    return tuple(per_day * w / total for w in raw)


# Expected presses per resident per hour, before a resident's need factor and the scenario's
# multiplier. Meals cluster around breakfast, lunch and dinner; escorts (clinic visits, the
# market) in the morning; bathing in the afternoon and early evening; help getting up or to the
# toilet (mobility) through the waking day and a little at night; emergencies any time, rarely.
PRESS_PROFILE: dict[Service, tuple[float, ...]] = {
    Service.MEAL: _profile(1.3, {6: 1, 7: 3, 8: 1, 11: 2, 12: 2, 17: 2, 18: 2}),
    Service.ESCORT: _profile(0.3, {8: 2, 9: 3, 10: 2, 13: 1, 14: 1}),
    Service.BATHING: _profile(0.25, {14: 1, 15: 2, 16: 2, 17: 1, 19: 1}),
    Service.MOBILITY: _profile(0.7, {h: 1.0 for h in range(7, 22)}, base=0.15),
    Service.EMERGENCY: _profile(0.01, {}, base=1.0),
}


def press_rate(service: Service, when: datetime, factor: float = 1.0) -> float:
    """Expected presses per hour for `service` at local time `when`, scaled by `factor`."""
    return PRESS_PROFILE[Service(service)][when.hour] * factor


def daily_presses(factor: float = 1.0) -> float:
    """Expected presses per resident per day over all services."""
    return sum(sum(hours) for hours in PRESS_PROFILE.values()) * factor


# Minutes a provider spends with the resident, by service (simulated time).
SERVICE_MINUTES: dict[Service, tuple[float, float]] = {
    Service.MEAL: (10, 20),
    Service.BATHING: (25, 40),
    Service.ESCORT: (30, 60),
    Service.MOBILITY: (8, 20),
    Service.EMERGENCY: (15, 35),
}
