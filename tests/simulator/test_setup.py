"""Scenarios, the generated city, and how providers decide (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from devices.simulator.geo import distance_km
from devices.simulator.population import providers, resident, residents
from devices.simulator.providers import ProviderPolicy, real_delay
from devices.simulator.provisioning import device_ids, provider_body, resident_body
from devices.simulator.scenario import ProviderConduct, Scenario
from homecare.contract import Service
from homecare.residents.store import NewResident
from homecare.topics import is_valid_device_id


def test_scenario_from_toml_and_yaml(tmp_path):
    toml = tmp_path / "busy.toml"
    toml.write_text('preset = "demo"\nhomes = 50\nspeed = 120\n[provider]\naccept_rate = 0.5\n')
    scenario = Scenario.load(toml)
    assert (scenario.name, scenario.homes, scenario.speed, scenario.providers) == ("demo", 50, 120, 8)
    assert scenario.provider.accept_rate == 0.5 and scenario.start_time == "07:30"

    yaml = tmp_path / "quiet.yaml"
    yaml.write_text("name: quiet\nhomes: 3\nproviders: 1\npress_rate: 0.5\nstart_time: '22:00'\n")
    scenario = Scenario.load(yaml)
    assert (scenario.name, scenario.homes, scenario.press_rate, scenario.speed) == ("quiet", 3, 0.5, 1.0)


@pytest.mark.parametrize(
    "text", ["homes = 0\n", "start_time = '25:00'\n", "colour = 'red'\n", "run_tag = 'Bad Tag'\n",
             "sample_interval_s = 20\nreport_interval_s = 10\n"],
)
def test_scenario_rejects_nonsense(tmp_path, text):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValidationError):
        Scenario.load(path)


def test_demo_preset_and_overrides():
    demo = Scenario.demo(homes=5, providers=None)
    assert (demo.homes, demo.providers, demo.speed) == (5, 8, 60.0)
    with pytest.raises(ValueError, match="unknown preset"):
        Scenario.preset("nowhere")
    assert Scenario.preset("city").homes == 5000


def test_residents_are_plausible_and_stable():
    people = residents(40, seed=3, district_count=4)
    assert len({p.district for p in people}) == 4
    for person in people:
        NewResident.model_validate(resident_body(person))  # what the residents API accepts
        assert distance_km(person.lat, person.lon, 31.23, 121.47) < 15  # in central Shanghai
        assert person.sleep.bedtime_min > 20 * 60 and person.sleep.wake_min < 8 * 60
        assert person.vitals.hr_asleep < person.vitals.hr_awake
    assert resident(17, seed=3, district_count=4) == people[17]  # independent of the city's size
    assert residents(5, seed=4) != residents(5, seed=3)
    bed, button = device_ids("abc123", 7)
    assert is_valid_device_id(bed) and is_valid_device_id(button) and bed != button


@pytest.mark.parametrize("count", [1, 2, 3, 4, 8, 30])
def test_providers_cover_every_service(count):
    crew = providers(count, seed=1)
    assert len(crew) == count
    assert {s for p in crew for s in p.services} == set(Service)
    for p in crew:
        body = provider_body(p)
        assert body["capacity"] >= 1 and body["services"]
    if count >= 8:
        emergency = sum(Service.EMERGENCY in p.services for p in crew)
        assert 1 <= emergency <= count // 2, "emergencies by a few"


def test_provider_declines_at_capacity_and_mostly_accepts():
    conduct = ProviderConduct(accept_rate=0.8, ignore_rate=0.05)
    policy = ProviderPolicy("Li Mei", (31.23, 121.47), 2, conduct, seed=1)
    offer = {"id": "o-1", "service": "meal"}
    assert policy.decide(offer, active_jobs=2).answer == "decline"
    answers = [policy.decide(offer, active_jobs=0).answer for _ in range(2000)]
    assert 0.75 < answers.count("accept") / 2000 < 0.85
    assert 0.02 < answers.count("ignore") / 2000 < 0.08
    assert all(policy.decide({"service": "emergency"}, 0).answer == "accept" for _ in range(50))
    for _ in range(100):
        low, high = conduct.decide_after_s
        assert low <= policy.decide(offer, 0).after_s <= high


def test_travel_time_from_the_offer_or_the_distance():
    policy = ProviderPolicy("Li Mei", (31.23, 121.47), 2, ProviderConduct(), seed=1)
    assert 7 <= policy.travel_minutes({"eta_minutes": 10}, None) <= 12
    near = policy.travel_minutes({}, (31.231, 121.471))
    far = policy.travel_minutes({}, (31.33, 121.57))
    assert near < far
    low, high = ProviderConduct().default_eta_minutes
    assert low <= policy.travel_minutes({}, None) <= high


def test_real_delay_is_scaled_and_answers_before_the_deadline():
    now = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert real_delay(120, speed=60) == 2
    deadline = (now + timedelta(seconds=30)).isoformat()
    assert real_delay(90, speed=1, deadline=deadline, now=now) == 15


def test_the_example_scenario_file_loads():
    from pathlib import Path

    import devices.simulator

    example = Path(devices.simulator.__file__).parent / "scenarios" / "example.yaml"
    scenario = Scenario.load(example)
    assert (scenario.name, scenario.homes, scenario.start_time, scenario.provider.decide_after_s) == (
        "busy-morning", 40, "07:00", (20.0, 90.0))
