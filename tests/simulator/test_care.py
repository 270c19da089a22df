"""The simulated city's planned care (no I/O): a realistic mix, the same for the same seed, and
every plan one the platform's domain accepts."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone

from devices.simulator.care import care_plans, plan_body, provider_skills, shift_of
from devices.simulator.population import providers, residents
from devices.simulator.provisioning import provider_body
from devices.simulator.scenario import CareMix, Scenario
from homecare.contract import Service
from services.dispatch.domain.plans import CarePlan, Recurrence, Repeat
from services.dispatch.schemas import CarePlanIn, NewProvider

MONDAY = date(2026, 12, 7)


def _domain_plan(body: dict, n: int) -> CarePlan:
    """The plan as dispatch's domain reads it: raises PlanError for one it cannot keep."""
    start, end = (time.fromisoformat(body[k]) for k in ("window_start", "window_end"))
    ends = date.fromisoformat(body["ends_on"]) if "ends_on" in body else None
    recurrence = Recurrence(Repeat(body["repeat"]), date.fromisoformat(body["starts_on"]), ends,
                            weekdays=frozenset(body.get("weekdays", ())), every_weeks=body.get("every_weeks", 1))
    return CarePlan(f"p-{n}", "r", body["service"], recurrence, start, end, body["duration_minutes"],
                    frozenset(body["skills"]), body.get("preferred_provider_id"), body.get("note"))


def test_the_demo_city_has_a_realistic_mix_of_care_plans():
    demo = Scenario.demo(homes=200)
    homes = residents(demo.homes, demo.seed, demo.districts)
    crew = providers(demo.providers, demo.seed, demo.districts)
    plans = care_plans(homes, crew, demo.seed, MONDAY, demo.care)
    by_service = Counter(p.service for p in plans)
    with_plans = {p.resident_index for p in plans}
    assert 0.7 < len(with_plans) / demo.homes < 0.9  # the preset's share, 0.8
    lunches = [p for p in plans if p.service is Service.MEAL]
    assert len(lunches) / len(with_plans) > 0.6
    assert all(p.repeat == "daily" and (p.window_start, p.window_end) == (time(11), time(13)) for p in lunches)
    baths = [p for p in plans if p.service is Service.BATHING]
    assert {p.repeat for p in baths} == {"weekdays", "every_n_weeks"}
    assert all(set(p.weekdays) <= set(range(5)) for p in baths), "baths on weekdays"
    assert {p.every_weeks for p in baths} == {1, 2}
    assert by_service[Service.ESCORT] and all(p.repeat == "once" for p in plans if p.service is Service.ESCORT)
    assert by_service[Service.MOBILITY] and Service.EMERGENCY not in by_service
    assert any(p.preferred_provider is not None for p in plans)
    assert any(p.skills for p in plans)
    ids = {p.index: f"prov-{p.index}" for p in crew}
    for n, plan in enumerate(plans):
        body = plan_body(plan, ids)
        CarePlanIn.model_validate(body)  # what the API accepts
        assert ("ends_on" in body) == (plan.repeat != "once"), "a recurring plan is reviewed after a quarter"
        _domain_plan(body, n)
        if plan.preferred_provider is not None:
            preferred = crew[plan.preferred_provider]
            assert body["preferred_provider_id"] == ids[preferred.index]
            assert plan.service in preferred.services and set(plan.skills) <= set(provider_skills(preferred))


def test_care_plans_are_the_same_for_the_same_seed_and_differ_for_another():
    homes = residents(30, seed=5)
    crew = providers(8, seed=5)
    mix = CareMix(share=0.8)
    assert care_plans(homes, crew, 5, MONDAY, mix) == care_plans(homes, crew, 5, MONDAY, mix)
    assert care_plans(homes, crew, 5, MONDAY, mix) != care_plans(homes, crew, 6, MONDAY, mix)
    assert care_plans(homes, crew, 5, MONDAY, CareMix()) == [], "no share, no plans"


def test_someone_has_every_skill_a_plan_asks_for():
    demo = Scenario.demo()
    crew = providers(demo.providers, demo.seed, demo.districts)
    plans = care_plans(residents(100, demo.seed, demo.districts), crew, demo.seed, MONDAY, CareMix(share=1.0))
    for plan in plans:
        assert any(plan.service in p.services and set(plan.skills) <= set(provider_skills(p)) for p in crew), plan
    assert all(provider_body(p)["skills"] == list(provider_skills(p)) for p in crew)
    for p in crew:
        NewProvider.model_validate(provider_body(p))


def test_shifts_are_early_day_and_late_in_turn():
    tz = timezone(timedelta(hours=8))
    crew = providers(6, seed=1)
    starts = [shift_of(p, MONDAY, tz)[0] for p in crew]
    assert starts[0] == datetime(2026, 12, 7, 7, 0, tzinfo=tz) and starts[3] == starts[0]
    assert len(set(starts)) == 3
    for p in crew:
        start, end = shift_of(p, MONDAY, tz)
        assert timedelta(hours=8) <= end - start <= timedelta(hours=9)
        assert start.time() <= time(11) and end.time() >= time(13), "everyone works over lunch"


def test_a_scenario_file_changes_the_mix_and_keeps_the_rest_of_the_preset(tmp_path):
    path = tmp_path / "quiet.toml"
    path.write_text('preset = "demo"\n[care]\nescort = 0.5\n')
    scenario = Scenario.load(path)
    assert (scenario.care.share, scenario.care.escort) == (0.8, 0.5)
    assert Scenario.preset("city").care.share == 0, "the city load has no plans"
