"""SQL of commands to devices. Data functions take a connection and do not commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from homecare.internal import CommandState


@dataclass(frozen=True)
class StoredCommand:
    command_id: str
    device_id: str
    type: str
    payload: dict[str, Any]
    state: str
    announced: str | None
    inserted: bool  # False: the order is a redelivery of one already stored


_RETURNING = "command_id, device_id, type, payload, state, announced"


def _state(row: dict) -> CommandState:
    return CommandState(
        command_id=row["command_id"], device_id=row["device_id"], state=row["state"],
        at=row["updated_at"],
    )


def store(
    conn: psycopg.Connection, device_id: str, command: dict[str, Any], deadline_s: int
) -> StoredCommand:
    """Store a command as queued, once per command_id; returns the row as it now is."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO gateway.commands (command_id, device_id, type, payload, deadline_at)"
            " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))"
            f" ON CONFLICT (command_id) DO NOTHING RETURNING {_RETURNING}",
            (command["command_id"], device_id, command["type"], Jsonb(command), deadline_s),
        ).fetchone()
        if row is not None:
            return StoredCommand(**row, inserted=True)
        row = cur.execute(
            f"SELECT {_RETURNING} FROM gateway.commands WHERE command_id = %s",
            (command["command_id"],),
        ).fetchone()
    return StoredCommand(**row, inserted=False)


def mark_sent(conn: psycopg.Connection, command_id: str) -> CommandState | None:
    """The broker holds the command for the device; the new state, or None if it moved on."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE gateway.commands SET state = 'sent', sent_at = now(), updated_at = now()"
            " WHERE command_id = %s AND state = 'queued'"
            " RETURNING command_id, device_id, state, updated_at",
            (command_id,),
        ).fetchone()
    return None if row is None else _state(row)


def current_state(conn: psycopg.Connection, command_id: str) -> CommandState | None:
    """A command's state as it stands (to re-announce it on a redelivered order)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT command_id, device_id, state, updated_at FROM gateway.commands"
            " WHERE command_id = %s",
            (command_id,),
        ).fetchone()
    return None if row is None else _state(row)


@dataclass(frozen=True)
class Acknowledged:
    state: CommandState
    payload: dict[str, Any]
    changed: bool  # False: the device acknowledged it before


def acknowledge(
    conn: psycopg.Connection, device_id: str, command_id: str, at: datetime
) -> Acknowledged | None:
    """Record the device's ack of one of its commands; None when it has no such command.

    A late ack still counts: the device did show the command, even after its deadline.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE gateway.commands c SET state = 'acknowledged', acked_at = %s, updated_at = now()"
            " FROM (SELECT command_id, state FROM gateway.commands"
            "       WHERE command_id = %s AND device_id = %s FOR UPDATE) p"
            " WHERE c.command_id = p.command_id AND p.state <> 'acknowledged'"
            " RETURNING c.command_id, c.device_id, c.state, c.updated_at, c.payload",
            (at, command_id, device_id),
        ).fetchone()
        if row is not None:
            return Acknowledged(_state(row), row["payload"], changed=True)
        row = cur.execute(
            "SELECT command_id, device_id, state, updated_at, payload FROM gateway.commands"
            " WHERE command_id = %s AND device_id = %s",
            (command_id, device_id),
        ).fetchone()
    return None if row is None else Acknowledged(_state(row), row["payload"], changed=False)


def expire_overdue(conn: psycopg.Connection, limit: int = 1000) -> list[CommandState]:
    """Commands past their deadline and not acknowledged become expired."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "UPDATE gateway.commands c SET state = 'expired', updated_at = now()"
            " FROM (SELECT command_id FROM gateway.commands"
            "       WHERE state IN ('queued', 'sent') AND deadline_at < now()"
            "       ORDER BY deadline_at LIMIT %s FOR UPDATE SKIP LOCKED) p"
            " WHERE c.command_id = p.command_id"
            " RETURNING c.command_id, c.device_id, c.state, c.updated_at",
            (limit,),
        ).fetchall()
    return [_state(r) for r in rows]


def unannounced(conn: psycopg.Connection, older_than_s: int, limit: int = 500) -> list[CommandState]:
    """State changes whose announcement was not confirmed within older_than_s."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT command_id, device_id, state, updated_at FROM gateway.commands"
            " WHERE state <> 'queued' AND state IS DISTINCT FROM announced"
            " AND updated_at < now() - make_interval(secs => %s)"
            " ORDER BY updated_at LIMIT %s",
            (older_than_s, limit),
        ).fetchall()
    return [_state(r) for r in rows]


def mark_announced(conn: psycopg.Connection, announced: list[tuple[str, str]]) -> None:
    """Record (command_id, state) pairs as published; a state changed since stays owed."""
    if not announced:
        return
    conn.execute(
        "UPDATE gateway.commands c SET announced = v.state"
        " FROM unnest(%s::text[], %s::text[]) AS v(id, state)"
        " WHERE c.command_id = v.id AND c.state = v.state",
        ([a[0] for a in announced], [a[1] for a in announced]),
    )
