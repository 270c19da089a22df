"""The audit log: every admin action (accounts, lockouts lifted, devices, providers) and every
sign-in lockout, with actor, action, target and time. Data functions take a connection and do
not commit: the caller writes the entry in the transaction of the action it records."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

SYSTEM = "system"  # the actor of what no person did (a lockout after failed sign-ins)
_TEXT = 200  # actor and target are cut to this: a lockout's target is whatever username was tried


def actor_of(user) -> str:
    """How a signed-in user appears as an actor: `role:username`."""
    return f"{user.role.value}:{user.username}"


def record(
    conn: psycopg.Connection, actor: str, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """Add an entry (in the caller's transaction)."""
    conn.execute(
        "INSERT INTO auth.audit (actor, action, target, detail) VALUES (%s, %s, %s, %s)",
        (actor[:_TEXT], action, target[:_TEXT], Jsonb(detail or {})),
    )


def entries(conn: psycopg.Connection, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
    """Entries newest first; `before` an entry's id to page on to older ones."""
    rows = conn.execute(
        "SELECT id, at, actor, action, target, detail FROM auth.audit"
        " WHERE (%(before)s::bigint IS NULL OR id < %(before)s::bigint) ORDER BY id DESC LIMIT %(limit)s",
        {"before": before, "limit": limit},
    ).fetchall()
    keys = ("id", "at", "actor", "action", "target", "detail")
    return [dict(r) if isinstance(r, dict) else dict(zip(keys, r, strict=True)) for r in rows]
