"""Offers (answers, deadlines, the next step) and SLA clocks."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch.domain.matching import Candidate, Location, Scored
from services.dispatch.domain.offers import OfferRefused, OfferStatus, answer, new_offer
from services.dispatch.domain.policy import DispatchPolicy
from services.dispatch.domain.requests import Status, assign, open_request, transition
from services.dispatch.domain.sla import arrival_at_risk, assign_overdue, expected_arrival, minutes_left

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
POLICY = DispatchPolicy.default()
MEAL = POLICY.for_service("meal")


def scored(pid="p-1", eta=7):
    c = Candidate(pid, "Li Mei", frozenset({"meal"}), Location(0, 0), 2)
    return Scored(c, eta - 0.5, eta, 1.0)


def test_new_offer_lapses_after_the_service_time_out():
    offer = new_offer("o-1", "r-1", scored(), MEAL, T0)
    assert offer.status is OfferStatus.PENDING
    assert offer.deadline_at == T0 + MEAL.offer_timeout
    assert offer.eta_minutes == 7
    assert offer.provider_id == "p-1"


def test_accept_before_the_deadline():
    offer = new_offer("o-1", "r-1", scored(), MEAL, T0)
    done = answer(offer, OfferStatus.ACCEPTED, T0 + timedelta(seconds=5))
    assert done.status is OfferStatus.ACCEPTED
    assert done.answered_at == T0 + timedelta(seconds=5)


def test_accepting_after_the_deadline_is_a_conflict():
    offer = new_offer("o-1", "r-1", scored(), MEAL, T0)
    with pytest.raises(OfferRefused, match="expired"):
        answer(offer, OfferStatus.ACCEPTED, offer.deadline_at)


def test_an_answered_offer_takes_no_second_answer():
    offer = answer(new_offer("o-1", "r-1", scored(), MEAL, T0), OfferStatus.DECLINED, T0)
    for outcome in (OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.EXPIRED, OfferStatus.WITHDRAWN):
        with pytest.raises(OfferRefused, match="already declined"):
            answer(offer, outcome, T0 + timedelta(hours=1))


def test_expiry_only_after_the_deadline():
    offer = new_offer("o-1", "r-1", scored(), MEAL, T0)
    with pytest.raises(OfferRefused):
        answer(offer, OfferStatus.EXPIRED, T0 + timedelta(seconds=1))
    assert answer(offer, OfferStatus.EXPIRED, offer.deadline_at).status is OfferStatus.EXPIRED


def test_assign_overdue_only_while_waiting():
    request, _ = open_request("r-1", "res-1", "emergency", POLICY.for_service("emergency"), T0, "system")
    assert not assign_overdue(request, T0 + timedelta(minutes=1))
    assert assign_overdue(request, T0 + timedelta(minutes=2))
    offered = transition(request, Status.OFFERED, T0, "system").request
    assert assign_overdue(offered, T0 + timedelta(minutes=3))
    assigned = assign(offered, "p-1", 10, T0 + timedelta(minutes=1), "provider:p-1").request
    assert not assign_overdue(assigned, T0 + timedelta(minutes=3))


def test_arrival_at_risk_from_eta_or_missed_target():
    request, _ = open_request("r-1", "res-1", "mobility", POLICY.for_service("mobility"), T0, "system")
    on_time = assign(request, "p-1", 10, T0 + timedelta(minutes=5), "provider:p-1").request
    assert expected_arrival(on_time) == T0 + timedelta(minutes=15)
    assert not arrival_at_risk(on_time, T0 + timedelta(minutes=6))
    assert arrival_at_risk(on_time, T0 + timedelta(minutes=30))  # target missed
    late = replace(on_time, eta_minutes=40)
    assert arrival_at_risk(late, T0 + timedelta(minutes=6))  # cannot make it by its own ETA
    arrived = transition(late, Status.ARRIVED, T0 + timedelta(minutes=40), "provider:p-1").request
    assert not arrival_at_risk(arrived, T0 + timedelta(minutes=50))
    assert minutes_left(on_time, T0 + timedelta(minutes=40)) == pytest.approx(-10.0)
