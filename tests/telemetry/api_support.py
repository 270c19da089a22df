"""An app with the telemetry routes on the real database, and tokens per role."""

from __future__ import annotations

from fastapi.testclient import TestClient

from homecare.api.app import build_app
from homecare.auth import Role, create_user
from homecare.settings import Settings
from services.telemetry.bootstrap import build
from tests.support import unique


def telemetry_client(pool, broker_url: str, config=None) -> TestClient:
    component = build(Settings(mqtt_url=broker_url, instance=unique("api")), pool, config)
    return TestClient(build_app("telemetry", pool, routers=component.routers(), checks=component.checks()))


def token(client: TestClient, pool, role: Role) -> dict[str, str]:
    """Authorization header of a new account with that role."""
    username, password = unique("user"), "correct horse battery"
    with pool.connection() as conn:
        create_user(conn, username, password, role, provider_id="prov-1" if role is Role.PROVIDER else None)
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}, username
