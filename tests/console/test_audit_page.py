"""The console's audit page (issue 12): admins read what admins did and every lockout; a console
sign-in lockout and the roster's shift switch are recorded; others get 403 and no link."""

from __future__ import annotations

import uuid

import pytest

from homecare.auth import Role

from .conftest import csrf_in, make_user, sign_in
from .dispatching import new_provider


@pytest.fixture
def one_free_failure(client, monkeypatch):
    monkeypatch.setattr(client.app.state.login_throttle, "free", {"user": 1, "addr": 10**9})


def _admin(pool, client):
    name = make_user(pool, Role.ADMIN)
    assert sign_in(client, name).status_code == 303
    return name


def test_an_admin_reads_the_audit_log_linked_in_the_navigation(pool, client):
    admin = _admin(pool, client)
    pid, _ = new_provider(pool, ["meal"], "Audited Carer")
    token = csrf_in(client.get("/providers").text)
    assert client.post(f"/providers/{pid}/shift", data={"csrf_token": token, "on_shift": "true"}).status_code == 303

    page = client.get("/audit")

    assert page.status_code == 200
    assert 'href="/audit"' in client.get("/").text
    row = page.text.split(f"provider:{pid}", 1)[0].rsplit("<tr", 1)[1]
    assert f"admin:{admin}" in row and "provider.shift_set" in row and "<time" in row


def test_a_console_sign_in_lockout_is_recorded(one_free_failure, pool, client):
    victim = make_user(pool, Role.DISPATCHER)
    for _ in range(2):
        assert sign_in(client, victim, password="not the password at all").status_code == 401
    _admin(pool, client)

    page = client.get("/audit")

    row = page.text.split(f"user:{victim}", 1)[0].rsplit("<tr", 1)[1]
    assert "system" in row and "<code>lockout</code>" in row


def test_others_get_403_and_no_link(pool, client):
    assert client.get("/audit").status_code == 303  # to the sign-in page
    assert sign_in(client, make_user(pool, Role.DISPATCHER)).status_code == 303
    assert 'href="/audit"' not in client.get("/").text
    assert client.get("/audit").status_code == 403
    client.cookies.clear()
    provider = make_user(pool, Role.PROVIDER, provider_id=f"prov-{uuid.uuid4().hex[:8]}")
    assert sign_in(client, provider).status_code == 303
    assert client.get("/audit").status_code == 403
