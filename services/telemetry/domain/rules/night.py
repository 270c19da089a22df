"""The night in a resident's local time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.telemetry.domain.rules.limits import RuleLimits


def local(ts: datetime, limits: RuleLimits) -> datetime:
    """A time in the resident's time zone."""
    return ts.astimezone(ZoneInfo(limits.timezone))


def is_night(ts: datetime, limits: RuleLimits) -> bool:
    """Whether ts falls in the night window (which may span midnight), local time."""
    clock = local(ts, limits).time()
    start, end = limits.night_start, limits.night_end
    if start <= end:
        return start <= clock < end
    return clock >= start or clock < end


def night_bounds(night: date, limits: RuleLimits) -> tuple[datetime, datetime]:
    """[start, end) of the night that begins on the local date `night`."""
    zone = ZoneInfo(limits.timezone)
    start = datetime.combine(night, limits.night_start, zone)
    end_day = night if limits.night_start < limits.night_end else night + timedelta(days=1)
    return start, datetime.combine(end_day, limits.night_end, zone)


def nights_touching(first: datetime, last: datetime, limits: RuleLimits) -> list[date]:
    """The nights (by their starting local date) that the minutes from `first` to `last` fall in."""
    out = []
    day = local(first, limits).date() - timedelta(days=1)
    while day <= local(last, limits).date():
        start, end = night_bounds(day, limits)
        if start <= last and first < end:
            out.append(day)
        day += timedelta(days=1)
    return out


def last_ended_night(now: datetime, limits: RuleLimits, settle: timedelta = timedelta(0)) -> date:
    """The latest night (by its starting local date) that ended at least `settle` before now."""
    day = local(now, limits).date()
    for back in range(0, 3):
        night = day - timedelta(days=back)
        if night_bounds(night, limits)[1] + settle <= now:
            return night
    return day - timedelta(days=3)


def clock(text: str) -> time:
    """`HH:MM` as a time."""
    return time.fromisoformat(text)
