"""Out of bed at night and not back within the limit (30 minutes by default).

The state of a bed is the latest exit and the latest entry it reported; events may arrive
late or out of order, so each one only ever moves its own time forward.

An exit while a provider is at the home is theirs to see to, but only while they are there: once
the visit is over (the provider found gone, looked at every VISIT_RECHECK), an exit still without
an entry is judged from that moment, as if the resident had left the bed then.
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
    visit_ended_at: datetime | None = None  # when that provider was found gone, the exit still open


# How often an exit during a visit looks whether the provider has left.
VISIT_RECHECK = timedelta(minutes=5)
# A timer fires once the absence exceeds the limit; at the limit itself the verdict is still "no".
_PAST_THE_LIMIT = timedelta(seconds=1)


def after_exit(presence: Presence, ts: datetime, attended: bool) -> Presence:
    """The bed reported an exit at ts (a stale, older exit changes nothing)."""
    if presence.exited_at is not None and ts <= presence.exited_at:
        return presence
    return replace(presence, exited_at=ts, attended_exit=attended, visit_ended_at=None)


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
    """When to look again: the end of the allowed absence of a night exit still out of bed,
    counted from the end of the visit it happened during (None while that visit goes on:
    `watching_visit`)."""
    exited = presence.exited_at
    if exited is None or not out_of_bed(presence) or not is_night(exited, limits):
        return None
    if presence.attended_exit:
        if presence.visit_ended_at is None:
            return None
        return presence.visit_ended_at + timedelta(minutes=limits.bed_exit_minutes) + _PAST_THE_LIMIT
    return exited + timedelta(minutes=limits.bed_exit_minutes) + _PAST_THE_LIMIT


def watching_visit(presence: Presence, limits: RuleLimits) -> bool:
    """A night exit during a provider's visit, still out of bed, the visit not known to be over:
    look again in VISIT_RECHECK whether the provider is still there."""
    exited = presence.exited_at
    return (exited is not None and presence.attended_exit and presence.visit_ended_at is None
            and out_of_bed(presence) and is_night(exited, limits))


def visit_over(presence: Presence, at: datetime) -> Presence:
    """The provider of an attended exit is gone: from `at` the exit counts as unattended."""
    return replace(presence, visit_ended_at=at)


def verdict(presence: Presence, now: datetime, limits: RuleLimits, attended_now: bool) -> Finding | None:
    """An alert when the latest exit was at night and the absence exceeded the limit by now (or
    by a late return), unless a provider is on site now. An exit during a visit counts from the
    end of the visit, and not at all while it goes on."""
    exited = presence.exited_at
    if exited is None or not is_night(exited, limits):
        return None
    since = exited
    if presence.attended_exit:
        if presence.visit_ended_at is None:
            return None
        since = presence.visit_ended_at
    returned = None if out_of_bed(presence) else presence.entered_at
    absence = (returned or now) - since
    limit = timedelta(minutes=limits.bed_exit_minutes)
    if absence <= limit or attended_now:
        return None
    minutes = int(absence.total_seconds() // 60)
    state = f"returned after {minutes} minutes" if returned else f"not back after {minutes} minutes"
    if presence.attended_exit:
        state = f"{state} after the provider's visit ended"
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
            **({"visit_ended_at": iso(since)} if presence.attended_exit else {}),
            "night": [limits.night_start.isoformat("minutes"), limits.night_end.isoformat("minutes")],
            "timezone": limits.timezone,
        },
    )
