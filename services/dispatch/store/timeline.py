"""Request timelines; every appended entry tells live consoles that the request changed."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from homecare.db import notices

from ..domain.requests import TimelineEntry

CHANGED_CHANNEL = "dispatch_request_changed"


def notify_changed(conn: psycopg.Connection, request_id: str) -> None:
    """NOTIFY the console once this transaction commits; dropped on rollback, once per transaction."""
    notices.notify(conn, CHANGED_CHANNEL, request_id)


_APPEND = "INSERT INTO dispatch.timeline (request_id, at, actor, kind, detail) VALUES (%s, %s, %s, %s, %s)"


def append(conn: psycopg.Connection, request_id: str, entry: TimelineEntry) -> None:
    """Record one line of a request's history."""
    append_many(conn, [(request_id, entry)])


def append_many(conn: psycopg.Connection, entries: list[tuple[str, TimelineEntry]]) -> None:
    """Record lines of requests' histories, (request id, entry) each, in one round trip (psycopg
    pipelines an executemany)."""
    params = [(rid, e.at, e.actor, e.kind, Jsonb(e.detail)) for rid, e in entries]
    if len(params) == 1:
        conn.execute(_APPEND, params[0])
    elif params:
        with conn.cursor() as cur:
            cur.executemany(_APPEND, params)
    for request_id, _ in entries:
        notify_changed(conn, request_id)


def entries(conn: psycopg.Connection, request_id: str) -> list[dict]:
    """A request's history, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT at, actor, kind, detail FROM dispatch.timeline WHERE request_id = %s ORDER BY id",
            (request_id,),
        ).fetchall()
