"""Guessing passwords: failures per username and per address lock out for a growing time, with
429 and Retry-After, on the token endpoint and the console's login alike (issue 12)."""

from __future__ import annotations

import re
import statistics
import time
import uuid

import pytest

from homecare.auth import Role
from homecare.auth.throttle import LoginThrottle

from .conftest import PASSWORD, new_account


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app):
    """A fresh throttle on a clock the test moves: 3 free failures per user, 6 per address."""
    clock = Clock()
    before = app.state.login_throttle
    app.state.login_throttle = LoginThrottle(free_per_user=3, free_per_address=6, base_s=2, clock=clock)
    yield clock
    app.state.login_throttle = before


def token(client, username: str, password: str):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


def test_failures_for_a_username_lock_it_out_with_a_doubling_retry_after(pool, client, clock):
    name = new_account(pool, Role.DISPATCHER)
    assert [token(client, name, "wrong password").status_code for _ in range(4)] == [401] * 4
    locked = token(client, name, PASSWORD)  # even the right password waits
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "2"
    clock.now += 2
    assert token(client, name, "wrong password").status_code == 401
    assert token(client, name, PASSWORD).headers["Retry-After"] == "4"  # it doubles
    clock.now += 4
    assert token(client, name, PASSWORD).status_code == 200


def test_failures_from_one_address_lock_out_every_username(pool, client, clock):
    for _ in range(7):
        assert token(client, f"nobody-{uuid.uuid4().hex[:6]}", "wrong password").status_code == 401
    name = new_account(pool, Role.DISPATCHER)
    r = token(client, name, PASSWORD)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_an_admin_lifts_a_lockout(pool, client, clock, admin):
    name = new_account(pool, Role.DISPATCHER)
    for _ in range(4):
        token(client, name, "wrong password")
    assert token(client, name, PASSWORD).status_code == 429
    assert client.delete(f"/api/v1/auth/lockouts/{name}", headers=admin).status_code == 204
    assert token(client, name, PASSWORD).status_code == 200


def test_the_console_login_is_throttled_too(pool, client, clock):
    name = new_account(pool, Role.DISPATCHER)

    def login(password: str):
        form = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        return client.post("/login", data={"username": name, "password": password, "csrf_token": csrf})

    assert [login("wrong password").status_code for _ in range(4)] == [401] * 4
    locked = login(PASSWORD)
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "2"
    assert "Too many failed sign-ins" in locked.text
    client.cookies.clear()


def test_an_unknown_username_takes_as_long_as_a_known_one(pool, client, app, monkeypatch):
    monkeypatch.setattr(app.state, "login_throttle", LoginThrottle(free_per_user=1000, free_per_address=1000))
    name = new_account(pool, Role.DISPATCHER)

    def timed(username: str) -> float:
        started = time.perf_counter()
        assert token(client, username, "wrong password").status_code == 401
        return time.perf_counter() - started

    known = statistics.median(timed(name) for _ in range(7))
    unknown = statistics.median(timed(f"nobody-{uuid.uuid4().hex[:6]}") for _ in range(7))
    assert 0.6 < unknown / known < 1.6, (known, unknown)
