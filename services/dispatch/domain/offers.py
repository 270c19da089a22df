"""Offers: one provider at a time is asked; a decline or a time-out moves on or escalates."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from homecare.errors import Conflict

from .matching import Scored
from .policy import ServicePolicy


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the request was cancelled or assigned by hand


FAILED = frozenset({OfferStatus.DECLINED, OfferStatus.EXPIRED})


class OfferRefused(Conflict):
    """An answer the offer can no longer take (accepting an expired offer): a Conflict."""


@dataclass(frozen=True)
class Offer:
    id: str
    request_id: str
    provider_id: str
    status: OfferStatus
    created_at: datetime
    deadline_at: datetime
    eta_minutes: int | None = None
    answered_at: datetime | None = None
    preempts_request_id: str | None = None  # the routine job its provider hands back on accepting

    def expired_at(self, now: datetime) -> bool:
        """Whether the deadline has passed."""
        return now >= self.deadline_at


def new_offer(
    offer_id: str, request_id: str, choice: Scored, policy: ServicePolicy, at: datetime,
    preempts_request_id: str | None = None,
) -> Offer:
    """An offer to the chosen provider that lapses after the service's offer time-out."""
    return Offer(
        id=offer_id,
        request_id=request_id,
        provider_id=choice.candidate.provider_id,
        status=OfferStatus.PENDING,
        created_at=at,
        deadline_at=at + policy.offer_timeout,
        eta_minutes=choice.eta_minutes,
        preempts_request_id=preempts_request_id,
    )


def answer(offer: Offer, outcome: OfferStatus, at: datetime) -> Offer:
    """Close a pending offer; an acceptance after the deadline is refused."""
    if outcome is OfferStatus.PENDING:
        raise ValueError("an answer cannot leave the offer pending")
    if offer.status is not OfferStatus.PENDING:
        raise OfferRefused(f"offer {offer.id} is already {offer.status.value}")
    if outcome in (OfferStatus.ACCEPTED, OfferStatus.DECLINED) and offer.expired_at(at):
        raise OfferRefused(f"offer {offer.id} expired at {offer.deadline_at.isoformat()}")
    if outcome is OfferStatus.EXPIRED and not offer.expired_at(at):
        raise OfferRefused(f"offer {offer.id} has not reached its deadline")
    return replace(offer, status=outcome, answered_at=at)
