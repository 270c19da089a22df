"""Dispatch settings from the environment: every matching weight and policy override reaches the core."""

from datetime import timedelta

from services.dispatch.settings import DispatchSettings
from services.dispatch.usecases.context import from_settings as context


def test_weights_and_policies_come_from_the_environment(monkeypatch):
    env = {
        "HOMECARE_DISPATCH_WEIGHT_WAIT": "0.9", "HOMECARE_DISPATCH_WEIGHT_URGENCY": "0.5",
        "HOMECARE_DISPATCH_WEIGHT_LOAD_MINUTES": "7", "HOMECARE_DISPATCH_WEIGHT_FAIRNESS_MINUTES": "2",
        "HOMECARE_DISPATCH_FAIRNESS_CAP": "3", "HOMECARE_DISPATCH_WEIGHT_CONTINUITY_MINUTES": "4",
        "HOMECARE_DISPATCH_CONTINUITY_SLACK_MINUTES": "6", "HOMECARE_DISPATCH_WEIGHT_PREEMPT_MINUTES": "12",
        "HOMECARE_DISPATCH_SHIFT_OVERRUN_MINUTES": "5", "HOMECARE_DISPATCH_TRAVEL_SPEED_KMH": "18",
        "HOMECARE_DISPATCH_REQUEUE_S": "7", "HOMECARE_DISPATCH_PLAN_MARGIN_MINUTES": "4",
        "HOMECARE_DISPATCH_WEIGHT_ROUTE_MINUTES": "3", "HOMECARE_DISPATCH_PLAN_RESERVE_SHARE": "0.25",
        "HOMECARE_DISPATCH_POLICIES": '{"meal": {"offer_timeout_s": 45, "escalate_when_at_risk": true}}',
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = DispatchSettings()
    w = settings.match_weights()
    assert (w.wait_factor, w.urgency_factor, w.load_minutes, w.fairness_minutes, w.fairness_cap) == (0.9, 0.5, 7, 2, 3)
    assert (w.continuity_minutes, w.continuity_slack_minutes, w.preempt_minutes) == (4, 6, 12)
    assert (w.shift_overrun_minutes, w.speed_kmh) == (5, 18)
    assert (w.plan_margin_minutes, w.route_minutes) == (4, 3)
    ctx = context(settings)
    assert ctx.requeue == timedelta(seconds=7)
    assert ctx.weights == w and ctx.plan_reserve_share == 0.25
    meal = ctx.policy.for_service("meal")
    assert meal.offer_timeout == timedelta(seconds=45) and meal.escalate_when_at_risk
