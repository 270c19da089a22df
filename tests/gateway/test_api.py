"""`/api/v1/devices` over HTTP with real accounts and tokens."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gateway.accounts import AnonymousBroker
from gateway.api import devices_router
from gateway.service import DeviceAdmin
from homecare.api.app import build_app
from homecare.auth import Role, create_user
from homecare.shards import Shards, without_credentials
from tests.support import unique


@pytest.fixture(scope="module")
def client(pool, broker_url):
    shards = Shards.parse("", "", broker_url)  # one shard, `main`
    app = build_app("gateway-test", pool, [devices_router(DeviceAdmin(AnonymousBroker(), shards=shards))])
    with TestClient(app) as http:
        yield http


def _token(client, pool, role: Role) -> dict[str, str]:
    username, password = unique("user"), "correct horse battery"
    with pool.connection() as conn:
        create_user(conn, username, password, role, provider_id="prov-1" if role is Role.PROVIDER else None)
    reply = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert reply.status_code == 200
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def test_admin_provisions_reads_lists_and_decommissions(client, pool, resident_id, broker_url):
    admin = _token(client, pool, Role.ADMIN)
    device_id = unique("btn")
    reply = client.post(
        "/api/v1/devices", json={"id": device_id, "kind": "button", "resident_id": resident_id},
        headers=admin,
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["id"] == device_id and body["kind"] == "button" and len(body["secret"]) >= 32
    # http-v1: the broker the device must use, never with the platform's credentials
    assert body["mqtt_url"] == without_credentials(broker_url) and "@" not in body["mqtt_url"]

    shown = client.get(f"/api/v1/devices/{device_id}", headers=admin).json()
    assert shown["resident_id"] == resident_id and shown["online"] is False
    assert shown["state"] == "never_seen" and shown["last_seen"] is None and "secret" not in shown
    assert shown["shard"] == "main"

    listed = client.get("/api/v1/devices", params={"resident_id": resident_id}, headers=admin).json()
    assert device_id in [d["id"] for d in listed]

    assert client.delete(f"/api/v1/devices/{device_id}", headers=admin).status_code == 204
    listed = client.get("/api/v1/devices", params={"resident_id": resident_id}, headers=admin).json()
    assert device_id not in [d["id"] for d in listed]
    assert client.get(f"/api/v1/devices/{device_id}", headers=admin).json()["revoked_at"] is not None


def test_errors_say_what_was_wrong(client, pool, resident_id):
    admin = _token(client, pool, Role.ADMIN)
    device_id = unique("bed")
    new = {"id": device_id, "kind": "bed", "resident_id": resident_id}
    assert client.post("/api/v1/devices", json=new, headers=admin).status_code == 201
    conflict = client.post("/api/v1/devices", json=new, headers=admin)
    assert conflict.status_code == 409 and device_id in conflict.json()["detail"]
    bad_id = client.post("/api/v1/devices", json={**new, "id": "Bed 1"}, headers=admin)
    assert bad_id.status_code == 422 and "id" in bad_id.json()["detail"]
    bad_kind = client.post("/api/v1/devices", json={**new, "id": unique("bed"), "kind": "lamp"}, headers=admin)
    assert bad_kind.status_code == 422
    nobody = client.post("/api/v1/devices", json={**new, "id": unique("bed"), "resident_id": "res-x"}, headers=admin)
    assert nobody.status_code == 404 and "res-x" in nobody.json()["detail"]
    assert client.get(f"/api/v1/devices/{unique('bed')}", headers=admin).status_code == 404
    assert client.delete(f"/api/v1/devices/{unique('bed')}", headers=admin).status_code == 404


def test_roles(client, pool, resident_id):
    dispatcher = _token(client, pool, Role.CITY)
    provider = _token(client, pool, Role.PROVIDER)
    new = {"id": unique("btn"), "kind": "button", "resident_id": resident_id}
    assert client.post("/api/v1/devices", json=new).status_code == 401
    assert client.post("/api/v1/devices", json=new, headers=dispatcher).status_code == 403
    admin = _token(client, pool, Role.ADMIN)
    assert client.post("/api/v1/devices", json=new, headers=admin).status_code == 201
    assert client.get(f"/api/v1/devices/{new['id']}", headers=dispatcher).status_code == 200
    assert client.get(f"/api/v1/devices/{new['id']}", headers=provider).status_code == 403
    assert client.delete(f"/api/v1/devices/{new['id']}", headers=dispatcher).status_code == 403
