"""Every string and list in a body has a bound, and names refuse control characters (issue 12)."""

from __future__ import annotations

import pytest

RESIDENT = {"name": "Wang Fang", "address": "1 Test Road", "district": "Huangpu",
            "location": {"lat": 31.2, "lon": 121.4}}


def refused(response, loc: list) -> bool:
    return response.status_code == 422 and loc in [e["loc"] for e in response.json()["detail"]]


@pytest.mark.parametrize("change, loc", [
    ({"notes": "x" * 2001}, ["body", "notes"]),
    ({"contacts": [{"name": "x"}] * 11}, ["body", "contacts"]),
    ({"contacts": [{"name": "x", "phone": "1" * 41}]}, ["body", "contacts", 0, "phone"]),
    ({"name": "Wang\x07Fang"}, ["body", "name"]),
    ({"district": "Huang\npu"}, ["body", "district"]),
    ({"contacts": [{"name": "Li\x1bMing"}]}, ["body", "contacts", 0, "name"]),
])
def test_resident_bodies_are_bounded_and_names_clean(client, dispatcher, change, loc):
    r = client.post("/api/v1/residents", json={**RESIDENT, **change}, headers=dispatcher)
    assert refused(r, loc), r.text[:300]


def test_a_resident_with_a_note_of_many_lines_is_fine(client, dispatcher):
    r = client.post("/api/v1/residents", json={**RESIDENT, "notes": "line one\nline two"}, headers=dispatcher)
    assert r.status_code == 201, r.text


def test_provider_names_and_service_lists_are_bounded(client, admin):
    body = {"name": "Team\x00North", "services": ["meal"], "location": {"lat": 1, "lon": 1}, "capacity": 1}
    assert client.post("/api/v1/providers", json={**body, "name": "Team\x7fNorth"}, headers=admin).status_code == 422
    many = client.post("/api/v1/providers", json={**body, "name": "T", "services": ["meal"] * 50}, headers=admin)
    assert refused(many, ["body", "services"])


def test_search_text_and_limit_are_bounded(client, dispatcher):
    assert refused(client.get("/api/v1/residents", params={"q": "x" * 201}, headers=dispatcher), ["query", "q"])
    assert refused(client.get("/api/v1/residents", params={"limit": 501}, headers=dispatcher), ["query", "limit"])


def test_usernames_are_plain(client, admin):
    r = client.post("/api/v1/users", json={"username": "bad\tname", "password": "a long enough password",
                                           "role": "dispatcher"}, headers=admin)
    assert refused(r, ["body", "username"])


def test_numbers_are_not_dates_and_not_flags(client, admin, dispatcher):
    for path in ("/api/v1/reports/sla", "/api/v1/devices/bed-x/vitals", "/api/v1/residents/res-x/observations"):
        assert refused(client.get(path, params={"start": "0.5"}, headers=dispatcher), ["query", "start"]), path
        assert refused(client.get(path, params={"end": "-80079"}, headers=dispatcher), ["query", "end"]), path
    body = {"name": "Team Flag", "services": ["meal"], "location": {"lat": 1, "lon": 1}, "capacity": 1}
    assert refused(client.post("/api/v1/providers", json={**body, "on_shift": 0}, headers=admin), ["body", "on_shift"])
    provider = client.post("/api/v1/providers", json=body, headers=admin).json()
    r = client.post(f"/api/v1/providers/{provider['id']}/shift", json={"on_shift": 0}, headers=admin)
    assert refused(r, ["body", "on_shift"])
    plan = {"starts_at": 1767225600, "ends_at": "2026-01-01T10:00:00Z"}
    assert refused(client.post(f"/api/v1/providers/{provider['id']}/shifts", json=plan, headers=admin),
                   ["body", "starts_at"])
