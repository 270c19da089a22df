"""The whole network running in this process on the real broker and database."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from homecare.auth import Role, create_user
from homecare.settings import Settings
from launch import assemble
from launch.embedded import free_port
from launch.serve import HttpServer
from tests.support import forget_session


@dataclass(frozen=True)
class Network:
    api_url: str
    broker_url: str


@pytest.fixture
def network(database_url, broker_url, pool, instance):
    """Every component started, the API served on a free port."""
    settings = Settings(database_url=database_url, mqtt_url=broker_url, instance=instance)
    components = [assemble.build_component(n, settings, pool) for n in assemble.BUILDERS]
    started = []
    server = HttpServer(assemble.http_app("e2e", pool, components, True), "127.0.0.1", free_port())
    try:
        for component in components:
            component.start()
            started.append(component)
        server.start()
        yield Network(server.url, broker_url)
    finally:
        for component in reversed(started):
            component.stop()
        server.stop()
        for client_id in (*(settings.client_id(n) for n in ("gateway", "telemetry", "dispatch")),
                          f"{settings.client_id('gateway')}-control", f"{settings.client_id('telemetry')}-alerts"):
            forget_session(broker_url, client_id)


class Api:
    """A signed-in API client."""

    def __init__(self, base_url: str, username: str, password: str):
        self.http = httpx.Client(base_url=base_url, timeout=10)
        response = self.http.post("/api/v1/auth/token", data={"username": username, "password": password})
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, expect: int = 200, **kwargs):
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


@pytest.fixture
def admin(network, pool, instance) -> Api:
    password = f"pw-{instance}-admin"
    with pool.connection() as conn:
        create_user(conn, f"admin-{instance}", password, Role.ADMIN)
    return Api(network.api_url, f"admin-{instance}", password)
