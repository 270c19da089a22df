"""Roles as http-v1 gives them: dispatchers read providers but do not move them (issue 12)."""

from __future__ import annotations

from homecare.auth import Role

from .conftest import bearer, new_account


def test_only_the_provider_itself_or_an_admin_reports_its_location(pool, client, admin, dispatcher):
    body = {"name": "Team Move", "services": ["meal"], "location": {"lat": 31.2, "lon": 121.4}, "capacity": 1}
    provider = client.post("/api/v1/providers", json=body, headers=admin).json()
    itself = bearer(pool, new_account(pool, Role.PROVIDER, provider["id"]))
    other = bearer(pool, new_account(pool, Role.PROVIDER, "p-someone-else"))
    where = {"lat": 31.3, "lon": 121.5}
    path = f"/api/v1/providers/{provider['id']}/location"
    assert client.post(path, json=where, headers=dispatcher).status_code == 403
    assert client.post(path, json=where, headers=other).status_code == 403
    assert client.post(path, json=where, headers=itself).status_code == 200
    assert client.post(path, json={"lat": 31.25, "lon": 121.45}, headers=admin).status_code == 200
    assert client.get("/api/v1/providers", headers=dispatcher).status_code == 200
