"""Offers: ask the best provider, take the answer, move on after a decline or a time-out,
escalate when nobody is left."""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg

from homecare.contract.models import CommandType
from homecare.errors import Conflict, Forbidden

from .. import metrics
from ..domain.matching import Job, rank
from ..domain.offers import OfferStatus, answer, new_offer, next_step
from ..domain.requests import ServiceRequest, Status, TimelineEntry, assign, transition
from ..store import new_id, offers, providers, requests, timeline
from .context import Dispatch, resident_location
from .notify import notify

log = logging.getLogger(__name__)


def offer_next(conn: psycopg.Connection, ctx: Dispatch, request: ServiceRequest, now: datetime) -> ServiceRequest:
    """Offer the request to the best provider not yet tried, or escalate it. The request is locked."""
    policy = ctx.policy.for_service(request.service)
    failures, tried = offers.history(conn, request.id)
    job = Job(
        service=request.service.value, priority=request.priority, urgency=request.urgency,
        location=resident_location(conn, request.resident_id), excluded=tried,
    )
    pool = providers.candidates(conn, request.service.value, request.resident_id, now - ctx.fairness_window)
    step = next_step(failures, policy, rank(pool, job, ctx.weights))
    if step.choice is None:
        return escalate(conn, ctx, request, step.escalate_reason or "no provider", now)
    offer = new_offer(new_id("o"), request.id, step.choice, policy, now)
    offers.insert(conn, offer, score=step.choice.cost)
    change = transition(
        request, Status.OFFERED, now, "system", "offer.made", offer_id=offer.id, provider_id=offer.provider_id,
        provider=step.choice.candidate.name, eta_minutes=offer.eta_minutes, deadline_at=offer.deadline_at.isoformat(),
    )
    metrics.OFFERS.labels("made").inc()
    if change.stamp:
        metrics.TRANSITIONS.labels(Status.OFFERED.value).inc()
    return requests.save(conn, change)


def withdraw_pending(conn: psycopg.Connection, request: ServiceRequest, now: datetime, actor: str, why: str) -> None:
    """Take back the request's pending offer, if it has one."""
    pending = offers.pending_for(conn, request.id, lock=True)
    if pending is None:
        return
    offers.save_answer(conn, answer(pending, OfferStatus.WITHDRAWN, now))
    timeline.append(conn, request.id, TimelineEntry(now, actor, "offer.withdrawn", {
        "offer_id": pending.id, "provider_id": pending.provider_id, "reason": why,
    }))
    metrics.OFFERS.labels("withdrawn").inc()


def escalate(
    conn: psycopg.Connection, ctx: Dispatch, request: ServiceRequest, reason: str, now: datetime
) -> ServiceRequest:
    """Hand the request to the dispatchers: no more automatic offers."""
    if request.status is Status.ESCALATED:
        return request
    withdraw_pending(conn, request, now, "system", "escalated")
    change = transition(request, Status.ESCALATED, now, "system", reason=reason)
    log.warning("request %s escalated: %s", request.id, reason, extra={"request_id": request.id})
    metrics.ESCALATIONS.labels(request.service.value).inc()
    metrics.TRANSITIONS.labels(Status.ESCALATED.value).inc()
    return requests.save(conn, change)


def _locked(conn: psycopg.Connection, offer_id: str, provider_id: str | None):
    """The offer and its request, locked in the one order every use case uses: request, offer."""
    head = offers.load(conn, offer_id)
    if provider_id is not None and head.provider_id != provider_id:
        raise Forbidden(f"offer {offer_id} was made to another provider")
    request = requests.load(conn, head.request_id, lock=True)
    return request, offers.load(conn, offer_id, lock=True)


def check_capacity(conn: psycopg.Connection, provider_id: str) -> dict:
    """Lock the provider and make sure it can take one more request; two replicas wait in turn."""
    provider = providers.get(conn, provider_id, lock=True)
    if providers.active_count(conn, provider_id) >= provider["capacity"]:
        raise Conflict(f"provider {provider_id} has no free capacity")
    return provider


def accept_offer(
    conn: psycopg.Connection, ctx: Dispatch, offer_id: str, provider_id: str | None, actor: str
) -> ServiceRequest:
    """The provider takes the request: it is assigned, and the resident is told who comes when."""
    now = ctx.clock()
    request, offer = _locked(conn, offer_id, provider_id)
    accepted = answer(offer, OfferStatus.ACCEPTED, now)
    provider = check_capacity(conn, offer.provider_id)
    change = assign(request, offer.provider_id, offer.eta_minutes or 1, now, actor, offer_id=offer.id)
    offers.save_answer(conn, accepted)
    request = requests.save(conn, change)
    notify(conn, ctx, request, CommandType.ASSIGNED, now, provider=provider["name"], eta_minutes=request.eta_minutes)
    metrics.OFFERS.labels("accepted").inc()
    metrics.TRANSITIONS.labels(Status.ASSIGNED.value).inc()
    return request


def decline_offer(
    conn: psycopg.Connection, ctx: Dispatch, offer_id: str, provider_id: str | None, actor: str,
    reason: str | None = None,
) -> ServiceRequest:
    """The provider says no: offer the next provider, or escalate."""
    now = ctx.clock()
    request, offer = _locked(conn, offer_id, provider_id)
    offers.save_answer(conn, answer(offer, OfferStatus.DECLINED, now))
    timeline.append(conn, request.id, TimelineEntry(now, actor, "offer.declined", {
        "offer_id": offer.id, "provider_id": offer.provider_id, **({"reason": reason} if reason else {}),
    }))
    metrics.OFFERS.labels("declined").inc()
    return offer_next(conn, ctx, request, now)


def expire_offer(conn: psycopg.Connection, ctx: Dispatch, offer_id: str, now: datetime) -> ServiceRequest:
    """An offer nobody answered in time: move on (called by the timer with the request locked)."""
    request, offer = _locked(conn, offer_id, None)
    offers.save_answer(conn, answer(offer, OfferStatus.EXPIRED, now))
    timeline.append(conn, request.id, TimelineEntry(now, "system", "offer.expired", {
        "offer_id": offer.id, "provider_id": offer.provider_id,
    }))
    metrics.OFFERS.labels("expired").inc()
    return offer_next(conn, ctx, request, now)
