"""The command outbox: each row is one command to a device, written in the transaction of the
change that causes it, published to the device's `commands` topic afterwards, then followed to
its end (acknowledged by the device, or expired). The one store of commands in the platform."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from homecare.db import notices
from homecare.topics import DeviceChannel, device_topic

OUTBOX_CHANNEL = "dispatch_outbox"
# One publisher at a time across replicas keeps each device's commands in order.
_PUBLISHER_LOCK = 0x64697370  # "disp"


def put(
    conn: psycopg.Connection, device_id: str, command: dict[str, Any], *, kind: str, deadline_s: int,
    request_id: str | None = None, origin_at: datetime | None = None,
) -> int:
    """Queue one mqtt-v1 command; the publisher is woken when the transaction commits."""
    row = conn.execute(
        "INSERT INTO dispatch.outbox"
        " (topic, device_id, request_id, kind, payload, origin_at, command_id, deadline_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s)) RETURNING id",
        (device_topic(device_id, DeviceChannel.COMMANDS), device_id, request_id, kind, Jsonb(command),
         origin_at, command["command_id"], deadline_s),
    ).fetchone()
    wake(conn)
    return row["id"] if isinstance(row, dict) else row[0]


def wake(conn: psycopg.Connection) -> None:
    """Wake the publisher when this transaction commits (held commands may go out now)."""
    notices.notify(conn, OUTBOX_CHANNEL, "")


@dataclass(frozen=True)
class Publishable:
    id: int
    topic: str
    device_id: str
    shard: str
    kind: str
    payload: dict[str, Any]
    origin_at: datetime | None


def unsent(conn: psycopg.Connection, shards: list[str], limit: int = 100) -> list[Publishable] | None:
    """Take the publisher's lock for this transaction (None when another replica holds it), and
    the oldest commands to publish on these shards, in the order they were written: not yet
    taken by the broker, not expired, to a device that has connected at least once. A device that
    never connected has no session on its broker to keep a command in: its commands are held until
    it first does. On a shard this replica has no broker for (misconfigured), a command expires.
    The lock and the rows go in one round trip (a pipeline): this is on every press's path."""
    with conn.pipeline(), conn.cursor() as lock, conn.cursor(row_factory=dict_row) as cur:
        lock.execute("SELECT pg_try_advisory_xact_lock(%s) AS ok", (_PUBLISHER_LOCK,))
        cur.execute(
            "SELECT o.id, o.topic, o.device_id, d.shard, o.kind, o.payload, o.origin_at"
            " FROM dispatch.outbox o JOIN dispatch.devices d ON d.device_id = o.device_id"
            " WHERE o.sent_at IS NULL AND o.delivery IS NULL AND o.deadline_at > now()"
            " AND d.shard = ANY(%s) ORDER BY o.id LIMIT %s",
            (shards, limit),
        )
        row = lock.fetchone()
        leading = row["ok"] if isinstance(row, dict) else row[0]
        rows = cur.fetchall()
    return [Publishable(**r) for r in rows] if leading else None


def mark_sent(conn: psycopg.Connection, ids: list[int]) -> list[dict]:
    """The broker has these (PUBACK); the rows that moved to `sent`."""
    if not ids:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "UPDATE dispatch.outbox SET sent_at = now(),"
            " delivery = coalesce(delivery, 'sent'), delivery_at = coalesce(delivery_at, now())"
            " WHERE id = ANY(%s) AND sent_at IS NULL"
            " RETURNING id, request_id, kind, command_id, device_id, delivery, delivery_at",
            (ids,),
        ).fetchall()


def held_count(conn: psycopg.Connection) -> int:
    """Commands waiting for their device's first connection."""
    row = conn.execute(
        "SELECT count(*) FROM dispatch.outbox o WHERE o.sent_at IS NULL AND o.delivery IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM dispatch.devices d WHERE d.device_id = o.device_id)"
    ).fetchone()
    return row["count"] if isinstance(row, dict) else row[0]


def for_device(conn: psycopg.Connection, device_id: str, state: str | None = None, limit: int = 100) -> list[dict]:
    """A device's commands, newest first, with their state: `queued` until the broker took it
    (`held` while the device has never connected), then `sent`, `acknowledged` or `expired`."""
    where, params = "o.device_id = %s", [device_id]
    if state is not None:
        where += " AND coalesce(o.delivery, 'queued') = %s"
        params.append(state)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT o.command_id, o.kind AS type, coalesce(o.delivery, 'queued') AS state,"
            " (o.delivery IS NULL AND d.device_id IS NULL) AS held, o.payload, o.created_at,"
            " coalesce(o.delivery_at, o.created_at) AS updated_at, o.sent_at, o.acked_at, o.deadline_at"
            " FROM dispatch.outbox o LEFT JOIN dispatch.devices d ON d.device_id = o.device_id"
            f" WHERE {where} ORDER BY o.created_at DESC, o.id DESC LIMIT %s",
            (*params, limit),
        ).fetchall()


def acknowledge(conn: psycopg.Connection, device_id: str, command_id: str, at: datetime) -> tuple[dict | None, bool]:
    """Record the device's ack of one of its commands: (its row, whether this ack changed it); the
    row is None when the device has no such command. A late ack still counts (the device did
    show it), over `expired` too."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE dispatch.outbox SET delivery = 'acknowledged', delivery_at = now(), acked_at = %s,"
            " sent_at = coalesce(sent_at, now())"
            " WHERE command_id = %s AND device_id = %s AND delivery IS DISTINCT FROM 'acknowledged'"
            " RETURNING id, request_id, kind, command_id, device_id, payload",
            (at, command_id, device_id),
        ).fetchone()
        if row is not None:
            return row, True
        row = cur.execute(
            "SELECT id, request_id, kind, command_id, device_id, payload FROM dispatch.outbox"
            " WHERE command_id = %s AND device_id = %s",
            (command_id, device_id),
        ).fetchone()
    return row, False


def overdue(conn: psycopg.Connection, now: datetime, limit: int = 1) -> list[int]:
    """Commands past their deadline and not acknowledged, locked for expiry (one replica each)."""
    rows = conn.execute(
        "SELECT id FROM dispatch.outbox WHERE (delivery IS NULL OR delivery = 'sent') AND deadline_at <= %s"
        " ORDER BY deadline_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()
    return [r["id"] if isinstance(r, dict) else r[0] for r in rows]


def expire(conn: psycopg.Connection, outbox_id: int, now: datetime) -> dict | None:
    """Mark one overdue command expired; its row, or None when it moved on meanwhile."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "UPDATE dispatch.outbox SET delivery = 'expired', delivery_at = %s"
            " WHERE id = %s AND (delivery IS NULL OR delivery = 'sent')"
            " RETURNING id, request_id, kind, command_id, device_id, sent_at",
            (now, outbox_id),
        ).fetchone()
