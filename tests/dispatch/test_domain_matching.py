"""Matching: eligibility, travel time, and how the weights order candidates."""

import math

import pytest

from services.dispatch.domain.matching import (
    Candidate,
    Job,
    Location,
    MatchWeights,
    eta_minutes,
    haversine_km,
    rank,
    travel_minutes,
    why_not,
)

HOME = Location(31.2304, 121.4737)  # Shanghai, People's Square


def km_north(km: float) -> Location:
    return Location(HOME.lat + km / 111.195, HOME.lon)


def cand(pid, km=1.0, services=("meal",), capacity=2, **kw):
    return Candidate(pid, pid.upper(), frozenset(services), km_north(km), capacity, **kw)


def test_haversine_known_distance():
    # Paris -> London is about 343.5 km great-circle.
    assert haversine_km(Location(48.8566, 2.3522), Location(51.5074, -0.1278)) == pytest.approx(343.5, abs=1.0)
    assert haversine_km(HOME, HOME) == 0.0


def test_travel_minutes_uses_the_configured_speed_and_a_fallback():
    w = MatchWeights(speed_kmh=30)
    assert travel_minutes(km_north(10), HOME, w) == pytest.approx(20.0, rel=1e-3)
    assert travel_minutes(km_north(10), None, w) == w.fallback_travel_minutes


def test_eta_rounds_up_and_is_at_least_one_minute():
    assert eta_minutes(0.0) == 1
    assert eta_minutes(4.01) == 5
    assert eta_minutes(12.0) == 12


@pytest.mark.parametrize(
    "candidate, reason",
    [
        (cand("a", services=("bathing",)), "does not provide meal"),
        (cand("b", on_shift=False), "off shift"),
        (cand("c", capacity=2, active=1, pending_offers=1), "no free capacity"),
        (cand("x"), "already declined"),
    ],
)
def test_ineligible_candidates_say_why(candidate, reason):
    job = Job("meal", priority=3, location=HOME, excluded=frozenset({"x"}))
    assert reason in why_not(candidate, job)
    assert rank([candidate], job) == []


def test_nearest_wins_when_all_else_is_equal():
    job = Job("meal", priority=3, location=HOME)
    ranked = rank([cand("far", km=8), cand("near", km=1), cand("mid", km=4)], job)
    assert [s.candidate.provider_id for s in ranked] == ["near", "mid", "far"]
    assert ranked[0].eta_minutes == math.ceil(1 / 25 * 60)


def test_load_and_fairness_can_outweigh_a_short_distance():
    job = Job("meal", priority=3, location=HOME)
    busy = cand("busy", km=1, capacity=4, active=3, recent_assignments=6)
    idle = cand("idle", km=3, capacity=4)
    assert rank([busy, idle], job)[0].candidate.provider_id == "idle"


def test_continuity_of_care_prefers_a_known_caregiver():
    job = Job("meal", priority=3, location=HOME)
    known = cand("known", km=3, visits_with_resident=2)
    stranger = cand("stranger", km=2)
    ranked = rank([stranger, known], job)
    assert ranked[0].candidate.provider_id == "known"
    assert ranked[0].parts["continuity"] == -20.0


def test_urgency_makes_distance_dominate():
    # For a meal the familiar caregiver is worth a detour; for an emergency the nearest goes.
    known = cand("known", km=5, services=("meal", "emergency"), visits_with_resident=3)
    near = cand("near", km=1, services=("meal", "emergency"))
    weights = MatchWeights(urgency_factor=1.0)
    assert rank([known, near], Job("meal", priority=5, location=HOME), weights)[0].candidate.provider_id == "known"
    assert rank([known, near], Job("emergency", priority=1, location=HOME), weights)[0].candidate.provider_id == "near"


def test_repeated_presses_raise_the_urgency_level():
    assert Job("meal", priority=3).urgency_level == 2
    assert Job("meal", priority=3, urgency=3).urgency_level == 4
    assert Job("emergency", priority=1).urgency_level == 4


def test_weights_are_configurable():
    job = Job("meal", priority=3, location=HOME)
    busy = cand("busy", km=1, capacity=2, active=1)
    idle = cand("idle", km=2, capacity=2)
    assert rank([busy, idle], job, MatchWeights(load_minutes=0))[0].candidate.provider_id == "busy"
    assert rank([busy, idle], job, MatchWeights(load_minutes=60))[0].candidate.provider_id == "idle"


def test_ties_break_on_provider_id():
    job = Job("meal", priority=3, location=HOME)
    ranked = rank([cand("b", km=2), cand("a", km=2)], job)
    assert [s.candidate.provider_id for s in ranked] == ["a", "b"]


def test_speed_must_be_positive():
    with pytest.raises(ValueError):
        MatchWeights(speed_kmh=0)
