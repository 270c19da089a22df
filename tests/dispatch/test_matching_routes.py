"""Route-aware matching: a job goes where on a provider's planned route every planned visit still
starts in its window, or the provider is refused with PLANS_LATE; the trade-off shows the faster
answers that would make planned visits late; emergencies go first and say who becomes late.
At 30 km/h a kilometre is two minutes, so the arithmetic below can be followed by hand."""

import math

import pytest

from services.dispatch.domain.matching import (
    EARTH_RADIUS_KM,
    PLANS_LATE,
    TEMPORARY,
    Candidate,
    Job,
    Location,
    MatchWeights,
    Upcoming,
    placements,
    rank,
    tradeoff,
    why_not,
)

HOME = Location(31.2304, 121.4737)
W = MatchWeights(speed_kmh=30)
KM_PER_DEGREE = 2 * math.pi * EARTH_RADIUS_KM / 360


def km(north: float) -> Location:
    return Location(HOME.lat + north / KM_PER_DEGREE, HOME.lon)


def stop(rid: str, at_km: float, earliest: float, latest: float, minutes: float = 30) -> Upcoming:
    return Upcoming(rid, km(at_km), earliest, latest, minutes, f"visit {rid}")


def cand(pid: str, at_km: float = 0.0, route: tuple[Upcoming, ...] = (), **kw) -> Candidate:
    return Candidate(pid, pid.upper(), frozenset({"meal", "emergency"}), km(at_km), 2, route=route, **kw)


def meal(at_km: float, minutes: float = 20) -> Job:
    return Job("meal", priority=3, location=km(at_km), service_minutes=minutes)


def test_without_a_route_nothing_changes():
    [scored] = rank([cand("a", 3.0)], meal(0), W)
    assert (scored.position, scored.late, scored.eta_minutes, scored.wait_minutes) == (0, (), 6, 0.0)


def test_a_job_goes_before_a_planned_visit_when_its_window_allows():
    route = (stop("s1", 2, earliest=60, latest=90),)
    [scored] = rank([cand("a", route=route)], meal(1), W)
    # 2 min to the job, 20 there, 2 to the visit: at 24, it waits for its window at 60.
    assert (scored.position, scored.eta_minutes, scored.late) == (0, 2, ())


def test_a_job_waits_until_after_a_planned_visit_whose_window_it_would_break():
    route = (stop("s1", 2, earliest=0, latest=10),)
    c = cand("a", route=route)
    job = meal(-3)
    first, after = placements(c, job, W)
    assert first.late == (("s1", 26.0),)  # 6 to the job, 20 there, 10 to the visit: starts at 36, latest 10
    assert after.late == ()
    [scored] = rank([c], job, W)
    # The visit: 4 min to get there, 30 there; then 10 to the job.
    assert scored.position == 1
    assert (scored.wait_minutes, scored.travel_minutes) == (pytest.approx(34.0), pytest.approx(10.0))
    assert scored.eta_minutes == 44
    # The trade-off: going first would be 38 minutes sooner, with s1 late by 26.
    [faster] = tradeoff([c], job, W)
    assert (faster.position, faster.eta_minutes, faster.late) == (0, 6, (("s1", 26.0),))


def test_a_job_may_go_between_planned_visits():
    route = (stop("s1", 1, earliest=0, latest=5, minutes=10), stop("s2", 1, earliest=100, latest=110, minutes=10))
    [scored] = rank([cand("a", route=route)], meal(2), W)
    assert (scored.position, scored.eta_minutes) == (1, 14)  # s1 from 2 to 12, then 2 min to the job


def test_refused_when_no_place_keeps_both_the_plans_and_the_shift():
    route = (stop("s1", 2, earliest=0, latest=10),)
    c = cand("a", route=route, minutes_left_on_shift=20)  # after s1 it would end at 64, past 20 + 15
    job = meal(-3)
    assert why_not(c, job, W) == PLANS_LATE and PLANS_LATE in TEMPORARY
    assert rank([c], job, W) == []
    [faster] = tradeoff([c], job, W)
    assert faster.late == (("s1", 26.0),) and faster.eta_minutes == 6


def test_the_fastest_provider_would_make_a_visit_late_so_another_goes():
    routed = cand("routed", route=(stop("s1", 2, earliest=0, latest=10),))
    free = cand("free", 8.0)  # 11 km from the job: 22 minutes
    job = meal(-3)
    ranked = rank([routed, free], job, W)
    assert [s.candidate.provider_id for s in ranked] == ["free", "routed"]
    assert ranked[0].eta_minutes == 22 and ranked[1].eta_minutes == 44
    assert [(s.candidate.provider_id, s.eta_minutes, s.late) for s in tradeoff([routed, free], job, W)] == [
        ("routed", 6, (("s1", 26.0),))]


def test_an_emergency_goes_first_and_says_who_becomes_late():
    route = (stop("s1", 2, earliest=0, latest=10), stop("s2", 2, earliest=200, latest=230))
    c = cand("a", route=route)
    sos = Job("emergency", priority=1, location=km(-3), service_minutes=20, may_preempt=True)
    assert why_not(c, sos, W) is None
    [scored] = rank([c], sos, W)
    assert (scored.position, scored.eta_minutes, scored.late) == (0, 6, (("s1", 26.0),))  # s2 still in time
    assert tradeoff([c], sos, W) == []


def test_a_visit_already_late_is_not_blamed_on_a_job_that_does_not_delay_it():
    route = (stop("s1", 5, earliest=0, latest=1),)  # 10 min away: late by 9 whatever happens
    c = cand("a", route=route)
    [scored] = rank([c], meal(0, minutes=0), W)
    assert (scored.position, scored.late) == (0, ())
    [first, _] = placements(c, meal(0, minutes=5), W)
    assert first.late == (("s1", 14.0),)  # five more minutes late: listed with its lateness


def test_held_jobs_come_before_the_route():
    route = (stop("s1", 2, earliest=0, latest=40),)
    c = cand("a", route=route, active=1, busy_minutes=20, free_location=km(0))
    [scored] = rank([c], meal(1), W)
    # Position 0 after the held job: sets off at 20, arrives 22, done 42, s1 at 44 > 40: late. After s1:
    # s1 at 24, done 54, 2 min back to the job.
    assert (scored.position, scored.eta_minutes) == (1, 56)


def test_a_margin_keeps_room_before_a_planned_visit_s_window_ends():
    # The job next door (1 km: 2 min) takes 20 minutes; the visit 1 km further starts at 24 at the
    # earliest after it, its window closes at 30: six minutes to spare.
    route = (stop("s1", 2, earliest=0, latest=30),)
    [loose] = rank([cand("a", route=route)], meal(1), MatchWeights(speed_kmh=30, plan_margin_minutes=5))
    assert (loose.position, loose.late) == (0, ())
    # Asking for ten minutes of room, the job waits until after the visit (not late, but too tight).
    strict = MatchWeights(speed_kmh=30, plan_margin_minutes=10)
    [after] = rank([cand("a", route=route)], meal(1), strict)
    assert after.position == 1
    p0 = placements(cand("a", route=route), meal(1), strict)[0]
    assert p0.squeezed and not p0.late
    # A visit already inside its margin is not held against the job unless the job pushes it further.
    already = (stop("s1", 2, earliest=0, latest=5),)
    [later] = rank([cand("a", route=already)], meal(1), strict)
    assert later.position == 1


def test_moving_planned_visits_costs_route_minutes():
    # "a" is 1 km away with a planned visit at the job's door that the job would delay; "b" is free,
    # 2 km away (2 minutes later). With a route cost of 5 minutes, the free one goes first.
    route = (stop("s1", 1, earliest=0, latest=60),)
    job = meal(1)
    plain = rank([cand("a", 0, route=route), cand("b", -1)], job, W)
    assert plain[0].candidate.provider_id == "a"
    costed = rank([cand("a", 0, route=route), cand("b", -1)], job, MatchWeights(speed_kmh=30, route_minutes=5))
    assert [s.candidate.provider_id for s in costed] == ["b", "a"]
    assert costed[1].parts["route"] == 5 and costed[0].parts["route"] == 0
    # A job that leaves the route's times as they were (the visit waits for its window anyway) costs nothing.
    roomy = (stop("s1", 1, earliest=120, latest=180),)
    [s] = rank([cand("a", 0, route=roomy)], job, MatchWeights(speed_kmh=30, route_minutes=5))
    assert s.parts["route"] == 0
