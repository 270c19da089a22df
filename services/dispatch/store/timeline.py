"""Request timelines; every appended entry tells live consoles that the request changed."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ..domain.requests import TimelineEntry

CHANGED_CHANNEL = "dispatch_request_changed"


def notify_changed(conn: psycopg.Connection, request_id: str) -> None:
    """NOTIFY the console; delivered at commit, dropped on rollback, de-duplicated per transaction."""
    conn.execute("SELECT pg_notify(%s, %s)", (CHANGED_CHANNEL, request_id))


_APPEND = (  # one statement: the row and the NOTIFY
    "WITH added AS (INSERT INTO dispatch.timeline (request_id, at, actor, kind, detail)"
    " VALUES (%s, %s, %s, %s, %s) RETURNING request_id) SELECT pg_notify(%s, request_id) FROM added"
)


def append(conn: psycopg.Connection, request_id: str, entry: TimelineEntry) -> None:
    """Record one line of a request's history."""
    append_many(conn, [(request_id, entry)])


def append_many(conn: psycopg.Connection, entries: list[tuple[str, TimelineEntry]]) -> None:
    """Record lines of requests' histories, (request id, entry) each, in one round trip (psycopg
    pipelines an executemany)."""
    params = [(rid, e.at, e.actor, e.kind, Jsonb(e.detail), CHANGED_CHANNEL) for rid, e in entries]
    if len(params) == 1:
        conn.execute(_APPEND, params[0])
    elif params:
        with conn.cursor() as cur:
            cur.executemany(_APPEND, params)


def entries(conn: psycopg.Connection, request_id: str) -> list[dict]:
    """A request's history, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT at, actor, kind, detail FROM dispatch.timeline WHERE request_id = %s ORDER BY id",
            (request_id,),
        ).fetchall()
