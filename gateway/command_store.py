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
    held: bool  # waiting for the device's first connection
    inserted: bool  # False: the order is a redelivery of one already stored


_RETURNING = "command_id, device_id, type, payload, state, announced, held"


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


def hold_if_never_seen(conn: psycopg.Connection, command_id: str, device_id: str) -> bool:
    """Hold a queued command when its device has never connected (no broker session yet).

    The device row is read FOR SHARE: a status that brings the device online (FOR UPDATE)
    either commits first, and the command is not held, or waits, and then releases it.
    """
    row = conn.execute(
        "UPDATE gateway.commands c SET held = true"
        " FROM (SELECT id FROM gateway.devices WHERE id = %s AND state = 'never_seen' FOR SHARE) d"
        " WHERE c.command_id = %s AND c.device_id = d.id AND c.state = 'queued' RETURNING 1",
        (device_id, command_id),
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class Deliverable:
    command_id: str
    device_id: str
    payload: dict[str, Any]


def release_held(conn: psycopg.Connection, device_ids: list[str]) -> list[Deliverable]:
    """Commands held for these devices, now to be published."""
    if not device_ids:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "UPDATE gateway.commands SET held = false, updated_at = now()"
            " WHERE device_id = ANY(%s) AND held AND state = 'queued'"
            " RETURNING command_id, device_id, payload",
            (device_ids,),
        ).fetchall()
    return [Deliverable(**r) for r in sorted(rows, key=lambda r: r["command_id"])]


def unsent(conn: psycopg.Connection, older_than_s: int, limit: int = 500) -> list[Deliverable]:
    """Commands to publish again: queued, not held, yet not PUBACKed for older_than_s (a crash
    between release and publish, or a publish whose acknowledgement was lost)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "UPDATE gateway.commands c SET updated_at = now()"
            " FROM (SELECT c2.command_id FROM gateway.commands c2"
            "       JOIN gateway.devices d ON d.id = c2.device_id AND d.state <> 'never_seen'"
            "       WHERE c2.state = 'queued' AND NOT c2.held"
            "       AND c2.updated_at < now() - make_interval(secs => %s)"
            "       ORDER BY c2.updated_at LIMIT %s FOR UPDATE OF c2 SKIP LOCKED) p"
            " WHERE c.command_id = p.command_id RETURNING c.command_id, c.device_id, c.payload",
            (older_than_s, limit),
        ).fetchall()
    return [Deliverable(**r) for r in rows]


def list_for_device(
    conn: psycopg.Connection, device_id: str, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """A device's commands, newest first."""
    where, params = "device_id = %s", [device_id]
    if state is not None:
        where += " AND state = %s"
        params.append(state)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT command_id, type, state, held, payload, created_at, updated_at, sent_at,"
            " acked_at, deadline_at FROM gateway.commands"
            f" WHERE {where} ORDER BY created_at DESC, command_id LIMIT %s",
            (*params, limit),
        ).fetchall()


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
