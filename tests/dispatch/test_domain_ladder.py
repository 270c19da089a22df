"""The escalation ladder, the waiting queue, workloads and pre-emption, on the pure core."""

from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch.domain.escalation import at_risk, decide
from services.dispatch.domain.matching import OFF_SHIFT, UNREACHABLE, Candidate, Job, Location, MatchWeights, why_not
from services.dispatch.domain.policy import DispatchPolicy
from services.dispatch.domain.presence import presence, reachable
from services.dispatch.domain.requests import (
    Status,
    TransitionRefused,
    assign,
    hand_back,
    open_request,
    press_again,
    queue_key,
    transition,
)
from services.dispatch.domain.workload import ActiveJob, to_hand_back, workload

T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
POLICY = DispatchPolicy.default()
MEAL = POLICY.for_service("meal")
EMERGENCY = POLICY.for_service("emergency")
HOME = Location(31.2304, 121.4737)
W = MatchWeights()


def km_north(km: float) -> Location:
    return Location(HOME.lat + km / 111.195, HOME.lon)


def cand(pid, km=1.0, services=("meal",), capacity=1, **kw):
    return Candidate(pid, pid.upper(), frozenset(services), km_north(km), capacity, **kw)


def request(service="meal", at=T0, **kw):
    r, _ = open_request("r-1", "res-1", service, POLICY.for_service(service), at, "system", location=HOME, **kw)
    return r


def job(service="meal", excluded=frozenset(), **kw):
    policy = POLICY.for_service(service)
    return Job(service, policy.priority, location=HOME, excluded=excluded, may_preempt=policy.may_preempt,
               service_minutes=policy.expected_service.total_seconds() / 60, **kw)


# -- rung 0: offer, or wait in the queue --------------------------------------------------------


def test_rung_0_offers_the_best_candidate():
    d = decide(request(), MEAL, 0, [cand("far", km=5), cand("near", km=1)], job(), W, T0)
    assert d.choice.candidate.provider_id == "near"
    assert d.escalate is None and d.at_risk is None and d.wait is None
    assert [s.candidate.provider_id for s in d.ranked] == ["near", "far"]


def test_when_every_qualified_provider_is_busy_the_request_waits_instead_of_escalating():
    busy = cand("busy", active=1)
    d = decide(request(), MEAL, 0, [busy], job(), W, T0)
    assert d.choice is None and d.escalate is None
    assert d.wait == "every qualified provider on shift is busy"


def test_a_service_is_full_only_when_every_provider_is_busy_for_any_request_of_it():
    busy = cand("busy", active=1)
    assert decide(request(), MEAL, 0, [busy], job(), W, T0).full
    # A provider with room that this request may not have (it declined it) has room for others.
    declined = cand("declined")
    d = decide(request(), MEAL, 0, [busy, declined], job(excluded=frozenset({"declined"})), W, T0)
    assert d.choice is None and d.wait == "every qualified provider on shift is busy" and not d.full
    assert not decide(request(), MEAL, 0, [busy, cand("free")], job(), W, T0).full  # offered


def test_the_queue_serves_priority_then_urgency_then_age():
    meal_old = request("meal", T0)
    meal_new = request("meal", T0 + timedelta(minutes=1))
    meal_pressed = press_again(request("meal", T0 + timedelta(minutes=2)), T0, "device:b").request
    mobility = request("mobility", T0 + timedelta(minutes=3))
    order = sorted([meal_new, meal_pressed, mobility, meal_old], key=queue_key)
    assert order == [mobility, meal_pressed, meal_old, meal_new]


# -- rung 1: at risk, flagged, offers go on -----------------------------------------------------


def test_rung_1_when_the_assignment_target_approaches():
    r = request()
    warn_at = r.assign_due_at - MEAL.warn_before_assign_due
    assert r.assign_warn_at == warn_at
    assert at_risk(r, MEAL, warn_at - timedelta(seconds=1)) is None
    assert "assignment target approaching" in at_risk(r, MEAL, warn_at)
    d = decide(r, MEAL, 0, [cand("near")], job(), W, warn_at)
    assert d.choice.candidate.provider_id == "near"  # still offered
    assert "assignment target approaching" in d.at_risk and d.escalate is None


def test_rung_1_when_the_best_arrival_is_predicted_after_the_target():
    far = cand("far", km=30)  # 72 minutes away, the meal target is 60
    d = decide(request(), MEAL, 0, [far], job(), W, T0)
    assert d.choice is not None and d.escalate is None
    assert d.at_risk.startswith("predicted arrival 04:12:")
    # A busy provider's queue counts too.
    queued = cand("queued", km=1, capacity=2, active=1, busy_minutes=58)
    assert "predicted arrival" in decide(request(), MEAL, 0, [queued], job(), W, T0).at_risk


def test_a_candidate_in_time_is_offered_before_a_better_scored_one_who_would_be_late():
    # Close to the meal's target, due in 59 minutes: the score (ETA, fairness, workload) prefers
    # the first, who would arrive half a minute late; the second, who has done more today, is in time.
    late = cand("late", km=24.8)  # 59.5 min of driving
    in_time = cand("in-time", km=24.0, recent_assignments=20)
    d = decide(request(at=T0 - timedelta(minutes=1)), MEAL, 0, [late, in_time], job(), W, T0)  # due in 59 min
    assert [s.candidate.provider_id for s in d.ranked] == ["late", "in-time"]  # the score's order
    assert d.choice.candidate.provider_id == "in-time" and d.at_risk is None
    # Nobody in time: the best is offered, and the request is flagged at risk.
    far = decide(request(), MEAL, 0, [cand("far", km=30), cand("farther", km=40)], job(), W, T0)
    assert far.choice.candidate.provider_id == "far" and far.at_risk.startswith("predicted arrival")


# -- rung 2: escalated to the dispatchers -------------------------------------------------------


def test_rung_2_after_n_failed_offers():
    d = decide(request(), MEAL, MEAL.declines_before_escalation, [cand("near")], job(), W, T0)
    assert d.choice is None and d.escalate == "3 offers declined or expired"


def test_rung_2_when_nobody_qualified_is_on_shift():
    pool = [cand("bather", services=("bathing",)), cand("home", on_shift=False)]
    assert decide(request(), MEAL, 0, pool, job(), W, T0).escalate == "no qualified provider on shift for meal"
    asked = decide(request(), MEAL, 1, [cand("asked")], job(excluded=frozenset({"asked"})), W, T0)
    assert asked.escalate == "every qualified provider on shift was asked"


def test_rung_2_when_the_assignment_target_passed():
    r = request()
    d = decide(r, MEAL, 0, [cand("near", active=1)], job(), W, r.assign_due_at)
    assert d.escalate == "not assigned within 20 minutes"


def test_an_emergency_at_risk_is_escalated_at_once_and_still_offered():
    r = request("emergency")
    far = cand("far", km=25, services=("emergency",))  # 60 minutes: after the 45-minute target
    d = decide(r, EMERGENCY, 0, [far], job("emergency"), W, T0)
    assert d.choice.candidate.provider_id == "far"
    assert d.escalate == d.at_risk and "predicted arrival" in d.escalate
    later = r.assign_due_at - EMERGENCY.warn_before_assign_due
    near = cand("near", km=1, services=("emergency",))
    assert "assignment target approaching" in decide(r, EMERGENCY, 1, [near], job("emergency"), W, later).escalate


def test_an_escalated_request_is_still_matched_and_not_escalated_again():
    r = transition(request(), Status.ESCALATED, T0, "system").request
    # Past every escalation trigger (failures, the assignment target): the ladder still offers,
    # the same ranking, in time first, nobody asked twice.
    overdue = r.assign_due_at + timedelta(minutes=5)
    pool = [cand("near"), cand("nearer", km=0.5), cand("far", km=5)]
    d = decide(r, MEAL, 7, pool, job(excluded=frozenset({"nearer"})), W, overdue)
    assert d.choice.candidate.provider_id == "near"
    assert d.escalate is None and d.at_risk == f"assignment target approaching (due {r.assign_due_at:%H:%M:%S})"
    # Nobody free: it waits in the queue (the dispatchers were told once), and is not escalated again.
    busy = decide(r, MEAL, 7, [cand("busy", active=1)], job(), W, overdue)
    assert busy.choice is None and busy.escalate is None and busy.wait == "every qualified provider on shift is busy"
    asked = decide(r, MEAL, 7, [cand("near")], job(excluded=frozenset({"near"})), W, overdue)
    assert asked.choice is None and asked.escalate is None
    assert asked.wait == "every qualified provider on shift was asked"
    e = transition(request("emergency"), Status.ESCALATED, T0, "system").request
    far = cand("far", km=25, services=("emergency",))
    late = decide(e, EMERGENCY, 0, [far], job("emergency"), W, T0)  # at risk: flagged, offered, not escalated again
    assert late.choice.candidate.provider_id == "far" and late.at_risk and late.escalate is None


def test_unreachable_providers_get_no_offer_and_say_why():
    quiet = cand("quiet", km=0.5, reachable=False)
    d = decide(request(), MEAL, 0, [quiet, cand("near")], job(), W, T0)
    assert d.choice.candidate.provider_id == "near"
    assert why_not(quiet, job(), W) == UNREACHABLE
    alone = decide(request(), MEAL, 0, [quiet], job(), W, T0)
    assert alone.choice is None and alone.escalate == "no reachable provider on shift for meal (1 unreachable)"
    asked = decide(request(), MEAL, 1, [quiet, cand("near")], job(excluded=frozenset({"near"})), W, T0)
    assert asked.escalate == "every qualified provider on shift was asked (1 unreachable)"
    assert why_not(cand("off", on_shift=False, reachable=False), job(), W) == OFF_SHIFT  # off shift says more


def test_presence_is_a_sign_of_life_within_the_time_out():
    timeout = timedelta(minutes=3)
    assert reachable(T0, T0 + timeout, timeout) and not reachable(T0, T0 + timeout + timedelta(seconds=1), timeout)
    assert not reachable(None, T0, timeout)  # never heard from
    assert reachable(T0 + timedelta(seconds=5), T0, timeout)  # a clock a little ahead is not "gone"
    assert presence(False, None, T0, timeout) == "off"
    assert presence(True, T0, T0 + timedelta(minutes=1), timeout) == "reachable"
    assert presence(True, T0, T0 + timedelta(minutes=4), timeout) == "unreachable"


# -- workload and pre-emption -------------------------------------------------------------------


def active(rid, status, priority=3, km=2.0, assigned_min=0, eta=10, arrived_min=None, service_min=15):
    return ActiveJob(
        rid, Status(status), priority, km_north(km), T0 + timedelta(minutes=assigned_min), eta,
        T0 + timedelta(minutes=arrived_min) if arrived_min is not None else None, timedelta(minutes=service_min),
    )


def test_workload_predicts_when_and_where_a_provider_is_free():
    jobs = [
        active("r-a", "arrived", km=1, arrived_min=-5, service_min=15),  # done in 10 minutes
        active("r-b", "assigned", km=4, assigned_min=0, eta=20, service_min=15),  # there at +20, done at +35
    ]
    w = workload(jobs, T0, priority=3)
    assert w.busy_minutes == 35 and w.serving_minutes == 10
    assert w.free_location == km_north(4)
    assert w.preemptible == 0  # a meal does not outrank a meal
    assert workload(jobs, T0, priority=1).preemptible == 1
    assert workload([], T0, 1).busy_minutes == 0


def test_a_late_job_is_expected_to_start_now():
    late = active("r-a", "en_route", assigned_min=-30, eta=10, service_min=15)
    assert workload([late], T0, 3).busy_minutes == 15


def test_the_least_urgent_latest_job_not_started_is_handed_back():
    jobs = [
        active("r-meal", "assigned", priority=3, assigned_min=-10),
        active("r-bath", "assigned", priority=4, assigned_min=-20),
        active("r-bath2", "en_route", priority=4, assigned_min=-5),
        active("r-here", "arrived", priority=4, arrived_min=-1),
    ]
    assert to_hand_back(jobs, priority=1).request_id == "r-bath2"
    assert to_hand_back(jobs[:1], priority=3) is None


def test_hand_back_requeues_with_a_fresh_assignment_window_and_the_same_arrival_target():
    r = request()
    assigned = assign(r, "p-1", 12, T0 + timedelta(minutes=15), "provider:p-1").request
    at = T0 + timedelta(minutes=18)
    change = hand_back(assigned, MEAL, at, "provider:p-1", "called to an emergency", for_request_id="r-9")
    back = change.request
    assert back.status is Status.OPEN and back.provider_id is None and back.eta_minutes is None
    assert back.assign_due_at == at + MEAL.assign_within and back.sla_due_at == r.sla_due_at
    assert back.assign_warn_at == back.assign_due_at - MEAL.warn_before_assign_due
    assert back.handed_back == 1
    assert change.entry.kind == "handed_back" and change.entry.detail["previous_provider_id"] == "p-1"
    arrived = transition(assigned, Status.ARRIVED, at, "provider:p-1").request
    with pytest.raises(TransitionRefused):
        hand_back(arrived, MEAL, at, "provider:p-1", "too late to leave")
