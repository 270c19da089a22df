"""The command outbox: written with the change that causes a command, published afterwards."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

OUTBOX_CHANNEL = "dispatch_outbox"
# One publisher at a time across replicas keeps commands in order.
_PUBLISHER_LOCK = 0x64697370  # "disp"


def put(
    conn: psycopg.Connection, topic: str, payload: dict, *, kind: str, request_id: str | None = None,
    origin_at: datetime | None = None, command_id: str | None = None,
) -> int:
    """Queue one message; the publisher is woken when the transaction commits."""
    row = conn.execute(  # one round trip: the row and the NOTIFY
        "WITH added AS (INSERT INTO dispatch.outbox (topic, request_id, kind, payload, origin_at, command_id)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id) SELECT id, pg_notify(%s, '') FROM added",
        (topic, request_id, kind, Jsonb(payload), origin_at, command_id, OUTBOX_CHANNEL),
    ).fetchone()
    return row["id"] if isinstance(row, dict) else row[0]


def lead(conn: psycopg.Connection) -> bool:
    """Take the publisher's lock for this transaction; False when another replica holds it."""
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS ok", (_PUBLISHER_LOCK,)).fetchone()
    return bool(row["ok"] if isinstance(row, dict) else row[0])


def unsent(conn: psycopg.Connection, limit: int = 100) -> list[dict]:
    """The oldest unsent messages, in the order they were written."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, topic, request_id, kind, payload, origin_at FROM dispatch.outbox"
            " WHERE sent_at IS NULL ORDER BY id LIMIT %s",
            (limit,),
        ).fetchall()


def mark_sent(conn: psycopg.Connection, ids: list[int]) -> None:
    """The broker has these."""
    if ids:
        conn.execute("UPDATE dispatch.outbox SET sent_at = now() WHERE id = ANY(%s)", (ids,))


def for_request(conn: psycopg.Connection, request_id: str) -> list[dict]:
    """Every message a request caused, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, kind, command_id, payload, created_at, sent_at, delivery, delivery_at FROM dispatch.outbox"
            " WHERE request_id = %s ORDER BY id",
            (request_id,),
        ).fetchall()


# A later state never goes back to an earlier one; acknowledged and expired are both final.
_DELIVERY_RANK = "CASE {} WHEN 'sent' THEN 1 WHEN 'acknowledged' THEN 2 WHEN 'expired' THEN 2 ELSE 0 END"


def record_delivery(conn: psycopg.Connection, command_id: str, state: str, at: datetime) -> dict | None:
    """Move a command's delivery forward; its outbox row, or None when unknown or not a step forward."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "UPDATE dispatch.outbox SET delivery = %s, delivery_at = %s WHERE command_id = %s"
            f" AND {_DELIVERY_RANK.format('delivery')} < {_DELIVERY_RANK.format('%s::text')}"
            " RETURNING id, request_id, kind, payload",
            (state, at, command_id, state),
        ).fetchone()
