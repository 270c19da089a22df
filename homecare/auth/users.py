"""Accounts and tokens. Data functions take a connection and do not commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import psycopg

from .passwords import hash_secret, new_token, token_hash, verify_secret
from .scope import Scope, clean_districts

TOKEN_LIFETIME = timedelta(hours=12)
_DUMMY_HASH = hash_secret(new_token())  # checked against when the username is unknown


class Role(StrEnum):
    ADMIN = "admin"
    CITY = "city"  # the city bureau: a dispatcher of every district, not an admin
    DISPATCHER = "dispatcher"
    PROVIDER = "provider"


class AuthError(Exception):
    """Wrong credentials, or a token that is unknown or expired."""


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    provider_id: str | None = None
    # The districts a dispatcher works for; ignored for admins and the city bureau (all of them).
    districts: frozenset[str] = frozenset()

    def has_role(self, *roles: Role) -> bool:
        """Admins may do everything; the city bureau what dispatchers may; others only what their
        role allows."""
        if self.role is Role.ADMIN or self.role in roles:
            return True
        return self.role is Role.CITY and Role.DISPATCHER in roles

    @property
    def scope(self) -> Scope:
        """The districts this user sees: a dispatcher its own (none: nothing), everyone else all
        (a provider is held to its own offers and requests by its role)."""
        if self.role is Role.DISPATCHER:
            return Scope.of(self.districts)
        return Scope.everything()


class UserExists(Exception):
    """An account with this username exists already."""


class UnknownUser(Exception):
    """No account has this username."""


def _check(username: str, password: str, role: Role, provider_id: str | None) -> None:
    if not username or len(password) < 8:
        raise ValueError("a username and a password of at least 8 characters are required")
    if role is Role.PROVIDER and not provider_id:
        raise ValueError("a provider account must name its provider")


def create_user(
    conn: psycopg.Connection, username: str, password: str, role: Role, provider_id: str | None = None,
    districts: Iterable[str] = (),
) -> User:
    """Create or replace an account (a re-run of `users add` resets the password). A reset ends
    every token and console session the account had."""
    _check(username, password, role, provider_id)
    places = clean_districts(districts)
    conn.execute(
        "INSERT INTO auth.users (username, password_hash, role, provider_id, districts)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,"
        " role = EXCLUDED.role, provider_id = EXCLUDED.provider_id, districts = EXCLUDED.districts,"
        " disabled_at = NULL",
        (username, hash_secret(password), role.value, provider_id, sorted(places)),
    )
    revoke_tokens_of(conn, username)
    return User(username, role, provider_id, places)


def add_user(
    conn: psycopg.Connection, username: str, password: str, role: Role, provider_id: str | None = None,
    districts: Iterable[str] = (),
) -> User:
    """Create an account; UserExists when the username is taken (never a silent replacement)."""
    _check(username, password, role, provider_id)
    places = clean_districts(districts)
    inserted = conn.execute(
        "INSERT INTO auth.users (username, password_hash, role, provider_id, districts)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (username) DO NOTHING RETURNING username",
        (username, hash_secret(password), role.value, provider_id, sorted(places)),
    ).fetchone()
    if inserted is None:
        raise UserExists(f"username {username} is taken")
    return User(username, role, provider_id, places)


def update_user(
    conn: psycopg.Connection, username: str, password: str | None = None, role: Role | None = None,
    provider_id: str | None = None, districts: Iterable[str] | None = None,
) -> User:
    """Change an account's password, role and/or districts (None: unchanged); any change ends all
    its tokens and sessions."""
    row = conn.execute(
        "SELECT role, provider_id, districts FROM auth.users WHERE username = %s FOR UPDATE", (username,)
    ).fetchone()
    if row is None:
        raise UnknownUser(f"user {username} not found")
    new_role = role or Role(_get(row, "role", 0))
    new_provider = provider_id if provider_id is not None else _get(row, "provider_id", 1)
    if new_role is not Role.PROVIDER:
        new_provider = None
    elif not new_provider:
        raise ValueError("a provider account must name its provider")
    if password is not None:
        _check(username, password, new_role, new_provider)
        conn.execute("UPDATE auth.users SET password_hash = %s WHERE username = %s",
                     (hash_secret(password), username))
    places = clean_districts(_get(row, "districts", 2) or ()) if districts is None else clean_districts(districts)
    conn.execute("UPDATE auth.users SET role = %s, provider_id = %s, districts = %s WHERE username = %s",
                 (new_role.value, new_provider, sorted(places), username))
    revoke_tokens_of(conn, username)
    return User(username, new_role, new_provider, places)


def revoke_tokens_of(conn: psycopg.Connection, username: str) -> None:
    """End every token (API and console session) of an account."""
    conn.execute("DELETE FROM auth.tokens WHERE username = %s", (username,))


def authenticate(conn: psycopg.Connection, username: str, password: str) -> User:
    """The user whose password this is, or AuthError."""
    row = conn.execute(
        "SELECT username, password_hash, role, provider_id, districts FROM auth.users"
        " WHERE username = %s AND disabled_at IS NULL",
        (username,),
    ).fetchone()
    # An unknown username costs the same hash as a known one: the time taken tells nothing.
    stored = _DUMMY_HASH if row is None else _get(row, "password_hash", 1)
    if not verify_secret(password, stored) or row is None:
        raise AuthError("incorrect username or password")
    return User(_get(row, "username", 0), Role(_get(row, "role", 2)), _get(row, "provider_id", 3),
                frozenset(_get(row, "districts", 4) or ()))


def issue_token(conn: psycopg.Connection, user: User, lifetime: timedelta = TOKEN_LIFETIME) -> str:
    """A new bearer token for the user; only its hash is stored."""
    token = new_token()
    conn.execute(
        "INSERT INTO auth.tokens (token_hash, username, expires_at) VALUES (%s, %s, now() + %s)",
        (token_hash(token), user.username, lifetime),
    )
    return token


def revoke_token(conn: psycopg.Connection, token: str) -> None:
    """Forget a token (log out)."""
    conn.execute("DELETE FROM auth.tokens WHERE token_hash = %s", (token_hash(token),))


def user_for_token(conn: psycopg.Connection, token: str) -> User:
    """The user a live token belongs to, or AuthError."""
    row = conn.execute(
        "SELECT u.username, u.role, u.provider_id, u.districts FROM auth.tokens t"
        " JOIN auth.users u USING (username)"
        " WHERE t.token_hash = %s AND t.expires_at > now() AND u.disabled_at IS NULL",
        (token_hash(token),),
    ).fetchone()
    if row is None:
        raise AuthError("token unknown or expired")
    return User(_get(row, "username", 0), Role(_get(row, "role", 1)), _get(row, "provider_id", 2),
                frozenset(_get(row, "districts", 3) or ()))


def _get(row, key: str, index: int):
    # Works with dict rows (pools) and tuple rows (plain connections).
    return row[key] if isinstance(row, dict) else row[index]
