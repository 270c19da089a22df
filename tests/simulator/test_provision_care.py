"""Provisioning planned care through the operator API (a hand-written fake of its three
endpoints; the real platform is in test_against_platform.py): shifts on the days to plan, one
care plan per spec, the day planned; a platform without care plans is left as it is."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx

from devices.simulator import population
from devices.simulator.api import OperatorApi
from devices.simulator.care import care_plans
from devices.simulator.provisioning import provision_care
from devices.simulator.roster import DeviceCredentials, EnrolledProvider, EnrolledResident, Roster
from devices.simulator.scenario import CareMix

TZ = timezone(timedelta(hours=8))
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=TZ)  # a Monday noon: the early shift is not over yet


def _roster(homes, crew) -> Roster:
    creds = DeviceCredentials(id="d", kind="bed", resident_id="r", secret="s")
    return Roster(run_tag="t", residents=[
        EnrolledResident(index=h.index, id=f"res-{h.index}", name=h.name, district=h.district, lat=h.lat, lon=h.lon,
                         bed=creds, button=creds) for h in homes
    ], providers=[
        EnrolledProvider(index=p.index, id=f"prov-{p.index}", name=p.name, services=list(p.services), lat=p.lat,
                         lon=p.lon, capacity=p.capacity, username=f"u{p.index}", password="pw-12345678") for p in crew
    ])


def _platform(calls: list[tuple[str, str, dict]], has_plans: bool = True, plan_status: int = 201):
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        calls.append((request.method, request.url.path, body))
        path = request.url.path
        if path.endswith("/shifts"):
            return httpx.Response(201, json={"id": "s", **body})
        if path.endswith("/care-plans"):
            if not has_plans:
                return httpx.Response(404, json={"detail": "Not Found"})
            return httpx.Response(201, json={"id": f"cp-{len(calls)}", **body})
        if path.startswith("/api/v1/plans/"):
            if plan_status != 201:
                return httpx.Response(plan_status, json={"detail": "day: must be today"})
            return httpx.Response(201, json={"id": "pr-1", "day": path.rsplit("/", 1)[1], "visits": 3, "planned": 3})
        return httpx.Response(500, json={"detail": f"unexpected {path}"})
    return OperatorApi("http://platform.test", transport=httpx.MockTransport(handler))


def test_shifts_then_every_plan_then_the_day_planned():
    homes, crew = population.residents(12, 3), population.providers(6, 3)
    mix = CareMix(share=1.0, plan_days=2)
    calls: list = []

    roster = provision_care(_platform(calls), _roster(homes, crew), homes, crew, 3, mix, TZ, now=NOW)

    kinds = [path.rsplit("/", 1)[-1] if "/plans/" not in path else "plan" for _, path, _ in calls]
    assert kinds == sorted(kinds, key=["shifts", "care-plans", "plan"].index), "shifts, plans, then planning"
    shifts = [body for _, path, body in calls if path.endswith("/shifts")]
    assert len(shifts) == 2 * len(crew), "each provider's shift on each day to plan"
    assert all(datetime.fromisoformat(s["ends_at"]) > NOW for s in shifts)
    expected = care_plans(homes, crew, 3, NOW.date(), mix)
    assert len(roster.care_plans) == len(expected) == sum(k == "care-plans" for k in kinds)
    assert roster.planned_days == ["2026-12-07", "2026-12-08"]


def test_a_platform_without_care_plans_is_left_as_it_is():
    homes, crew = population.residents(5, 3), population.providers(3, 3)
    calls: list = []

    roster = provision_care(_platform(calls, has_plans=False), _roster(homes, crew), homes, crew, 3,
                            CareMix(share=1.0, shifts=False), TZ, now=NOW)

    assert roster.care_plans == [] and roster.planned_days == []
    assert [path for _, path, _ in calls if "/care-plans" in path] == ["/api/v1/residents/res-0/care-plans"]
    assert not [path for _, path, _ in calls if "/plans/" in path]


def test_a_day_the_platform_will_not_plan_is_skipped_and_no_share_asks_nothing():
    homes, crew = population.residents(5, 3), population.providers(3, 3)
    calls: list = []
    roster = provision_care(_platform(calls, plan_status=422), _roster(homes, crew), homes, crew, 3,
                            CareMix(share=1.0), TZ, now=NOW)
    assert roster.care_plans and roster.planned_days == []

    calls.clear()
    provision_care(_platform(calls), _roster(homes, crew), homes, crew, 3, CareMix(), TZ, now=NOW)
    assert calls == []
