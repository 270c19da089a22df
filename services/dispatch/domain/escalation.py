"""The escalation ladder: what to do with a request that has no pending offer.

Rung 0, automatic: offer to the best candidate; a decline or a time-out moves to the next one.
While every qualified provider on shift is busy, the request waits in the queue (priority,
urgency, age) and is offered as soon as one has room.
Rung 1, at risk: the assignment target is near, or the best candidate would arrive after the
arrival target. The request is flagged (`sla.at_risk`) so dispatchers see it; offers go on.
Rung 2, escalated: N offers failed, nobody qualified is on shift, the assignment target passed,
or (for services with `escalate_when_at_risk`, emergencies) rung 1 was reached. Dispatchers
decide from here: no new automatic offers; an offer already made stays open until it lapses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .matching import EXCLUDED, NO_CAPACITY, TEMPORARY, Candidate, Job, MatchWeights, Scored, rank, why_not
from .policy import ServicePolicy
from .requests import ServiceRequest, Status
from .sla import assign_overdue


@dataclass(frozen=True)
class Decision:
    """Offer to `choice`, or wait; escalate when `escalate` says why; flag when `at_risk` says why."""

    choice: Scored | None = None
    wait: str | None = None
    escalate: str | None = None
    at_risk: str | None = None
    ranked: list[Scored] = field(default_factory=list)
    # Every candidate is busy for any request of this service and priority, not only this one
    # (nobody excluded, no shift too short for this trip): the others can wait for the next pass.
    full: bool = False


# An escalated request gets no automatic offer: the dispatchers decide.
ESCALATED_WAITS = Decision(wait="escalated: the dispatchers decide")


def spoken(duration: timedelta) -> str:
    """A duration as a dispatcher would say it."""
    seconds = duration.total_seconds()
    if seconds < 120:
        return f"{seconds:g} seconds"
    return f"{seconds / 60:g} minutes"


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M:%S")


def at_risk(
    request: ServiceRequest, policy: ServicePolicy, now: datetime, best_eta_minutes: float | None = None
) -> str | None:
    """Why a waiting request is at risk of missing its targets (rung 1), or None."""
    if request.status not in (Status.OPEN, Status.OFFERED, Status.ESCALATED):
        return None
    if now >= request.assign_due_at - policy.warn_before_assign_due:
        return f"assignment target approaching (due {_clock(request.assign_due_at)})"
    if best_eta_minutes is not None:
        predicted = now + timedelta(minutes=best_eta_minutes)
        if predicted > request.sla_due_at:
            return f"predicted arrival {_clock(predicted)} is after the target {_clock(request.sla_due_at)}"
    return None


def first_in_time(ranked: list[Scored], request: ServiceRequest, now: datetime) -> Scored:
    """The best-ranked candidate predicted to arrive by the request's arrival target; the best
    one when nobody can (the request is then at risk, and flagged so). The score weighs the ETA
    with fairness and continuity, which must never buy a late arrival while someone is in time."""
    for scored in ranked:
        if now + timedelta(minutes=scored.wait_minutes + scored.travel_minutes) <= request.sla_due_at:
            return scored
    return ranked[0]


def decide(
    request: ServiceRequest,
    policy: ServicePolicy,
    failures: int,
    pool: Iterable[Candidate],
    job: Job,
    weights: MatchWeights,
    now: datetime,
) -> Decision:
    """The next rung for a request without a pending offer, after `failures` declined or expired offers."""
    pool = list(pool)
    if request.status is Status.ESCALATED:
        return ESCALATED_WAITS
    if failures >= policy.declines_before_escalation:
        return Decision(escalate=f"{failures} offers declined or expired")
    if assign_overdue(request, now):
        return Decision(escalate=f"not assigned within {spoken(policy.assign_within)}")
    ranked = rank(pool, job, weights)
    if not ranked:
        reasons = [why_not(c, job, weights) for c in pool]
        if not any(r in TEMPORARY for r in reasons):
            if EXCLUDED in reasons:
                return Decision(escalate="every qualified provider on shift was asked")
            return Decision(escalate=f"no qualified provider on shift for {job.service}")
        risk = at_risk(request, policy, now)
        return Decision(
            wait="every qualified provider on shift is busy", at_risk=risk,
            escalate=risk if risk and policy.escalate_when_at_risk else None,
            full=all(r == NO_CAPACITY for r in reasons),
        )
    best = first_in_time(ranked, request, now)
    risk = at_risk(request, policy, now, best.wait_minutes + best.travel_minutes)
    return Decision(
        choice=best, at_risk=risk, escalate=risk if risk and policy.escalate_when_at_risk else None, ranked=ranked
    )
