"""What dispatch knows of devices' connections, from the device states in the log: the broker
shard each uses (where its commands are published) and whether it ever connected (a device that
never did has no session to keep a command in)."""

from __future__ import annotations

from datetime import datetime

import psycopg


def record_states(conn: psycopg.Connection, states: list[tuple[str, str, str, datetime]]) -> set[str]:
    """Record devices' liveness transitions, (device_id, shard, state, at) each, in one statement;
    returns the devices dispatch sees for the first time.

    Of one device's states the newest wins, and one older than the state recorded changes nothing
    (the log may hand over a redelivery late); the shard always follows the newest state."""
    newest: dict[str, tuple[str, str, str, datetime]] = {}
    first: dict[str, datetime] = {}
    for state in states:
        device_id, at = state[0], state[3]
        if device_id not in newest or newest[device_id][3] <= at:
            newest[device_id] = state
        first[device_id] = min(first.get(device_id, at), at)
    if not newest:
        return set()
    rows = sorted(newest.values())  # rows locked in one order: two replicas' batches never deadlock
    found = conn.execute(
        "INSERT INTO dispatch.devices AS d (device_id, shard, state, first_seen_at, state_at)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[])"
        " ON CONFLICT (device_id) DO UPDATE SET shard = excluded.shard, state = excluded.state,"
        " state_at = excluded.state_at, first_seen_at = least(d.first_seen_at, excluded.first_seen_at)"
        " WHERE d.state_at <= excluded.state_at"
        " RETURNING device_id, (xmax = 0) AS inserted",
        ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [first[r[0]] for r in rows],
         [r[3] for r in rows]),
    ).fetchall()
    return {(r["device_id"] if isinstance(r, dict) else r[0]) for r in found
            if (r["inserted"] if isinstance(r, dict) else r[1])}


def shard_of(conn: psycopg.Connection, device_id: str) -> str | None:
    """The broker shard the device was last seen on; None when it never connected."""
    row = conn.execute("SELECT shard FROM dispatch.devices WHERE device_id = %s", (device_id,)).fetchone()
    if row is None:
        return None
    return row["shard"] if isinstance(row, dict) else row[0]
