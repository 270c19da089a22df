"""The audit log (issue 12): every admin action on accounts, lockouts, devices and providers, and
every sign-in lockout, is recorded with actor, action, target and time, in the transaction of
the action; only admins read it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from homecare.auth import Role

from .conftest import PASSWORD, bearer, new_account


def _me(client, headers) -> str:
    me = client.get("/api/v1/me", headers=headers).json()
    return f"{me['role']}:{me['username']}"


def _entries(client, admin, target: str) -> list[dict]:
    response = client.get("/api/v1/audit", params={"limit": 1000}, headers=admin)
    assert response.status_code == 200, response.text
    return [e for e in response.json() if e["target"] == target]


def _one(client, admin, target: str, action: str) -> dict:
    found = [e for e in _entries(client, admin, target) if e["action"] == action]
    assert len(found) == 1, (target, action, _entries(client, admin, target))
    entry = found[0]
    assert datetime.fromisoformat(entry["at"]) > datetime.now(UTC) - timedelta(minutes=1)
    return entry


def test_account_changes_are_recorded_with_the_admin_and_time(client, admin):
    name = f"audited-{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": "a long audited password", "role": "dispatcher"}
    assert client.post("/api/v1/users", json=body, headers=admin).status_code == 201
    assert client.patch(f"/api/v1/users/{name}", json={"password": "another long password!"},
                        headers=admin).status_code == 200

    created = _one(client, admin, f"user:{name}", "user.created")
    assert created["actor"] == _me(client, admin) and created["detail"]["role"] == "dispatcher"
    changed = _one(client, admin, f"user:{name}", "user.changed")
    assert changed["actor"] == _me(client, admin) and changed["detail"]["password_reset"] is True
    assert changed["id"] > created["id"]


def test_a_refused_action_records_nothing(client, admin):
    name = f"taken-{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": "a long audited password", "role": "dispatcher"}
    assert client.post("/api/v1/users", json=body, headers=admin).status_code == 201
    assert client.post("/api/v1/users", json=body, headers=admin).status_code == 409
    assert [e["action"] for e in _entries(client, admin, f"user:{name}")] == ["user.created"]


def test_a_lockout_and_its_lifting_are_recorded(app, client, pool, admin, monkeypatch):
    monkeypatch.setattr(app.state.login_throttle, "free", {"user": 2, "addr": 10**9})
    name = new_account(pool, Role.DISPATCHER)
    for _ in range(3):
        answer = client.post("/api/v1/auth/token", data={"username": name, "password": "wrong password!"})
        assert answer.status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD}).status_code == 429

    lockout = _one(client, admin, f"user:{name}", "lockout")
    assert lockout["actor"] == "system" and lockout["detail"]["failures"] == 3

    assert client.delete(f"/api/v1/auth/lockouts/{name}", headers=admin).status_code == 204
    lifted = _one(client, admin, f"user:{name}", "lockout.lifted")
    assert lifted["actor"] == _me(client, admin) and lifted["detail"]["was_locked"] is True
    assert client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD}).status_code == 200


def test_devices_provisioned_and_revoked_are_recorded(client, admin):
    resident = client.post("/api/v1/residents", json={
        "name": "Audit Resident", "address": "1 Audit Road", "district": "Audit",
        "location": {"lat": 31.2, "lon": 121.4}}, headers=admin).json()
    device = f"btn-audit-{uuid.uuid4().hex[:8]}"
    provisioned = client.post("/api/v1/devices", json={"id": device, "kind": "button", "resident_id": resident["id"]},
                              headers=admin)
    assert provisioned.status_code == 201, provisioned.text
    assert client.delete(f"/api/v1/devices/{device}", headers=admin).status_code == 204

    entry = _one(client, admin, f"device:{device}", "device.provisioned")
    assert entry["actor"] == _me(client, admin) and entry["detail"] == {"kind": "button", "resident_id": resident["id"]}
    assert _one(client, admin, f"device:{device}", "device.revoked")["actor"] == _me(client, admin)


def test_providers_created_and_changed_by_an_admin_are_recorded(client, pool, admin):
    body = {"name": "Audit Team", "services": ["meal"], "location": {"lat": 31.2, "lon": 121.4}, "capacity": 2}
    provider = client.post("/api/v1/providers", json=body, headers=admin).json()
    target = f"provider:{provider['id']}"
    path = f"/api/v1/providers/{provider['id']}"
    assert client.post(f"{path}/shift", json={"on_shift": True}, headers=admin).status_code == 200
    assert client.post(f"{path}/location", json={"lat": 31.3, "lon": 121.5}, headers=admin).status_code == 200
    now = datetime.now(UTC)
    plan = {"starts_at": (now + timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(hours=2)).isoformat()}
    assert client.post(f"{path}/shifts", json=plan, headers=admin).status_code == 201
    # The provider's own shift and place are its work, not an admin action.
    itself = bearer(pool, new_account(pool, Role.PROVIDER, provider["id"]))
    assert client.post(f"{path}/shift", json={"on_shift": False}, headers=itself).status_code == 200

    entries = _entries(client, admin, target)
    assert [e["action"] for e in reversed(entries)] == [
        "provider.created", "provider.shift_set", "provider.moved", "provider.shift_planned"]
    assert {e["actor"] for e in entries} == {_me(client, admin)}
    assert entries[-1]["detail"]["name"] == "Audit Team"
    assert entries[-2]["detail"] == {"on_shift": True}


def test_the_log_pages_newest_first(client, admin):
    for _ in range(3):
        name = f"page-{uuid.uuid4().hex[:8]}"
        client.post("/api/v1/users", json={"username": name, "password": "a long audited password",
                                           "role": "dispatcher"}, headers=admin)
    first = client.get("/api/v1/audit", params={"limit": 2}, headers=admin).json()
    assert len(first) == 2 and first[0]["id"] > first[1]["id"]
    older = client.get("/api/v1/audit", params={"limit": 2, "before": first[-1]["id"]}, headers=admin).json()
    assert older and all(e["id"] < first[-1]["id"] for e in older)


def test_only_admins_read_the_audit_log(client, pool, dispatcher):
    provider = bearer(pool, new_account(pool, Role.PROVIDER, "p-audit"))
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/api/v1/audit", headers=dispatcher).status_code == 403
    assert client.get("/api/v1/audit", headers=provider).status_code == 403
