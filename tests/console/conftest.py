"""Console fixtures: a started console on the session database, and signed-in clients."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from console.settings import ConsoleSettings
from homecare.api.app import build_app
from homecare.auth import Role, create_user
from homecare.settings import Settings

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def console(pool):
    """The console, listening; short heartbeats so streams never sit silent in tests."""
    from console.bootstrap import build  # imports dispatch, which rule tests do not need

    component = build(
        Settings(secret_key=SECRET, environment="development"),
        pool,
        ConsoleSettings(heartbeat_s=0.5, coalesce_s=0.05),
    )
    component.start()
    yield component
    component.stop()


@pytest.fixture
def client(pool, console) -> Iterator[TestClient]:
    app = build_app("test", pool, routers=console.routers())
    console.mount(app)  # as launch.assemble.http_app does
    with TestClient(app, follow_redirects=False) as c:
        yield c


def make_user(pool, role: Role, provider_id: str | None = None, districts: tuple[str, ...] = ()) -> str:
    """A new account with PASSWORD (a dispatcher of `districts`); returns its username."""
    name = f"{role.value}-{uuid.uuid4().hex[:8]}"
    with pool.connection() as conn:
        create_user(conn, name, PASSWORD, role, provider_id, districts)
    return name


@pytest.fixture
def dispatcher(pool) -> str:
    """A dispatcher of the city bureau (role city): every district, as the pages' tests need.
    District dispatchers, who see their own only: tests/console/test_districts.py."""
    return make_user(pool, Role.CITY)


@pytest.fixture
def provider_user(pool) -> str:
    return make_user(pool, Role.PROVIDER, provider_id=f"prov-{uuid.uuid4().hex[:8]}")


SECRET = "console-test-secret"


def valid_csrf(client: TestClient) -> str:
    """The CSRF token of the client's session, as a page would carry it (so only the role refuses)."""
    from console.csrf import CsrfSigner

    return CsrfSigner(SECRET.encode()).token_for(client.cookies.get("homecare_session"))


def csrf_in(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next: str = "/"):
    """Sign in through the form as a browser would; returns the POST's response."""
    form = client.get("/login", params={"next": next})
    assert form.status_code == 200
    return client.post("/login", data={
        "username": username, "password": password, "csrf_token": csrf_in(form.text), "next": next,
    })


@pytest.fixture
def signed_in(client: TestClient, dispatcher: str) -> TestClient:
    """The client with a dispatcher's session."""
    assert sign_in(client, dispatcher).status_code == 303
    return client
