"""Planned shifts. The timer applies their starts and ends to the providers' on_shift switch."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from . import new_id


def add(conn: psycopg.Connection, provider_id: str, starts_at: datetime, ends_at: datetime) -> dict:
    """Plan a shift; returns its row."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "INSERT INTO dispatch.shifts (id, provider_id, starts_at, ends_at) VALUES (%s, %s, %s, %s) RETURNING *",
            (new_id("s"), provider_id, starts_at, ends_at),
        ).fetchone()


def of_provider(conn: psycopg.Connection, provider_id: str, since: datetime | None = None) -> list[dict]:
    """A provider's shifts ending after `since` (all when None), earliest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM dispatch.shifts WHERE provider_id = %s AND (%s::timestamptz IS NULL OR ends_at > %s)"
            " ORDER BY starts_at, id",
            (provider_id, since, since),
        ).fetchall()


def to_start(conn: psycopg.Connection, now: datetime, limit: int = 50) -> list[dict]:
    """Shifts that have begun and whose start was not applied yet, locked; others' are skipped."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM dispatch.shifts WHERE started_at IS NULL AND starts_at <= %s AND ends_at > %s"
            " ORDER BY starts_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, now, limit),
        ).fetchall()


def to_end(conn: psycopg.Connection, now: datetime, limit: int = 50) -> list[dict]:
    """Shifts that are over and whose end was not applied yet, locked; others' are skipped."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM dispatch.shifts WHERE ended_at IS NULL AND ends_at <= %s"
            " ORDER BY ends_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        ).fetchall()


def mark(conn: psycopg.Connection, shift_id: str, column: str, at: datetime) -> None:
    """Record that a shift's start or end was applied."""
    if column not in ("started_at", "ended_at"):
        raise ValueError(column)
    conn.execute(f"UPDATE dispatch.shifts SET {column} = %s WHERE id = %s", (at, shift_id))


def covering(conn: psycopg.Connection, provider_id: str, now: datetime, other_than: str) -> bool:
    """Whether another of the provider's shifts covers `now` (back-to-back shifts)."""
    row = conn.execute(
        "SELECT 1 FROM dispatch.shifts WHERE provider_id = %s AND id <> %s AND starts_at <= %s AND ends_at > %s"
        " LIMIT 1",
        (provider_id, other_than, now, now),
    ).fetchone()
    return row is not None


def overlapping(conn: psycopg.Connection, start: datetime, end: datetime) -> list[dict]:
    """Every provider's shifts that overlap [start, end), by provider and start (the day planner's
    workers)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM dispatch.shifts WHERE starts_at < %s AND ends_at > %s ORDER BY provider_id, starts_at, id",
            (end, start),
        ).fetchall()
