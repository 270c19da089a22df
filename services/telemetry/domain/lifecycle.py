"""The lifecycle of an alert: open -> acknowledged -> resolved (open -> resolved too), with an
assignee at any time before it is resolved. Pure: the store loads and saves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from homecare.errors import Conflict, Invalid

OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
STATES = (OPEN, ACKNOWLEDGED, RESOLVED)
SYSTEM = "system"


@dataclass(frozen=True)
class AlertState:
    """The mutable part of an alert."""

    id: str
    state: str
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    assignee: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None


def acknowledge(alert: AlertState, by: str, now: datetime) -> AlertState:
    """Someone has seen the alert and takes care of it; only an open alert can be acknowledged."""
    if alert.state != OPEN:
        raise Conflict(f"alert {alert.id} is {alert.state}; only an open alert can be acknowledged")
    return replace(alert, state=ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by)


def assign(alert: AlertState, assignee: str) -> AlertState:
    """Give the alert to someone; a resolved alert cannot be reassigned."""
    if alert.state == RESOLVED:
        raise Conflict(f"alert {alert.id} is resolved; it cannot be assigned")
    assignee = assignee.strip()
    if not assignee:
        raise Invalid("assignee: must not be empty")
    return replace(alert, assignee=assignee)


def resolve(alert: AlertState, by: str, now: datetime, note: str | None) -> AlertState:
    """Close the alert with a note; resolving twice is a conflict."""
    if alert.state == RESOLVED:
        raise Conflict(f"alert {alert.id} is already resolved")
    return replace(alert, state=RESOLVED, resolved_at=now, resolved_by=by, resolution_note=note)
