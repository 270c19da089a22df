"""The escalation ladder: what to do with a request that has no pending offer.

Rung 0, automatic: offer to the best candidate; a decline or a time-out moves to the next one.
While every qualified provider on shift is busy, the request waits in the queue (priority,
urgency, age) and is offered as soon as one has room.
Rung 1, at risk: the assignment target is near, or the best candidate would arrive after the
arrival target. The request is flagged (`sla.at_risk`) so dispatchers see it; offers go on.
Rung 2, escalated: N offers failed, nobody qualified (and reachable) is on shift, the assignment
target passed, or (for services with `escalate_when_at_risk`, emergencies) rung 1 was reached.
The dispatchers are told (the request stays `escalated` on the board, with its reason, until it
is assigned), and the ladder never goes quiet meanwhile: matching goes on as on rung 0 (same
ranking, in time first, a decline or a time-out moves on, nobody asked twice), queueing while
nobody can take it. Whoever comes first wins: a provider accepting, or a dispatcher assigning by
hand (which withdraws the pending offer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .matching import (
    EXCLUDED,
    NO_CAPACITY,
    TEMPORARY,
    UNREACHABLE,
    Candidate,
    Job,
    MatchWeights,
    Scored,
    rank,
    why_not,
)
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
    """The next rung for a request without a pending offer, after `failures` declined or expired
    offers. An escalated request is matched on (the dispatchers were told once; it is not
    escalated again)."""
    pool = list(pool)
    escalated = request.status is Status.ESCALATED
    if not escalated and failures >= policy.declines_before_escalation:
        return Decision(escalate=f"{failures} offers declined or expired")
    if not escalated and assign_overdue(request, now):
        return Decision(escalate=f"not assigned within {spoken(policy.assign_within)}")
    ranked = rank(pool, job, weights)
    if not ranked:
        reasons = [why_not(c, job, weights) for c in pool]
        if not any(r in TEMPORARY for r in reasons):
            why = _nobody(reasons, job)
            return Decision(wait=why) if escalated else Decision(escalate=why)
        risk = at_risk(request, policy, now)
        return Decision(
            wait="every qualified provider on shift is busy", at_risk=risk,
            escalate=risk if risk and policy.escalate_when_at_risk and not escalated else None,
            full=all(r == NO_CAPACITY for r in reasons),
        )
    best = first_in_time(ranked, request, now)
    risk = at_risk(request, policy, now, best.wait_minutes + best.travel_minutes)
    return Decision(
        choice=best, at_risk=risk, escalate=risk if risk and policy.escalate_when_at_risk and not escalated else None,
        ranked=ranked,
    )


def _nobody(reasons: list[str | None], job: Job) -> str:
    """Why nobody can take the job, none of the reasons passing with time."""
    unreachable = reasons.count(UNREACHABLE)
    if EXCLUDED in reasons:
        return "every qualified provider on shift was asked" + (f" ({unreachable} unreachable)" if unreachable else "")
    if unreachable:
        return f"no reachable provider on shift for {job.service} ({unreachable} unreachable)"
    return f"no qualified provider on shift for {job.service}"
