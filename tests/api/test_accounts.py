"""Accounts: no takeover by re-creating a username, and a reset ends old tokens (issue 12)."""

from __future__ import annotations

import uuid

import pytest

from homecare.auth import Role

from .conftest import PASSWORD, bearer, new_account


def test_creating_an_existing_username_is_409_and_changes_nothing(pool, client, admin):
    victim = new_account(pool, Role.ADMIN)
    before = bearer(pool, victim)
    r = client.post("/api/v1/users", json={"username": victim, "password": "a new password 42",
                                           "role": "provider", "provider_id": "p-x"}, headers=admin)
    assert r.status_code == 409, r.text
    assert client.get("/api/v1/me", headers=before).json()["role"] == "admin"
    token = client.post("/api/v1/auth/token", data={"username": victim, "password": PASSWORD})
    assert token.status_code == 200


def test_a_new_username_is_created(client, admin):
    name = f"new-{uuid.uuid4().hex[:8]}"
    r = client.post("/api/v1/users", json={"username": name, "password": "a fresh long password",
                                           "role": "dispatcher"}, headers=admin)
    assert r.status_code == 201 and r.json() == {"username": name, "role": "dispatcher", "provider_id": None,
                                                 "districts": []}


def test_a_password_reset_ends_the_accounts_tokens_and_sessions(pool, client, admin):
    name = new_account(pool, Role.DISPATCHER)
    old = bearer(pool, name)
    assert client.get("/api/v1/me", headers=old).status_code == 200
    r = client.patch(f"/api/v1/users/{name}", json={"password": "another long password"}, headers=admin)
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/me", headers=old).status_code == 401
    assert client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD}).status_code == 401
    new = client.post("/api/v1/auth/token", data={"username": name, "password": "another long password"})
    assert new.status_code == 200


def test_a_reset_through_create_user_ends_tokens_too(pool, client):
    from homecare.auth import create_user

    name = new_account(pool, Role.DISPATCHER)
    old = bearer(pool, name)
    with pool.connection() as conn:
        create_user(conn, name, "reset from the command line", Role.DISPATCHER)
    assert client.get("/api/v1/me", headers=old).status_code == 401


def test_changing_an_unknown_user_is_404_and_only_admins_change_users(pool, client, admin, dispatcher):
    assert client.patch("/api/v1/users/nobody-here", json={"role": "admin"}, headers=admin).status_code == 404
    name = new_account(pool, Role.DISPATCHER)
    assert client.patch(f"/api/v1/users/{name}", json={"role": "admin"}, headers=dispatcher).status_code == 403
    changed = client.patch(f"/api/v1/users/{name}", json={"role": "provider", "provider_id": "p-1"}, headers=admin)
    assert changed.json() == {"username": name, "role": "provider", "provider_id": "p-1", "districts": []}


@pytest.mark.parametrize("password, why", [
    ("12345678", "at least 12 characters"),
    ("password", "at least 12 characters"),
    ("password1234", "most common"),
    ("Qwertyuiop123!", "most common"),
    ("same-as-username", "the username"),
    ("aaaaaaaaaaaaaaaa", "repeated"),
])
def test_weak_passwords_are_refused_with_the_reason(client, admin, password, why):
    r = client.post("/api/v1/users", json={"username": "same-as-username", "password": password,
                                           "role": "dispatcher"}, headers=admin)
    assert r.status_code == 422 and why in r.text, r.text
    change = client.patch("/api/v1/users/same-as-username", json={"password": password}, headers=admin)
    assert change.status_code == 422 and why in change.text, change.text


def test_an_account_gets_districts_and_a_change_replaces_them(pool, client, admin):
    name = f"new-{uuid.uuid4().hex[:8]}"
    r = client.post("/api/v1/users", json={"username": name, "password": "a fresh long password",
                                           "role": "dispatcher", "districts": ["Xuhui", "Minhang"]}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["districts"] == ["Minhang", "Xuhui"]
    assert client.get("/api/v1/me", headers=bearer(pool, name)).json()["districts"] == ["Minhang", "Xuhui"]
    r = client.patch(f"/api/v1/users/{name}", json={"districts": ["Jing'an"]}, headers=admin)
    assert r.status_code == 200 and r.json()["districts"] == ["Jing'an"]
    r = client.patch(f"/api/v1/users/{name}", json={"role": "city"}, headers=admin)
    assert r.json() == {"username": name, "role": "city", "provider_id": None, "districts": ["Jing'an"]}


@pytest.mark.parametrize("districts", [["x" * 101], ["bad\x00name"], "Xuhui", [1], ["d"] * 51])
def test_hostile_districts_are_422(client, admin, districts):
    name = f"new-{uuid.uuid4().hex[:8]}"
    r = client.post("/api/v1/users", json={"username": name, "password": "a fresh long password",
                                           "role": "dispatcher", "districts": districts}, headers=admin)
    assert r.status_code == 422, r.text
