"""Device events already handled, so a redelivered event has no second effect."""

from __future__ import annotations

import psycopg


def first_time(conn: psycopg.Connection, device_id: str, event_id: str) -> bool:
    """Record (device, event_id); False when it was recorded before (a redelivery)."""
    cur = conn.execute(
        "INSERT INTO dispatch.processed_events (device_id, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (device_id, event_id),
    )
    return cur.rowcount == 1
