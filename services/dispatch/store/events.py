"""Device events already handled, so a redelivered event has no second effect; long presses
handled before the press they cancel; and each button key's current run of presses (a stuck
button, homecare/buttons.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from homecare.buttons import PressRun

from ..domain.presses import ButtonRun


def first_time(conn: psycopg.Connection, device_id: str, event_id: str) -> bool:
    """Record (device, event_id); False when it was recorded before (a redelivery)."""
    cur = conn.execute(
        "INSERT INTO dispatch.processed_events (device_id, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (device_id, event_id),
    )
    return cur.rowcount == 1


def serialize(conn: psycopg.Connection, resident_id: str, service: str) -> None:
    """Until this transaction ends, no other handles a press or a cancel of this resident and
    service: the one that comes second sees what the first did."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"press:{resident_id}:{service}",))


def hold_cancel(conn: psycopg.Connection, device_id: str, event_id: str, service: str, ts: datetime) -> None:
    """A cancel that found nothing to cancel: kept for a press of that service made before it."""
    conn.execute("DELETE FROM dispatch.held_cancels WHERE held_at < now() - interval '1 day'")
    conn.execute(
        "INSERT INTO dispatch.held_cancels (device_id, event_id, service, ts) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (device_id, event_id, service, ts),
    )


def take_cancel(
    conn: psycopg.Connection, device_id: str, service: str, pressed_at: datetime, within: timedelta,
) -> str | None:
    """The event id of a held cancel of this press (same button and service, made after the press
    and within `within` of it), removed; None when there is none."""
    row = conn.execute(
        "DELETE FROM dispatch.held_cancels WHERE (device_id, event_id) = ("
        " SELECT device_id, event_id FROM dispatch.held_cancels WHERE device_id = %s AND service = %s"
        " AND ts >= %s AND ts <= %s ORDER BY ts LIMIT 1) RETURNING event_id",
        (device_id, service, pressed_at, pressed_at + within),
    ).fetchone()
    if row is None:
        return None
    return row["event_id"] if isinstance(row, dict) else row[0]


def press_run(conn: psycopg.Connection, device_id: str, service: str) -> ButtonRun | None:
    """The current run of presses of a button key, locked for update; None before its first."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT started_at, last_at, presses, stuck_since, request_id, raised FROM dispatch.press_runs"
            " WHERE device_id = %s AND service = %s FOR UPDATE",
            (device_id, service),
        ).fetchone()
    if row is None:
        return None
    run = PressRun(row["started_at"], row["last_at"], row["presses"], row["stuck_since"])
    return ButtonRun(run, row["request_id"], row["raised"])


def save_press_run(conn: psycopg.Connection, device_id: str, service: str, value: ButtonRun) -> None:
    run = value.run
    conn.execute(
        "INSERT INTO dispatch.press_runs (device_id, service, started_at, last_at, presses, stuck_since, request_id,"
        " raised) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (device_id, service) DO UPDATE SET"
        " started_at = EXCLUDED.started_at, last_at = EXCLUDED.last_at, presses = EXCLUDED.presses,"
        " stuck_since = EXCLUDED.stuck_since, request_id = EXCLUDED.request_id, raised = EXCLUDED.raised,"
        " updated_at = now()",
        (device_id, service, run.started, run.last, run.presses, run.stuck_since, value.request_id, value.raised),
    )
