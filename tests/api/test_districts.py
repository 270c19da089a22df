"""District service centres: nothing of another district reaches a dispatcher through the API
(issue 16). Two districts, each with a resident, a bed, a button, a request, an alert and a provider;
a dispatcher of district A asks every GET operation of the OpenAPI document with A's ids and with
B's: B's answer 404 and not one id or name of B appears in any answer. Every action on B's things
answers 404 too, and changes nothing. A city-bureau account sees both; a dispatcher of no district
sees nothing."""

from __future__ import annotations

import re

import pytest

from homecare.auth import Role
from tests.console.two_districts import district, leaks, plan_a_day

from .conftest import bearer, new_account

_PARAM = re.compile(r"\{(\w+)\}")
# Operations that carry no district's data (the platform, the caller's own account).
PLATFORM = {"/healthz", "/readyz", "/metrics", "/api/v1/me", "/api/v1/audit",
            "/api/v1/system/consumers", "/api/v1/system/incidents"}


@pytest.fixture(scope="module")
def world(pool):
    day, (a, b) = plan_a_day(pool, district(pool, "Alpha"), district(pool, "Beta"))
    return {"a": a, "b": b, "day": day.isoformat(),
            "dispatcher": bearer(pool, new_account(pool, Role.DISPATCHER, districts=(a.name,))),
            "nowhere": bearer(pool, new_account(pool, Role.DISPATCHER)),
            "city": bearer(pool, new_account(pool, Role.CITY))}


def _get_operations(app) -> list[str]:
    return sorted(path for path, item in app.openapi()["paths"].items() if "get" in item and path not in PLATFORM)


def _secret_params(path: str) -> bool:
    """Whether the path names a thing of a district (not only a day)."""
    return any(name != "day" for name in _PARAM.findall(path))


def _url(path: str, ids: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: ids.get(m.group(1), f"none-{m.group(1)}"), path)


def _unasked(text: str, ids: dict[str, str]) -> str:
    """An answer without the ids the caller put in the URL (a 404 names what was asked)."""
    for value in ids.values():
        text = text.replace(value, "<id>")
    return text


def test_every_get_operation_gives_a_dispatcher_nothing_of_another_district(app, client, world):
    """B's things answer exactly as things that do not exist: the same 404, the same words."""
    a, b, headers, day = world["a"], world["b"], world["dispatcher"], world["day"]
    made_up = {**{k: f"no-such-{k}" for k in b.ids}, "day": day}
    wrong: list[str] = []
    for path in _get_operations(app):
        own = client.get(_url(path, {**a.ids, "day": day}), headers=headers, params={"day": day})
        other = client.get(_url(path, {**b.ids, "day": day}), headers=headers, params={"day": day})
        if own.status_code >= 500 or other.status_code >= 500:
            wrong.append(f"{path}: {own.status_code} / {other.status_code}")
        found = leaks(own.text, b) + leaks(_unasked(other.text, b.ids), b)
        if found:
            wrong.append(f"{path} shows {found}")
        if _secret_params(path):
            missing = client.get(_url(path, made_up), headers=headers, params={"day": day})
            if other.status_code != 404 or _unasked(other.text, b.ids) != _unasked(missing.text, made_up):
                wrong.append(f"{path} with B's ids: {other.status_code} {other.text[:120]},"
                             f" not as a missing one: {missing.status_code} {missing.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_a_dispatcher_sees_its_own_districts_things(client, world):
    a, headers = world["a"], world["dispatcher"]
    assert a.request_id in [r["id"] for r in client.get("/api/v1/requests", headers=headers).json()]
    assert a.alert_id in [r["id"] for r in client.get("/api/v1/alerts", headers=headers).json()]
    assert a.provider_id in [p["id"] for p in client.get("/api/v1/providers", headers=headers).json()]
    assert a.resident_id in [r["id"] for r in client.get("/api/v1/residents", params={"q": a.name},
                                                         headers=headers).json()]
    assert {d["id"] for d in client.get("/api/v1/devices", params={"resident_id": a.resident_id},
                                        headers=headers).json()} == {a.bed_id, a.button_id}
    for url in (f"/api/v1/requests/{a.request_id}", f"/api/v1/alerts/{a.alert_id}",
                f"/api/v1/residents/{a.resident_id}", f"/api/v1/devices/{a.bed_id}",
                f"/api/v1/requests/{a.request_id}/candidates", f"/api/v1/providers/{a.provider_id}/shifts",
                f"/api/v1/care-plans/{a.plan_id}", f"/api/v1/residents/{a.resident_id}/care-plans"):
        assert client.get(url, headers=headers).status_code == 200, url
    body = {"name": "New neighbour", "address": "2 Test Road", "location": {"lat": 31.2, "lon": 121.5}}
    assert client.post("/api/v1/residents", json={**body, "district": a.name}, headers=headers).status_code == 201
    refused = client.post("/api/v1/residents", json={**body, "district": world["b"].name}, headers=headers)
    assert refused.status_code == 403 and "you work for" in refused.text  # enrolled only in its own districts
    routes = client.get(f"/api/v1/plans/{world['day']}/routes", headers=headers).text
    assert a.resident_id in routes and not leaks(routes, world["b"])
    city = client.get(f"/api/v1/plans/{world['day']}/routes", headers=world["city"]).text
    assert a.resident_id in city and world["b"].resident_id in city


def test_every_action_on_another_districts_things_is_404_and_changes_nothing(client, world):
    b, headers = world["b"], world["dispatcher"]
    actions = [
        ("POST", f"/api/v1/requests/{b.request_id}/assign", {"provider_id": b.provider_id}),
        ("POST", f"/api/v1/requests/{b.request_id}/cancel", {"reason": "not mine"}),
        ("POST", f"/api/v1/requests/{b.request_id}/en-route", None),
        ("POST", f"/api/v1/requests/{b.request_id}/arrived", None),
        ("POST", f"/api/v1/requests/{b.request_id}/complete", None),
        ("POST", "/api/v1/requests", {"resident_id": b.resident_id, "service": "meal"}),
        ("POST", f"/api/v1/alerts/{b.alert_id}/acknowledge", None),
        ("POST", f"/api/v1/alerts/{b.alert_id}/assign", {"assignee": "Somebody"}),
        ("POST", f"/api/v1/alerts/{b.alert_id}/resolve", {"note": "not mine"}),
        ("POST", f"/api/v1/devices/{b.bed_id}/selftest", None),
        ("PUT", f"/api/v1/residents/{b.resident_id}/alert-settings", {"hr_high": 120}),
        ("POST", f"/api/v1/residents/{b.resident_id}/care-plans", {
            "service": "meal", "repeat": "daily", "starts_on": world["day"], "window_start": "11:00",
            "window_end": "12:00", "duration_minutes": 20}),
        ("PATCH", f"/api/v1/care-plans/{b.plan_id}", {"duration_minutes": 30}),
        ("DELETE", f"/api/v1/care-plans/{b.plan_id}", None),
    ]
    wrong = []
    for method, url, body in actions:
        response = client.request(method, url, json=body, headers=headers)
        if response.status_code != 404 or leaks(_unasked(response.text, b.ids), b):
            wrong.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)
    city = world["city"]
    request = client.get(f"/api/v1/requests/{b.request_id}", headers=city).json()
    assert request["status"] not in ("cancelled", "assigned") and request["provider_id"] is None
    alert = client.get(f"/api/v1/alerts/{b.alert_id}", headers=city).json()
    assert (alert["state"], alert["assignee"]) == ("open", None)
    plan = client.get(f"/api/v1/care-plans/{b.plan_id}", headers=city).json()
    assert plan["duration_minutes"] == 20 and plan["active"]
    assert len(client.get(f"/api/v1/residents/{b.resident_id}/care-plans", headers=city).json()) == 1


def test_a_dispatcher_may_not_assign_its_request_to_a_provider_it_does_not_see(client, world):
    a, b = world["a"], world["b"]
    response = client.post(f"/api/v1/requests/{a.request_id}/assign", json={"provider_id": b.provider_id},
                           headers=world["dispatcher"])
    assert response.status_code == 404 and b.provider_name not in response.text


def test_the_sla_report_and_its_csv_hold_only_the_dispatchers_districts(client, world):
    a, b = world["a"], world["b"]
    for fmt in ("json", "csv"):
        own = client.get("/api/v1/reports/sla", params={"format": fmt}, headers=world["dispatcher"])
        assert own.status_code == 200 and a.name in own.text and not leaks(own.text, b), fmt
        asked = client.get("/api/v1/reports/sla", params={"format": fmt, "district": b.name},
                           headers=world["dispatcher"])
        assert asked.status_code == 200 and not leaks(asked.text, b), fmt
    city = client.get("/api/v1/reports/sla", params={"format": "csv"}, headers=world["city"]).text
    assert a.name in city and b.name in city


def test_the_city_bureau_sees_and_acts_on_every_district(client, world):
    a, b, city = world["a"], world["b"], world["city"]
    listed = [r["id"] for r in client.get("/api/v1/requests", params={"limit": 1000}, headers=city).json()]
    assert a.request_id in listed and b.request_id in listed
    assert client.get(f"/api/v1/residents/{b.resident_id}", headers=city).status_code == 200
    assert client.get("/api/v1/me", headers=city).json()["role"] == "city"
    assert client.post("/api/v1/providers", json={}, headers=city).status_code == 403  # not an admin


def test_a_dispatcher_of_no_district_sees_nothing(app, client, world):
    headers = world["nowhere"]
    assert client.get("/api/v1/me", headers=headers).json()["districts"] == []
    for path in _get_operations(app):
        if "{" in path:
            continue
        response = client.get(path, headers=headers)
        assert response.status_code == 200, path
        for of in (world["a"], world["b"]):
            assert not leaks(response.text, of), path
    assert client.get(f"/api/v1/requests/{world['a'].request_id}", headers=headers).status_code == 404
    assert client.get("/api/v1/providers", headers=headers).json() == []  # not even those serving everywhere


def test_providers_are_placed_by_admins_and_a_dispatcher_sees_those_serving_its_districts(pool, client, world, admin):
    a, b = world["a"], world["b"]
    body = {"name": "Carer of both", "services": ["meal"], "location": {"lat": 31.2, "lon": 121.4}, "capacity": 1,
            "on_shift": False, "districts": [a.name, b.name]}
    created = client.post("/api/v1/providers", json=body, headers=admin)
    assert created.status_code == 201 and created.json()["districts"] == sorted([a.name, b.name])
    pid = created.json()["id"]
    assert pid in [p["id"] for p in client.get("/api/v1/providers", headers=world["dispatcher"]).json()]
    moved = client.put(f"/api/v1/providers/{pid}/districts", json={"districts": [b.name]}, headers=admin)
    assert moved.status_code == 200 and moved.json()["districts"] == [b.name]
    assert pid not in [p["id"] for p in client.get("/api/v1/providers", headers=world["dispatcher"]).json()]
    assert client.put(f"/api/v1/providers/{pid}/districts", json={"districts": [b.name]},
                      headers=world["city"]).status_code == 403
    assert client.put(f"/api/v1/providers/{pid}/districts", json={"districts": ["x\x00y"]},
                      headers=admin).status_code == 422
    assert client.put("/api/v1/providers/p-none/districts", json={"districts": []}, headers=admin).status_code == 404


def test_help_from_another_district_is_shown_as_such(pool, client, world):
    """The city bureau sends a provider of another district: the request, its offers' provider and
    the board say so."""
    a, b = district(pool, "Gamma"), district(pool, "Delta")
    city = world["city"]
    assigned = client.post(f"/api/v1/requests/{a.request_id}/assign",
                           json={"provider_id": b.provider_id, "override_shift": True}, headers=city)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["cross_district"] is True
    (entry,) = [e for e in assigned.json()["timeline"] if e["kind"] == "cross_district"]
    assert entry["detail"]["reason"] == f"sent by hand from another district to {a.name}"
    assert entry["detail"]["provider_districts"] == [b.name]
    listed = {r["id"]: r for r in client.get("/api/v1/requests", params={"limit": 1000}, headers=city).json()}
    assert listed[a.request_id]["cross_district"] is True and listed[b.request_id]["cross_district"] is False
    candidates = {c["provider_id"]: c for c in client.get(f"/api/v1/requests/{a.request_id}/candidates",
                                                          headers=city).json()}
    assert candidates[b.provider_id]["cross_district"] and not candidates[a.provider_id]["cross_district"]
    dispatcher_of_a = bearer(pool, new_account(pool, Role.DISPATCHER, districts=(a.name,)))
    shown = client.get(f"/api/v1/requests/{a.request_id}", headers=dispatcher_of_a)
    assert shown.status_code == 200 and shown.json()["provider_id"] == b.provider_id  # its own request's helper
    assert b.resident_id not in shown.text and b.request_id not in shown.text


def test_a_day_is_planned_for_the_whole_city_by_the_city_bureau_not_by_a_districts_dispatcher(client, world):
    # Providers serve several districts, so a planning run replans every district's routes.
    refused = client.post(f"/api/v1/plans/{world['day']}", headers=world["dispatcher"])
    assert refused.status_code == 403, refused.text
    assert "role dispatcher may not" in refused.json()["detail"]
    # the city bureau is let through to the day's own checks (a run of a real day: tests/dispatch/test_plans_api.py)
    let_through = client.post("/api/v1/plans/1999-01-01", headers=world["city"])
    assert let_through.status_code == 422 and "must be today" in let_through.json()["detail"]
