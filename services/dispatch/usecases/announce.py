"""Telling people outside the console: an escalated request becomes a notice in the outbox, in
the transaction that escalates it, and an escalated request nobody has taken is announced again
(on the board and through the notices) until someone takes it or it is closed. Routing and
delivery are the sender's (homecare/notify), which records each result in the timeline."""

from __future__ import annotations

import logging
from datetime import datetime

from homecare.notify.model import Notice, request_severity

from ..domain.requests import ServiceRequest, Status, TimelineEntry
from .context import Dispatch
from .ports import Tx

log = logging.getLogger(__name__)

UNTAKEN = frozenset({Status.OPEN, Status.OFFERED, Status.ESCALATED})


def _notice(ctx: Dispatch, request: ServiceRequest, trigger: str, text: str) -> Notice:
    service = request.service.value
    label = "Emergency" if service == "emergency" else f"{service.capitalize()} request"
    verb = {"request.escalated": "escalated", "request.late": "late"}.get(trigger, "still without a provider")
    return Notice(
        trigger=trigger, subject_id=request.id, severity=request_severity(service, request.priority),
        service=service, resident_id=request.resident_id, district=request.district,
        title=f"{label} {request.id} {verb}", text=text, path=f"/requests/{request.id}",
    )


def escalated(conn: Tx, ctx: Dispatch, request: ServiceRequest, reason: str) -> None:
    """The request went to the dispatchers: queue its notice (the rules decide who hears)."""
    ctx.repos.notices.put(conn, _notice(
        ctx, request, "request.escalated",
        f"A {request.service.value} request was escalated to the dispatchers: {reason}.",
    ))


def planned_late(conn: Tx, ctx: Dispatch, request: ServiceRequest, reason: str) -> None:
    """A planned visit is late (its window ended, or its route arrives after it): queue its
    notice, as for an escalation, so the dispatchers outside the console hear of it too."""
    ctx.repos.notices.put(conn, _notice(ctx, request, "request.late", f"{reason.capitalize()}."))


def reannounce(conn: Tx, ctx: Dispatch, request_id: str, now: datetime) -> bool:
    """Announce an escalated request again if nobody has taken it yet; whether it was."""
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    if request.status not in UNTAKEN or not ctx.reannounce.request_applies(request.service.value):
        return False
    count = ctx.repos.requests.mark_reannounced(conn, request.id, now)
    ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, "system", "reannounced", {
        "count": count, "status": request.status.value,
        "every_s": int(ctx.reannounce.every.total_seconds()),
    }))
    ctx.repos.notices.put(conn, _notice(
        ctx, request, "request.reannounced",
        f"The {request.service.value} request escalated earlier has nobody yet"
        f" (announcement {count + 1}).",
    ))
    log.warning("request %s re-announced (%d)", request.id, count, extra={"request_id": request.id})
    return True
