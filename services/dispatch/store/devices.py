"""What dispatch knows of devices' connections, from the device states in the log: the broker
shard each uses (where its commands are published) and whether it ever connected (a device that
never did has no session to keep a command in)."""

from __future__ import annotations

from datetime import datetime

import psycopg


def record_state(conn: psycopg.Connection, device_id: str, shard: str, state: str, at: datetime) -> bool:
    """Record a device's liveness transition; True when it is the first dispatch has seen of it.

    A state older than the one recorded changes nothing (the log may hand over a redelivery late),
    but the shard always follows the newest state.
    """
    row = conn.execute(
        "INSERT INTO dispatch.devices AS d (device_id, shard, state, first_seen_at, state_at)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET shard = excluded.shard, state = excluded.state,"
        " state_at = excluded.state_at, first_seen_at = least(d.first_seen_at, excluded.first_seen_at)"
        " WHERE d.state_at <= excluded.state_at"
        " RETURNING (xmax = 0) AS inserted",
        (device_id, shard, state, at, at),
    ).fetchone()
    if row is None:
        return False
    return bool(row["inserted"] if isinstance(row, dict) else row[0])


def shard_of(conn: psycopg.Connection, device_id: str) -> str | None:
    """The broker shard the device was last seen on; None when it never connected."""
    row = conn.execute("SELECT shard FROM dispatch.devices WHERE device_id = %s", (device_id,)).fetchone()
    if row is None:
        return None
    return row["shard"] if isinstance(row, dict) else row[0]
