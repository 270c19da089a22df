"""The whole operator API and console as `homecare demo` serves them, on the session database
(components built, none started: no broker traffic), and a bearer token per role."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from homecare.auth import Role, User, create_user, issue_token
from homecare.settings import Settings
from launch import assemble

SECRET = "api-test-secret"
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def app(pool, broker_url, nats_url):
    # The broker URL only because the components are built (never started) here. The console's
    # connection to the log is started (dead letters), in streams of this module's own.
    namespace = f"T{uuid.uuid4().hex[:10]}"
    settings = Settings(secret_key=SECRET, environment="development", mqtt_url=broker_url, nats_url=nats_url,
                        log_namespace=namespace)
    components = [assemble.build_component(n, settings, pool) for n in assemble.BUILDERS]
    console = next(c for c in components if c.name == "console")
    console.log.start()
    yield assemble.http_app("homecare", pool, components, True, [])
    console.log.call(_drop_streams(console.log), 30)
    console.log.stop()


async def _drop_streams(log) -> None:
    from homecare.log import streams

    for spec in streams.ALL:
        try:
            await log.js.delete_stream(log.stream(spec))
        except Exception:  # never made
            pass


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def new_account(pool, role: Role, provider_id: str | None = None, password: str = PASSWORD,
                districts: tuple[str, ...] = ()) -> str:
    name = f"{role.value}-{uuid.uuid4().hex[:8]}"
    with pool.connection() as conn:
        create_user(conn, name, password, role, provider_id, districts)
    return name


def bearer(pool, username: str) -> dict[str, str]:
    """Authorization header of a new token of that account."""
    with pool.connection() as conn:
        row = conn.execute("SELECT role, provider_id FROM auth.users WHERE username = %s", (username,)).fetchone()
        role, provider_id = (row["role"], row["provider_id"]) if isinstance(row, dict) else row
        token = issue_token(conn, User(username, Role(role), provider_id))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(pool) -> dict[str, str]:
    return bearer(pool, new_account(pool, Role.ADMIN))


@pytest.fixture
def dispatcher(pool) -> dict[str, str]:
    """A dispatcher of the city bureau (role city): every district. District dispatchers:
    tests/api/test_districts.py."""
    return bearer(pool, new_account(pool, Role.CITY))
