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
    ranked = rank([busy, idle], job)
    assert ranked[0].candidate.provider_id == "idle"
    busy_parts = ranked[1].parts
    assert busy_parts["load"] == 3.0 and busy_parts["fairness"] == 5.0  # capped at 5 assignments


def test_fairness_spreads_work_between_equally_placed_providers():
    job = Job("meal", priority=3, location=HOME)
    ranked = rank([cand("worked", km=2, recent_assignments=4), cand("rested", km=2.2)], job)
    assert ranked[0].candidate.provider_id == "rested"


def test_continuity_of_care_prefers_a_known_caregiver_when_not_much_slower():
    job = Job("meal", priority=3, location=HOME)
    known = cand("known", km=2.5, visits_with_resident=2)  # 6 min vs 4.8 min: a little slower
    stranger = cand("stranger", km=2)
    ranked = rank([stranger, known], job)
    assert ranked[0].candidate.provider_id == "known"
    assert ranked[0].parts["continuity"] == -4.0  # 2 minutes per visit


def test_continuity_counts_only_within_the_slack():
    job = Job("meal", priority=3, location=HOME)
    weights = MatchWeights(continuity_minutes=10, continuity_slack_minutes=8)
    far_known = cand("known", km=6, visits_with_resident=3)  # 14.4 min: 9.6 min slower than the stranger
    stranger = cand("stranger", km=2)
    ranked = rank([stranger, far_known], job, weights)
    assert ranked[0].candidate.provider_id == "stranger"
    assert ranked[1].parts["continuity"] == 0.0
    # Within the slack the same history wins.
    near_known = cand("known", km=4, visits_with_resident=3)  # 9.6 min: 4.8 min slower
    assert rank([stranger, near_known], job, weights)[0].candidate.provider_id == "known"


def test_continuity_bonus_is_capped():
    job = Job("meal", priority=3, location=HOME)
    ranked = rank([cand("k", visits_with_resident=10)], job, MatchWeights(continuity_minutes=2, continuity_cap=3))
    assert ranked[0].parts["continuity"] == -6.0


def test_a_busy_providers_eta_includes_its_queue_and_starts_where_its_last_job_ends():
    job = Job("meal", priority=3, location=HOME)
    busy = cand("busy", km=0.5, capacity=2, active=1, busy_minutes=25, free_location=km_north(3))
    free = cand("free", km=6, capacity=2)
    ranked = rank([busy, free], job)
    assert [s.candidate.provider_id for s in ranked] == ["free", "busy"]
    by_id = {s.candidate.provider_id: s for s in ranked}
    assert by_id["busy"].wait_minutes == 25
    assert by_id["busy"].eta_minutes == math.ceil(25 + 3 / 25 * 60)
    assert by_id["free"].eta_minutes == math.ceil(6 / 25 * 60)


def test_an_emergency_goes_first_in_a_busy_providers_queue():
    emergency = Job("emergency", priority=1, location=HOME, may_preempt=True)
    busy = cand("busy", km=1, services=("emergency",), capacity=2, active=1, busy_minutes=40, serving_minutes=5,
                free_location=km_north(9))
    (scored,) = rank([busy], emergency)
    assert scored.wait_minutes == 5 and scored.eta_minutes == math.ceil(5 + 1 / 25 * 60)
    assert not scored.preempts  # it had room: nothing to hand back


def test_an_emergency_may_preempt_a_full_provider_with_routine_work_not_started():
    emergency = Job("emergency", priority=1, location=HOME, may_preempt=True)
    full = cand("full", km=1, services=("emergency", "meal"), capacity=1, active=1, preemptible=1)
    serving = cand("serving", km=1, services=("emergency",), capacity=1, active=1, preemptible=0)
    far = cand("far", km=12, services=("emergency",), capacity=1)
    ranked = rank([full, serving, far], emergency)
    assert [s.candidate.provider_id for s in ranked] == ["full", "far"]
    assert ranked[0].preempts and ranked[0].parts["preempt"] == MatchWeights().preempt_minutes
    assert why_not(serving, emergency) == "no free capacity"
    # A routine job never pre-empts, and a provider already asked once is not asked twice.
    assert why_not(full, Job("meal", priority=3, location=HOME)) == "no free capacity"
    asked = cand("asked", km=1, services=("emergency",), capacity=1, active=1, preemptible=1, pending_offers=1)
    assert why_not(asked, emergency) == "no free capacity"


def test_a_free_provider_beats_preemption_unless_it_is_much_further():
    emergency = Job("emergency", priority=1, location=HOME, may_preempt=True)
    full = cand("full", km=1, services=("emergency",), capacity=1, active=1, preemptible=1)
    near_free = cand("free", km=3, services=("emergency",), capacity=1)
    assert rank([full, near_free], emergency)[0].candidate.provider_id == "free"


def test_a_shift_ending_before_the_job_is_done_rules_a_provider_out_except_for_emergencies():
    meal = Job("meal", priority=3, location=HOME, service_minutes=15)  # 4.8 minutes away: done in 19.8
    leaving = cand("leaving", km=2, services=("meal", "emergency"), minutes_left_on_shift=4)
    assert why_not(leaving, meal) == "shift ends before the job would be done"
    assert why_not(leaving, meal, MatchWeights(shift_overrun_minutes=16)) is None  # may run 16 minutes over
    assert why_not(cand("staying", km=2, minutes_left_on_shift=10), meal) is None  # 15 minutes over is fine
    assert why_not(leaving, Job("emergency", priority=1, location=HOME, service_minutes=25, may_preempt=True)) is None


def test_urgency_makes_distance_dominate():
    # For a meal the familiar caregiver is worth a detour; for an emergency the nearest goes.
    known = cand("known", km=5, services=("meal", "emergency"), visits_with_resident=3)
    near = cand("near", km=1, services=("meal", "emergency"))
    weights = MatchWeights(urgency_factor=1.0, continuity_minutes=5, continuity_slack_minutes=15)
    assert rank([known, near], Job("meal", priority=5, location=HOME), weights)[0].candidate.provider_id == "known"
    assert rank([known, near], Job("emergency", priority=1, location=HOME), weights)[0].candidate.provider_id == "near"


def test_repeated_presses_raise_the_urgency_level():
    assert Job("meal", priority=3).urgency_level == 2
    assert Job("meal", priority=3, urgency=3).urgency_level == 4
    assert Job("emergency", priority=1).urgency_level == 4


def test_repeated_presses_make_travel_time_weigh_more():
    plain = rank([cand("a", km=4)], Job("meal", priority=3, location=HOME))[0]
    pressed = rank([cand("a", km=4)], Job("meal", priority=3, urgency=3, location=HOME))[0]
    assert pressed.parts["travel"] == pytest.approx(plain.parts["travel"] * (1 + 0.25 * 4) / (1 + 0.25 * 2))


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
