"""`homecare users add` applies the API's password policy: a weak password is refused with the
reason and a non-zero exit code, and nothing is saved (issue 12)."""

from __future__ import annotations

import io
import sys
import uuid

import pytest

from launch import cli


def _add(monkeypatch, database_url: str, name: str, password: str) -> int:
    monkeypatch.setenv("HOMECARE_DATABASE_URL", database_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    return cli.main(["users", "add", name, "--role", "dispatcher"])


def _saved(pool, name: str) -> bool:
    with pool.connection() as conn:
        return conn.execute("SELECT 1 FROM auth.users WHERE username = %s", (name,)).fetchone() is not None


@pytest.mark.parametrize(("password", "reason"), [
    ("12345678", "at least 12 characters"),
    ("password1234", "most common passwords"),
    ("{name}", "must not be the username"),
])
def test_a_weak_password_is_refused_with_the_reason(pool, database_url, monkeypatch, capsys, password, reason):
    name = f"cli-user-{uuid.uuid4().hex[:8]}"
    assert _add(monkeypatch, database_url, name, password.format(name=name)) != 0
    assert reason in capsys.readouterr().err
    assert not _saved(pool, name)


def test_a_good_password_is_saved_and_audited(pool, database_url, monkeypatch):
    name = f"cli-user-{uuid.uuid4().hex[:8]}"
    assert _add(monkeypatch, database_url, name, "a sensible long passphrase") == 0
    assert _saved(pool, name)
    with pool.connection() as conn:
        entry = conn.execute("SELECT actor, action FROM auth.audit WHERE target = %s", (f"user:{name}",)).fetchone()
    assert entry == {"actor": "cli", "action": "user.saved"}


def test_districts_are_saved_with_the_account(pool, database_url, monkeypatch, capsys):
    name = f"cli-user-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("HOMECARE_DATABASE_URL", database_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a sensible long passphrase\n"))
    assert cli.main(["users", "add", name, "--role", "dispatcher", "--district", "Xuhui",
                     "--district", " Minhang "]) == 0
    assert "districts Minhang, Xuhui" in capsys.readouterr().out
    with pool.connection() as conn:
        row = conn.execute("SELECT role, districts FROM auth.users WHERE username = %s", (name,)).fetchone()
    assert row == {"role": "dispatcher", "districts": ["Minhang", "Xuhui"]}


def test_a_city_account_is_saved(pool, database_url, monkeypatch):
    name = f"cli-user-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("HOMECARE_DATABASE_URL", database_url)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a sensible long passphrase\n"))
    assert cli.main(["users", "add", name, "--role", "city"]) == 0
    with pool.connection() as conn:
        assert conn.execute("SELECT role FROM auth.users WHERE username = %s", (name,)).fetchone() == {"role": "city"}
