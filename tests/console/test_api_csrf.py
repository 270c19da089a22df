"""The operator API signed in by the console's session cookie: unsafe methods need the CSRF header
(homecare.api.deps.current_user with the check the console registers); bearer tokens do not."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from homecare.api.app import build_app
from services.dispatch.api import build_router

from .conftest import PASSWORD, csrf_in, sign_in
from .dispatching import get_request, new_resident, open_request


def _app(pool, console, mounted: bool = True):
    app = build_app("test", pool, routers=[*console.routers(), build_router(console.ctx.dispatch)])
    if mounted:
        console.mount(app)
    return app


@pytest.fixture
def client(pool, console):
    """The console with dispatch's API beside it, as one app serves both."""
    with TestClient(_app(pool, console), follow_redirects=False) as c:
        yield c


def test_a_cookie_signed_post_without_the_header_is_refused(pool, signed_in):
    resident, _ = new_resident(pool)

    response = signed_in.post("/api/v1/requests", json={"resident_id": resident, "service": "meal"})

    assert response.status_code == 403
    assert "X-CSRF-Token" in response.json()["detail"]
    assert signed_in.get("/api/v1/requests", params={"status": "open"}).status_code == 200  # reads are fine


def test_a_cookie_signed_post_with_a_wrong_header_is_refused(pool, signed_in):
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "meal")

    response = signed_in.post(f"/api/v1/requests/{request}/cancel", json={"reason": "x"},
                              headers={"X-CSRF-Token": "0" * 64})

    assert response.status_code == 403
    assert get_request(pool, request)["status"] != "cancelled"


def test_a_cookie_signed_post_with_the_pages_token_goes_through(pool, signed_in):
    resident, _ = new_resident(pool)
    token = csrf_in(signed_in.get("/").text)

    response = signed_in.post("/api/v1/requests", json={"resident_id": resident, "service": "escort"},
                              headers={"X-CSRF-Token": token})

    assert response.status_code == 201
    assert response.json()["resident_id"] == resident


def test_a_bearer_token_needs_no_csrf_header(pool, client, dispatcher):
    resident, _ = new_resident(pool)
    token = client.post("/api/v1/auth/token", data={"username": dispatcher, "password": PASSWORD}).json()

    response = client.post("/api/v1/requests", json={"resident_id": resident, "service": "bathing"},
                           headers={"Authorization": f"Bearer {token['access_token']}"})

    assert response.status_code == 201


def test_without_a_registered_check_cookie_signed_posts_are_refused(pool, console, dispatcher):
    resident, _ = new_resident(pool)
    with TestClient(_app(pool, console, mounted=False), follow_redirects=False) as c:
        sign_in(c, dispatcher)
        token = csrf_in(c.get("/").text)

        response = c.post("/api/v1/requests", json={"resident_id": resident, "service": "meal"},
                          headers={"X-CSRF-Token": token})

    assert response.status_code == 403
