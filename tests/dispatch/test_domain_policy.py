"""Per-service policies: defaults and overrides."""

from datetime import timedelta

import pytest

from homecare.contract.models import Service
from services.dispatch.domain.policy import DispatchPolicy


def test_defaults_follow_the_service_levels():
    policy = DispatchPolicy.default()
    emergency = policy.for_service("emergency")
    assert emergency.priority == 1
    assert emergency.assign_within == timedelta(minutes=2)
    assert emergency.arrive_within == timedelta(minutes=45)
    assert emergency.offer_timeout == timedelta(seconds=45)
    assert emergency.may_preempt and emergency.escalate_when_at_risk
    assert emergency.warn_before_assign_due == timedelta(seconds=45)
    assert policy.for_service(Service.MOBILITY).arrive_within == timedelta(minutes=30)
    assert policy.for_service(Service.MEAL).arrive_within == timedelta(minutes=60)
    assert policy.for_service(Service.ESCORT).arrive_within == timedelta(minutes=120)
    assert policy.for_service(Service.BATHING).arrive_within == timedelta(minutes=120)
    # Emergencies outrank everything else, and only they pre-empt or escalate as soon as at risk.
    routine = [policy.for_service(s) for s in Service if s is not Service.EMERGENCY]
    assert all(p.priority > 1 and not p.may_preempt and not p.escalate_when_at_risk for p in routine)
    assert all(p.warn_before_assign_due < p.assign_within for p in policy.services.values())


def test_overrides_change_only_what_they_name():
    policy = DispatchPolicy.with_overrides({"meal": {"offer_timeout_s": 2, "declines_before_escalation": 1}})
    meal = policy.for_service("meal")
    assert meal.offer_timeout == timedelta(seconds=2)
    assert meal.declines_before_escalation == 1
    assert meal.arrive_within == timedelta(minutes=60)
    assert policy.for_service("bathing").offer_timeout == timedelta(seconds=90)


def test_star_override_applies_to_every_service():
    policy = DispatchPolicy.with_overrides({"*": {"offer_timeout_s": 1.5}})
    assert {policy.for_service(s).offer_timeout for s in Service} == {timedelta(seconds=1.5)}


def test_ladder_settings_are_overridable():
    policy = DispatchPolicy.with_overrides({
        "meal": {"warn_before_assign_due_s": 60, "escalate_when_at_risk": "true", "expected_service_s": 600},
        "mobility": {"may_preempt": True},
    })
    meal = policy.for_service("meal")
    assert meal.warn_before_assign_due == timedelta(minutes=1) and meal.escalate_when_at_risk
    assert meal.expected_service == timedelta(minutes=10)
    assert policy.for_service("mobility").may_preempt


def test_a_shorter_assignment_window_shortens_the_warning_with_it():
    meal = DispatchPolicy.with_overrides({"meal": {"assign_within_s": 120}}).for_service("meal")
    assert meal.warn_before_assign_due == timedelta(minutes=2)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"meal": {"may_preempt": "maybe"}}, "may_preempt must be true or false"),
        ({"meal": {"warn_before_assign_due_s": 3600}}, "warn_before_assign_due must not exceed"),
        ({"meal": {"offer_timeot_s": 3}}, "unknown policy setting"),
        ({"meal": {"priority": 9}}, "priority"),
        ({"meal": {"offer_timeout_s": 0}}, "offer_timeout must be positive"),
        ({"meal": {"assign_within_s": 99999}}, "assign_within must not exceed"),
    ],
)
def test_bad_overrides_are_refused_with_a_reason(override, message):
    with pytest.raises(ValueError, match=message):
        DispatchPolicy.with_overrides(override)


def test_unknown_service_is_refused():
    with pytest.raises(ValueError):
        DispatchPolicy.with_overrides({"laundry": {"priority": 2}})
