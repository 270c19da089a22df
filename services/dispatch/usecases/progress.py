"""A request moves on: assigned by hand, on the way, arrived, completed, cancelled; and the
SLA clocks act on it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import psycopg

from homecare.contract.models import CommandType
from homecare.errors import Conflict

from .. import metrics
from ..domain.matching import Location, eta_minutes, travel_minutes
from ..domain.requests import ServiceRequest, Status, TimelineEntry, assign, check_actor_is_provider, transition
from ..domain.sla import arrival_at_risk, assign_overdue, expected_arrival
from ..store import requests, timeline
from .context import Dispatch, resident_location
from .notify import notify
from .offering import check_capacity, escalate, withdraw_pending

log = logging.getLogger(__name__)


def assign_manually(
    conn: psycopg.Connection, ctx: Dispatch, request_id: str, provider_id: str, actor: str
) -> ServiceRequest:
    """A dispatcher assigns (or reassigns) a request to a provider of that service with room."""
    now = ctx.clock()
    request = requests.load(conn, request_id, lock=True)
    if not request.can(Status.ASSIGNED):
        raise Conflict(f"request {request_id} is {request.status.value}; it cannot be assigned")
    withdraw_pending(conn, request, now, actor, "assigned by a dispatcher")
    provider = check_capacity(conn, provider_id)
    if request.service.value not in provider["services"]:
        raise Conflict(f"provider {provider_id} does not provide {request.service.value}")
    minutes = travel_minutes(
        Location(provider["lat"], provider["lon"]), resident_location(conn, request.resident_id), ctx.weights
    )
    request = requests.save(conn, assign(request, provider_id, eta_minutes(minutes), now, actor))
    notify(conn, ctx, request, CommandType.ASSIGNED, now, provider=provider["name"], eta_minutes=request.eta_minutes)
    metrics.TRANSITIONS.labels(Status.ASSIGNED.value).inc()
    return request


def advance(
    conn: psycopg.Connection, ctx: Dispatch, request_id: str, to: Status, actor: str, provider_id: str | None = None
) -> ServiceRequest:
    """On the way, arrived, or completed; a provider may move only its own requests."""
    if to not in (Status.EN_ROUTE, Status.ARRIVED, Status.COMPLETED):
        raise ValueError(f"advance() does not lead to {to.value}")
    now = ctx.clock()
    request = requests.load(conn, request_id, lock=True)
    if provider_id is not None:
        check_actor_is_provider(request, provider_id)
    request = requests.save(conn, transition(request, to, now, actor))
    if to is Status.COMPLETED:
        notify(conn, ctx, request, CommandType.COMPLETED, now)
    metrics.TRANSITIONS.labels(to.value).inc()
    return request


def cancel(conn: psycopg.Connection, ctx: Dispatch, request_id: str, reason: str, actor: str) -> ServiceRequest:
    """A dispatcher cancels a request; the button's light goes off."""
    request = requests.load(conn, request_id, lock=True)
    return cancel_locked(conn, ctx, request, reason, actor, ctx.clock())


def cancel_locked(
    conn: psycopg.Connection, ctx: Dispatch, request: ServiceRequest, reason: str, actor: str, now: datetime,
    **detail: Any,
) -> ServiceRequest:
    """Cancel a request the caller has locked, withdrawing its pending offer."""
    change = transition(request, Status.CANCELLED, now, actor, reason=reason, **detail)
    withdraw_pending(conn, request, now, actor, "request cancelled")
    request = requests.save(conn, change)
    notify(conn, ctx, request, CommandType.CANCELLED, now, reason=reason)
    metrics.TRANSITIONS.labels(Status.CANCELLED.value).inc()
    return request


def escalate_if_overdue(conn: psycopg.Connection, ctx: Dispatch, request_id: str, now: datetime) -> bool:
    """Escalate a request nobody took within its assignment target (timer; request locked)."""
    request = requests.load(conn, request_id, lock=True)
    if not assign_overdue(request, now):
        return False
    target = ctx.policy.for_service(request.service).assign_within
    escalate(conn, ctx, request, f"not assigned within {_spoken(target)}", now)
    return True


def _spoken(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    if seconds < 120:
        return f"{seconds:g} seconds"
    return f"{seconds / 60:g} minutes"


def flag_if_late(conn: psycopg.Connection, ctx: Dispatch, request_id: str, now: datetime) -> bool:
    """Record, once, that an assigned request misses or will miss its arrival target."""
    request = requests.load(conn, request_id, lock=True)
    if not arrival_at_risk(request, now) or not requests.flag_at_risk(conn, request.id, now):
        return False
    arrival = expected_arrival(request)
    timeline.append(conn, request.id, TimelineEntry(now, "system", "sla.at_risk", {
        "sla_due_at": request.sla_due_at.isoformat(),
        "expected_arrival": arrival.isoformat() if arrival else None,
        "provider_id": request.provider_id,
    }))
    log.warning("request %s will miss its arrival target", request.id, extra={"request_id": request.id})
    return True


def add_note(conn: psycopg.Connection, ctx: Dispatch, request_id: str, text: str, actor: str) -> None:
    """A dispatcher's note in a request's timeline (open or closed); NotFound for an unknown id."""
    request = requests.load(conn, request_id)
    timeline.append(conn, request.id, TimelineEntry(ctx.clock(), actor, "note", {"text": text}))
