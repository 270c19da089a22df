"""SLA clocks: when a waiting request must be escalated, when an assigned one will be late."""

from __future__ import annotations

from datetime import datetime, timedelta

from .requests import WAITING, ServiceRequest, Status

ON_THE_WAY = frozenset({Status.ASSIGNED, Status.EN_ROUTE})


def assign_overdue(request: ServiceRequest, now: datetime) -> bool:
    """Still without a provider when the assignment target has passed: a dispatcher must act."""
    return request.status in WAITING and now >= request.assign_due_at


def expected_arrival(request: ServiceRequest) -> datetime | None:
    """When the assigned provider should be at the door, from the ETA given at assignment."""
    if request.assigned_at is None or request.eta_minutes is None:
        return None
    return request.assigned_at + timedelta(minutes=request.eta_minutes)


def arrival_at_risk(request: ServiceRequest, now: datetime) -> bool:
    """A provider is on the way but the arrival target is missed, or will be by its ETA."""
    if request.status not in ON_THE_WAY:
        return False
    expected = expected_arrival(request)
    return now >= request.sla_due_at or (expected is not None and expected > request.sla_due_at)


def minutes_left(request: ServiceRequest, now: datetime) -> float:
    """Minutes until the arrival target; negative once it is missed."""
    return (request.sla_due_at - now).total_seconds() / 60.0
