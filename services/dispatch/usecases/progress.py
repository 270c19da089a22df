"""A request moves on: assigned by hand, on the way, arrived, completed, cancelled; and the
SLA clocks act on it."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from homecare.contract.models import CommandType
from homecare.errors import Conflict

from .. import metrics
from ..domain.escalation import at_risk, spoken
from ..domain.matching import arrival, eta_minutes
from ..domain.requests import ServiceRequest, Status, TimelineEntry, assign, check_actor_is_provider, transition
from ..domain.routes import missed
from ..domain.sla import arrival_at_risk, assign_overdue, expected_arrival
from .context import Dispatch
from .notify import notify
from .offering import check_capacity, escalate, flag_at_risk, withdraw_pending
from .pool import candidates, job_of
from .ports import Tx
from .providers import signs_of_life

log = logging.getLogger(__name__)


def assign_manually(
    conn: Tx, ctx: Dispatch, request_id: str, provider_id: str, actor: str,
    *, override_shift: bool | None = None,
) -> ServiceRequest:
    """A dispatcher assigns (or reassigns) a request to a provider of that service with room.

    A provider off shift: `override_shift=False` refuses (409, saying so); True sends them anyway
    and the timeline records the override; None (the default for Python callers written before
    the check) assigns and records `off_shift` in the timeline. The API passes False unless asked."""
    now = ctx.clock()
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    if not request.can(Status.ASSIGNED):
        raise Conflict(f"request {request_id} is {request.status.value}; it cannot be assigned")
    withdraw_pending(conn, ctx, request, now, actor, "assigned by a dispatcher")
    provider = ctx.repos.providers.get(conn, provider_id, lock=True)
    if request.service.value not in provider["services"]:
        raise Conflict(f"provider {provider_id} does not provide {request.service.value}")
    if not provider["on_shift"] and override_shift is False:
        raise Conflict(f"provider {provider_id} is off shift; assign with override_shift to send them anyway")
    provider = check_capacity(conn, ctx, provider_id)
    detail: dict[str, Any] = {}
    if not provider["on_shift"]:
        detail = {"off_shift": True, **({"override_shift": True} if override_shift else {})}
        log.warning("request %s assigned to %s, who is off shift", request_id, provider_id)
    eta = _eta(conn, ctx, request, provider_id, now)
    request = ctx.repos.requests.save(conn, assign(request, provider_id, eta, now, actor, **detail))
    notify(conn, ctx, request, CommandType.ASSIGNED, now, provider=provider["name"], eta_minutes=request.eta_minutes)
    metrics.TRANSITIONS.labels(Status.ASSIGNED.value).inc()
    return request


def _eta(conn: Tx, ctx: Dispatch, request: ServiceRequest, provider_id: str, now: datetime) -> int:
    """Minutes until the provider can be at the door: the jobs it holds first, then the drive."""
    job = job_of(conn, ctx, request, frozenset())
    (candidate,) = candidates(conn, ctx, request, now, on_shift_only=False, every_service=True,
                              provider_ids=[provider_id])
    wait, travel = arrival(candidate, job, ctx.weights)
    return eta_minutes(wait + travel)


def advance(
    conn: Tx, ctx: Dispatch, request_id: str, to: Status, actor: str, provider_id: str | None = None
) -> ServiceRequest:
    """On the way, arrived, or completed; a provider may move only its own requests."""
    if to not in (Status.EN_ROUTE, Status.ARRIVED, Status.COMPLETED):
        raise ValueError(f"advance() does not lead to {to.value}")
    now = ctx.clock()
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    if provider_id is not None:
        check_actor_is_provider(request, provider_id)
        signs_of_life(conn, ctx, provider_id, now)
    request = ctx.repos.requests.save(conn, transition(request, to, now, actor))
    if to is Status.COMPLETED:
        notify(conn, ctx, request, CommandType.COMPLETED, now)
    metrics.TRANSITIONS.labels(to.value).inc()
    return request


def cancel(conn: Tx, ctx: Dispatch, request_id: str, reason: str, actor: str) -> ServiceRequest:
    """A dispatcher cancels a request; the button's light goes off."""
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    return cancel_locked(conn, ctx, request, reason, actor, ctx.clock())


def cancel_locked(
    conn: Tx, ctx: Dispatch, request: ServiceRequest, reason: str, actor: str, now: datetime,
    **detail: Any,
) -> ServiceRequest:
    """Cancel a request the caller has locked, withdrawing its pending offer."""
    change = transition(request, Status.CANCELLED, now, actor, reason=reason, **detail)
    withdraw_pending(conn, ctx, request, now, actor, "request cancelled")
    request = ctx.repos.requests.save(conn, change)
    notify(conn, ctx, request, CommandType.CANCELLED, now, reason=reason)
    metrics.TRANSITIONS.labels(Status.CANCELLED.value).inc()
    return request


def escalate_if_overdue(conn: Tx, ctx: Dispatch, request_id: str, now: datetime) -> bool:
    """Escalate a request nobody took within its assignment target (timer; request locked)."""
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    if not assign_overdue(request, now):
        return False
    target = ctx.policy.for_service(request.service).assign_within
    escalate(conn, ctx, request, f"not assigned within {spoken(target)}", now)
    return True


def flag_if_at_risk(conn: Tx, ctx: Dispatch, request_id: str, now: datetime) -> bool:
    """Rung 1 by the clock: the assignment target is near (timer; request locked). Services that
    escalate when at risk go on to rung 2."""
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    policy = ctx.policy.for_service(request.service)
    reason = at_risk(request, policy, now)
    if reason is None:
        return False
    flagged = flag_at_risk(conn, ctx, request, reason, now)
    if policy.escalate_when_at_risk:
        escalate(conn, ctx, request, reason, now)
    return flagged


def flag_if_late(conn: Tx, ctx: Dispatch, request_id: str, now: datetime) -> bool:
    """Record, once, that an assigned request misses or will miss its arrival target."""
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    if missed(request, now):
        return False  # the provider has not set off and the window is over: missed (plans.flag_missed)
    if not arrival_at_risk(request, now) or not ctx.repos.requests.flag_late(conn, request.id, now):
        return False
    arrival = expected_arrival(request)
    reason = "arrival target missed" if now >= request.sla_due_at else "expected arrival is after the target"
    if request.planned:  # a care plan's visit: its window, and the dispatchers are told (a notice)
        from .plans import late_alert  # plans builds on offering, as this module does

        reason = late_alert(conn, ctx, request.id, now)
    ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, "system", "sla.at_risk", {
        "reason": reason, "sla_due_at": request.sla_due_at.isoformat(),
        "expected_arrival": arrival.isoformat() if arrival else None,
        "provider_id": request.provider_id,
    }))
    log.warning("request %s will miss its arrival target", request.id, extra={"request_id": request.id})
    return True


def add_note(conn: Tx, ctx: Dispatch, request_id: str, text: str, actor: str) -> None:
    """A dispatcher's note in a request's timeline (open or closed); NotFound for an unknown id."""
    request = ctx.repos.requests.load(conn, request_id)
    ctx.repos.timeline.append(conn, request.id, TimelineEntry(ctx.clock(), actor, "note", {"text": text}))
