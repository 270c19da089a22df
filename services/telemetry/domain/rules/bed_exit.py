"""Out of bed at night and not back within the limit (30 minutes by default).

The state of a bed is the latest exit and the latest entry it reported; events may arrive
late or out of order, so each one only ever moves its own time forward.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Finding, Rule, Severity, iso
from services.telemetry.domain.rules.night import is_night, local


@dataclass(frozen=True)
class Presence:
    """What a bed said of its occupant: the latest exit and entry, and whether a provider was
    on site when the latest exit happened."""

    device_id: str
    resident_id: str
    exited_at: datetime | None = None
    entered_at: datetime | None = None
    attended_exit: bool = False  # a provider was on site for the resident when it left


def after_exit(presence: Presence, ts: datetime, attended: bool) -> Presence:
    """The bed reported an exit at ts (a stale, older exit changes nothing)."""
    if presence.exited_at is not None and ts <= presence.exited_at:
        return presence
    return replace(presence, exited_at=ts, attended_exit=attended)


def after_entry(presence: Presence, ts: datetime) -> Presence:
    """The bed reported an entry at ts."""
    if presence.entered_at is not None and ts <= presence.entered_at:
        return presence
    return replace(presence, entered_at=ts)


def out_of_bed(presence: Presence) -> bool:
    """Whether the latest exit has no entry after it."""
    return presence.exited_at is not None and (
        presence.entered_at is None or presence.entered_at < presence.exited_at
    )


def due_at(presence: Presence, limits: RuleLimits) -> datetime | None:
    """When to look again: the end of the allowed absence of a night exit still out of bed."""
    exited = presence.exited_at
    if exited is None or not out_of_bed(presence) or not is_night(exited, limits):
        return None
    return exited + timedelta(minutes=limits.bed_exit_minutes)


def verdict(presence: Presence, now: datetime, limits: RuleLimits, attended_now: bool) -> Finding | None:
    """An alert when the latest exit was at night and the absence exceeded the limit by now (or
    by a late return), unless a provider was on site at the exit or is now."""
    exited = presence.exited_at
    if exited is None or not is_night(exited, limits):
        return None
    returned = None if out_of_bed(presence) else presence.entered_at
    absence = (returned or now) - exited
    limit = timedelta(minutes=limits.bed_exit_minutes)
    if absence <= limit or presence.attended_exit or attended_now:
        return None
    minutes = int(absence.total_seconds() // 60)
    state = f"returned after {minutes} minutes" if returned else f"not back after {minutes} minutes"
    return Finding(
        rule=Rule.NIGHT_BED_EXIT,
        severity=Severity.HIGH,
        resident_id=presence.resident_id,
        device_id=presence.device_id,
        started_at=exited,
        summary=f"left the bed at {local(exited, limits):%H:%M} at night, {state}",
        occurrence=f"{Rule.NIGHT_BED_EXIT.value}:{presence.device_id}:{iso(exited)}",
        evidence={
            "exited_at": iso(exited), "returned_at": iso(returned) if returned else None,
            "checked_at": iso(now), "limit_minutes": limits.bed_exit_minutes,
            "night": [limits.night_start.isoformat("minutes"), limits.night_end.isoformat("minutes")],
            "timezone": limits.timezone,
        },
    )
