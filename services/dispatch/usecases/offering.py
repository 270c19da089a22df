"""Offers: climb the escalation ladder (offer the best provider, queue, flag, escalate; an
escalated request is matched on), take the answer, move on after a decline or a time-out, hand
back a routine job for an emergency."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from homecare.contract.models import CommandType
from homecare.errors import Conflict, Forbidden

from .. import metrics
from ..domain.districts import CROSS_DISTRICT, DistrictPool, district_pool
from ..domain.escalation import Decision, decide
from ..domain.matching import UNREACHABLE, Scored
from ..domain.offers import Offer, OfferStatus, answer, new_offer
from ..domain.requests import ServiceRequest, Status, TimelineEntry, assign, hand_back, transition
from ..domain.workload import NOT_STARTED, to_hand_back
from ..store import new_id
from . import announce
from .context import Dispatch
from .notify import notify
from .pool import active_job, candidates, job_of
from .ports import Tx
from .providers import signs_of_life

log = logging.getLogger(__name__)

_ATTEMPTS = 4  # providers another replica is matching at the same moment are skipped this often


def offer_next(conn: Tx, ctx: Dispatch, request: ServiceRequest, now: datetime) -> ServiceRequest:
    """Offer the request to the best provider not yet tried, queue it, or escalate it. The request is locked."""
    return offer_or_queue(conn, ctx, request, now)[0]


def offer_or_queue(
    conn: Tx, ctx: Dispatch, request: ServiceRequest, now: datetime
) -> tuple[ServiceRequest, Decision]:
    """`offer_next`, with the decision it acted on."""
    if request.status is Status.ESCALATED and ctx.repos.offers.pending_for(conn, request.id, lock=False):
        return request, Decision(wait="an offer is out")  # the queue's walk passes an escalated request by
    policy = ctx.policy.for_service(request.service)
    failures, tried = ctx.repos.offers.history(conn, request.id)
    job = job_of(conn, ctx, request, tried)
    decision, skip = Decision(wait="providers are being matched by another replica"), set()
    chosen = DistrictPool([])
    for _ in range(_ATTEMPTS):
        pool = [c for c in candidates(conn, ctx, request, now) if c.provider_id not in skip]
        # The request's district first; other districts' providers only when none of its own can.
        chosen = district_pool(pool, job, request.district, ctx.weights)
        decision = decide(request, policy, failures, chosen.candidates, job, ctx.weights, now)
        if decision.choice is None or _reserve(conn, ctx, decision.choice):
            break
        skip.add(decision.choice.candidate.provider_id)
        decision = Decision(wait="providers are being matched by another replica")
    if decision.at_risk:
        flag_at_risk(conn, ctx, request, decision.at_risk, now)
    if decision.choice is not None:
        cross = chosen.reason if chosen.cross_district else None
        request = _make_offer(conn, ctx, request, decision.choice, now, cross)
    elif decision.escalate is None:
        request = _queue(conn, ctx, request, decision.wait or "waiting", now)
    if decision.escalate is not None:
        request = escalate(conn, ctx, request, decision.escalate, now)
        if decision.choice is None:  # the dispatchers are told; matching goes on for the escalated request
            return offer_or_queue(conn, ctx, request, now)
    return request, decision


def _reserve(conn: Tx, ctx: Dispatch, choice: Scored) -> bool:
    """Lock the chosen provider and make sure its load is what was scored; False: someone else has it."""
    c = choice.candidate
    if not ctx.repos.providers.try_lock(conn, c.provider_id):
        return False
    active, pending = ctx.repos.providers.load_counts(conn, c.provider_id)
    return (active, pending) == (c.active, c.pending_offers) or active + pending < c.capacity


def _make_offer(
    conn: Tx, ctx: Dispatch, request: ServiceRequest, choice: Scored, now: datetime, cross: str | None = None,
) -> ServiceRequest:
    """Offer the request to the chosen provider; `cross` is why it comes from another district."""
    policy = ctx.policy.for_service(request.service)
    preempts = None
    if choice.preempts:
        held = ctx.repos.providers.active_jobs(conn, choice.candidate.provider_id)  # held only, not offered
        jobs = [active_job(ctx, j) for j in held]
        victim = to_hand_back(jobs, request.priority)
        preempts = victim.request_id if victim else None
    offer = new_offer(new_id("o"), request.id, choice, policy, now, preempts)
    parts = {k: round(v, 3) for k, v in choice.parts.items()}
    ctx.repos.offers.insert(conn, offer, score=round(choice.cost, 3), parts=parts)
    detail = {
        "offer_id": offer.id, "provider_id": offer.provider_id, "provider": choice.candidate.name,
        "eta_minutes": offer.eta_minutes, "deadline_at": offer.deadline_at.isoformat(), "score": round(choice.cost, 2),
        **({"preempts_request_id": preempts} if preempts else {}),
        **({"cross_district": cross} if cross else {}),
    }
    if cross:  # shown as such: the timeline says why help comes from another district
        ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, "system", CROSS_DISTRICT, {
            "reason": cross, "provider_id": offer.provider_id, "provider": choice.candidate.name,
            "district": request.district, "provider_districts": sorted(choice.candidate.districts)}))
    # An escalated request stays escalated (the dispatchers see it) while the offers go on.
    to = Status.ESCALATED if request.status is Status.ESCALATED else Status.OFFERED
    change = transition(request, to, now, "system", "offer.made", **detail)
    metrics.OFFERS.labels("made").inc()
    if change.stamp:
        metrics.TRANSITIONS.labels(Status.OFFERED.value).inc()
    return ctx.repos.requests.save(conn, change)


def _queue(conn: Tx, ctx: Dispatch, request: ServiceRequest, why: str, now: datetime) -> ServiceRequest:
    """Wait for a provider with room; the timer offers again at the next retry."""
    if request.status is Status.OFFERED:
        request = ctx.repos.requests.save(conn, transition(request, Status.OPEN, now, "system", "queued", reason=why))
    elif ctx.repos.requests.retry_of(conn, request.id) is None:  # first time in the queue: say so once
        ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, "system", "queued", {"reason": why}))
    ctx.repos.requests.set_retry(conn, request.id, now + ctx.requeue)
    return request


def flag_at_risk(conn: Tx, ctx: Dispatch, request: ServiceRequest, reason: str, now: datetime) -> bool:
    """Rung 1: record once that the request may miss its targets, so dispatchers see it."""
    if not ctx.repos.requests.flag_at_risk(conn, request.id, now):
        return False
    ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, "system", "sla.at_risk", {
        "reason": reason, "assign_due_at": request.assign_due_at.isoformat(),
        "sla_due_at": request.sla_due_at.isoformat(),
    }))
    metrics.AT_RISK.labels(request.service.value).inc()
    log.warning("request %s at risk: %s", request.id, reason, extra={"request_id": request.id})
    return True


def withdraw_pending(conn: Tx, ctx: Dispatch, request: ServiceRequest, now: datetime, actor: str, why: str) -> None:
    """Take back the request's pending offer, if it has one."""
    pending = ctx.repos.offers.pending_for(conn, request.id, lock=True)
    if pending is None:
        return
    ctx.repos.offers.save_answer(conn, answer(pending, OfferStatus.WITHDRAWN, now))
    ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, actor, "offer.withdrawn", {
        "offer_id": pending.id, "provider_id": pending.provider_id, "reason": why,
    }))
    metrics.OFFERS.labels("withdrawn").inc()


def escalate(
    conn: Tx, ctx: Dispatch, request: ServiceRequest, reason: str, now: datetime
) -> ServiceRequest:
    """Rung 2: tell the dispatchers (the request shows as escalated, with the reason, until it is
    assigned). Matching goes on: an offer already made stays open, and the next ones follow."""
    if request.status is Status.ESCALATED:
        return request
    change = transition(request, Status.ESCALATED, now, "system", reason=reason)
    log.warning("request %s escalated: %s", request.id, reason, extra={"request_id": request.id})
    metrics.ESCALATIONS.labels(request.service.value).inc()
    metrics.TRANSITIONS.labels(Status.ESCALATED.value).inc()
    request = ctx.repos.requests.save(conn, change)
    announce.escalated(conn, ctx, request, reason)
    return request


def _locked(conn: Tx, ctx: Dispatch, offer_id: str, provider_id: str | None) -> tuple[ServiceRequest, Offer]:
    """The offer and its request, locked in the one order every use case uses: request, offer."""
    head = ctx.repos.offers.load(conn, offer_id)
    if provider_id is not None and head.provider_id != provider_id:
        raise Forbidden(f"offer {offer_id} was made to another provider")
    request = ctx.repos.requests.load(conn, head.request_id, lock=True)
    return request, ctx.repos.offers.load(conn, offer_id, lock=True)


def check_capacity(conn: Tx, ctx: Dispatch, provider_id: str) -> dict[str, Any]:
    """Lock the provider and make sure it can take one more request; two replicas wait in turn."""
    provider = ctx.repos.providers.get(conn, provider_id, lock=True)
    if ctx.repos.providers.active_count(conn, provider_id) >= provider["capacity"]:
        raise Conflict(f"provider {provider_id} has no free capacity")
    return provider


def accept_offer(
    conn: Tx, ctx: Dispatch, offer_id: str, provider_id: str | None, actor: str
) -> ServiceRequest:
    """The provider takes the request: it is assigned, and the resident is told who comes when."""
    now = ctx.clock()
    request, offer = _locked(conn, ctx, offer_id, provider_id)
    signs_of_life(conn, ctx, provider_id, now)
    accepted = answer(offer, OfferStatus.ACCEPTED, now)
    victim = ctx.repos.requests.load(conn, offer.preempts_request_id, lock=True) if offer.preempts_request_id else None
    provider = ctx.repos.providers.get(conn, offer.provider_id, lock=True)
    if victim is not None and ctx.repos.providers.active_count(conn, offer.provider_id) >= provider["capacity"]:
        _hand_back(conn, ctx, victim, provider, request, now, actor)
    provider = check_capacity(conn, ctx, offer.provider_id)
    change = assign(request, offer.provider_id, offer.eta_minutes or 1, now, actor, offer_id=offer.id)
    ctx.repos.offers.save_answer(conn, accepted)
    request = ctx.repos.requests.save(conn, change)
    notify(conn, ctx, request, CommandType.ASSIGNED, now, provider=provider["name"], eta_minutes=request.eta_minutes)
    metrics.OFFERS.labels("accepted").inc()
    metrics.TRANSITIONS.labels(Status.ASSIGNED.value).inc()
    return request


def _hand_back(
    conn: Tx, ctx: Dispatch, victim: ServiceRequest, provider: dict[str, Any], cause: ServiceRequest,
    now: datetime, actor: str,
) -> None:
    """The provider gives a routine job back to the queue to take `cause`; its resident is told."""
    if victim.provider_id != provider["id"] or victim.status not in NOT_STARTED:
        return  # finished or moved meanwhile; the capacity check decides
    reason = f"{provider['name']} was called away to a more urgent request ({cause.service.value})"
    victim = ctx.repos.requests.save(conn, hand_back(
        victim, ctx.policy.for_service(victim.service), now, actor, reason, for_request_id=cause.id,
    ))
    ctx.repos.requests.set_retry(conn, victim.id, now)  # offered to someone else at the next timer pass
    notify(conn, ctx, victim, CommandType.ACKNOWLEDGED, now)  # back to "received, waiting"
    metrics.PREEMPTIONS.labels(victim.service.value).inc()
    log.info("request %s handed back: %s", victim.id, reason, extra={"request_id": victim.id})


def decline_offer(
    conn: Tx, ctx: Dispatch, offer_id: str, provider_id: str | None, actor: str,
    reason: str | None = None,
) -> ServiceRequest:
    """The provider says no: offer the next provider, or escalate."""
    now = ctx.clock()
    request, offer = _locked(conn, ctx, offer_id, provider_id)
    signs_of_life(conn, ctx, provider_id, now)
    ctx.repos.offers.save_answer(conn, answer(offer, OfferStatus.DECLINED, now))
    ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, actor, "offer.declined", {
        "offer_id": offer.id, "provider_id": offer.provider_id, **({"reason": reason} if reason else {}),
    }))
    metrics.OFFERS.labels("declined").inc()
    return offer_next(conn, ctx, request, now)


def expire_offer(conn: Tx, ctx: Dispatch, offer_id: str, now: datetime) -> ServiceRequest:
    """An offer nobody answered in time: move on (called by the timer with the request locked)."""
    request, offer = _locked(conn, ctx, offer_id, None)
    ctx.repos.offers.save_answer(conn, answer(offer, OfferStatus.EXPIRED, now))
    ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, "system", "offer.expired", {
        "offer_id": offer.id, "provider_id": offer.provider_id,
    }))
    metrics.OFFERS.labels("expired").inc()
    return offer_next(conn, ctx, request, now)


def withdraw_from_unreachable(conn: Tx, ctx: Dispatch, offer_id: str, now: datetime) -> ServiceRequest:
    """An offer out to a provider whose app has gone quiet: take it back now rather than wait for
    its time-out, and move on (timer, request locked). Withdrawn, not expired: the provider did
    not let it lapse, so it counts toward neither escalation nor "asked already"."""
    request, offer = _locked(conn, ctx, offer_id, None)
    if offer.status is not OfferStatus.PENDING:
        return request
    ctx.repos.offers.save_answer(conn, answer(offer, OfferStatus.WITHDRAWN, now))
    ctx.repos.timeline.append(conn, request.id, TimelineEntry(now, "system", "offer.withdrawn", {
        "offer_id": offer.id, "provider_id": offer.provider_id, "reason": UNREACHABLE,
    }))
    metrics.OFFERS.labels("withdrawn").inc()
    log.info("offer %s withdrawn: provider %s unreachable", offer.id, offer.provider_id,
             extra={"request_id": request.id})
    return offer_next(conn, ctx, request, now)
