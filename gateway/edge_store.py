"""SQL of the device side of the edge: status, last_seen, silence, rejections.

Data functions take a connection and do not commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from homecare.internal import DeviceState

_STATE_COLUMNS = "d.id, d.kind, d.resident_id, d.state, d.state_changed_at, d.battery, d.battery_at, d.fw, d.shard"
# The battery's 5 % band (0.30 -> 6), in SQL; _band in Python. A status is announced when it moves
# the battery to another band, so consumers follow a battery running down without a message per
# status. The small epsilon keeps 0.3 (29.999... * 100 in floating point) in its own band.
BATTERY_BAND_SQL = "(floor({} * 100 + 1e-6)::int / 5)"


def _band(battery: float | None) -> int | None:
    return None if battery is None else int(battery * 100 + 1e-6) // 5


def _states(rows: Iterable[dict]) -> list[DeviceState]:
    # Dated by the state's change, or by the battery level when that is newer: a consumer takes an
    # announcement only when it is newer than what it holds.
    return [
        DeviceState(
            device_id=r["id"], device_kind=r["kind"], resident_id=r["resident_id"],
            state=r["state"], at=max(r["state_changed_at"], r["battery_at"] or r["state_changed_at"]),
            battery=r["battery"], fw=r["fw"], shard=r["shard"],
        )
        for r in rows
    ]


# --- status and liveness ----------------------------------------------------------------------


@dataclass(frozen=True)
class StatusUpdate:
    """One status message to apply: `at` is when the gateway received it."""

    device_id: str
    online: bool
    fw: str | None
    battery: float | None
    rssi: int | None
    at: datetime


@dataclass(frozen=True)
class StatusApplied:
    """What a status did to an active device: `change` is its new state when it changed."""

    kind: str
    resident_id: str
    change: DeviceState | None
    shard: str = "main"


def record_statuses(
    conn: psycopg.Connection, updates: list[StatusUpdate], shard: str | None = None
) -> dict[str, StatusApplied]:
    """Apply status messages of distinct devices in one statement; by device id, what each did:
    a change of state, or of the battery's band, is to be announced.

    Devices that are unknown or revoked, or not on `shard` (when given: the broker the statuses
    came from), are left out of the result. Rows are locked in id order,
    so two replicas applying overlapping batches wait for each other instead of deadlocking; and
    FOR NO KEY UPDATE, so events' foreign-key checks are not held up.
    """
    if not updates:
        return {}
    ids = [u.device_id for u in updates]
    if len(set(ids)) != len(ids):
        raise ValueError("record_statuses: one status per device per statement")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "UPDATE gateway.devices d SET online = v.online,"
            " state = CASE WHEN v.online THEN 'online' ELSE 'offline' END,"
            " state_changed_at = CASE WHEN p.state = CASE WHEN v.online THEN 'online' ELSE 'offline' END"
            "   THEN d.state_changed_at ELSE now() END,"
            " fw = coalesce(v.fw, d.fw), battery = coalesce(v.battery, d.battery),"
            " battery_at = CASE WHEN v.battery IS NULL THEN d.battery_at ELSE greatest(d.battery_at, v.at) END,"
            " rssi = coalesce(v.rssi, d.rssi),"
            # the last will is the broker speaking for a device that is gone: not a sighting
            " last_seen = CASE WHEN v.online THEN greatest(d.last_seen, v.at) ELSE d.last_seen END"
            " FROM unnest(%s::text[], %s::boolean[], %s::text[], %s::float8[], %s::integer[],"
            "             %s::timestamptz[]) AS v(id, online, fw, battery, rssi, at)"
            " JOIN (SELECT id, state, battery FROM gateway.devices"
            "       WHERE id = ANY(%s::text[]) AND revoked_at IS NULL AND (%s::text IS NULL OR shard = %s)"
            "       ORDER BY id FOR NO KEY UPDATE) p"
            "   ON p.id = v.id"
            f" WHERE d.id = v.id RETURNING {_STATE_COLUMNS}, p.state AS was, p.battery AS was_battery,"
            " d.announced_battery",
            (
                ids, [u.online for u in updates], [u.fw for u in updates],
                [u.battery for u in updates], [u.rssi for u in updates], [u.at for u in updates],
                ids, shard, shard,
            ),
        ).fetchall()
    applied = {}
    for row in rows:
        # An announcement owed from before (a crash before the PUBACK) is left to the sweep.
        moved = _band(row["battery"]) not in (_band(row["was_battery"]), _band(row["announced_battery"]))
        change = _states([row])[0] if row["state"] != row["was"] or moved else None
        applied[row["id"]] = StatusApplied(row["kind"], row["resident_id"], change, row["shard"])
    return applied


def touch(conn: psycopg.Connection, seen: dict[str, datetime]) -> list[DeviceState]:
    """Stamp last_seen of many devices; returns those that came back to life (silent or never
    seen before, and heard from after that state began)."""
    if not seen:
        return []
    # In id order, as status batches lock them: two writers of many rows then never deadlock.
    ids = sorted(seen)
    stamps = [seen[i] for i in ids]
    with conn.cursor(row_factory=dict_row) as cur:
        revived = cur.execute(
            "UPDATE gateway.devices d SET state = 'online', online = true, state_changed_at = now()"
            " FROM unnest(%s::text[], %s::timestamptz[]) AS v(id, ts)"
            " WHERE d.id = v.id AND d.revoked_at IS NULL AND d.state IN ('silent', 'never_seen')"
            f" AND v.ts > d.state_changed_at RETURNING {_STATE_COLUMNS}",
            (ids, stamps),
        ).fetchall()
        cur.execute(
            "UPDATE gateway.devices d SET last_seen = greatest(d.last_seen, v.ts)"
            " FROM unnest(%s::text[], %s::timestamptz[]) AS v(id, ts) WHERE d.id = v.id",
            (ids, stamps),
        )
    return _states(revived)


def mark_silent(
    conn: psycopg.Connection, intervals: int, min_s: int, heard: Sequence[str] = (),
    shard: str | None = None,
) -> list[DeviceState]:
    """Beds online but unheard for `intervals` report intervals (at least min_s) become silent;
    except the `heard` ones, whose messages the gateway has received but not yet written. Only
    those of `shard` when given: a gateway judges the devices of the broker it bridges."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "UPDATE gateway.devices d SET state = 'silent', state_changed_at = now()"
            " WHERE d.state = 'online' AND d.kind = 'bed' AND d.revoked_at IS NULL"
            " AND coalesce(d.last_seen, d.state_changed_at)"
            "   < now() - make_interval(secs => greatest(d.report_interval_s * %s, %s))"
            " AND NOT d.id = ANY(%s::text[]) AND (%s::text IS NULL OR d.shard = %s)"
            f" RETURNING {_STATE_COLUMNS}",
            (intervals, min_s, list(heard), shard, shard),
        ).fetchall()
    return _states(rows)


def unannounced_states(
    conn: psycopg.Connection, older_than_s: int, limit: int = 500, shard: str | None = None
) -> list[DeviceState]:
    """State changes, and battery bands, whose announcement was not confirmed within older_than_s
    (of `shard`'s devices only, when given)."""
    band, announced = BATTERY_BAND_SQL.format("d.battery"), BATTERY_BAND_SQL.format("d.announced_battery")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(  # one SELECT per partial index (devices_unannounced, devices_battery_unannounced)
            f"(SELECT {_STATE_COLUMNS}, d.state_changed_at AS owed_since FROM gateway.devices d"
            " WHERE d.state <> 'never_seen' AND d.state IS DISTINCT FROM d.announced_state"
            " AND d.state_changed_at < now() - make_interval(secs => %(s)s)"
            " AND (%(shard)s::text IS NULL OR d.shard = %(shard)s) ORDER BY d.state_changed_at LIMIT %(n)s)"
            f" UNION (SELECT {_STATE_COLUMNS}, d.battery_at AS owed_since FROM gateway.devices d"
            f" WHERE d.state <> 'never_seen' AND d.battery IS NOT NULL AND {band} IS DISTINCT FROM {announced}"
            " AND d.battery_at < now() - make_interval(secs => %(s)s)"
            " AND (%(shard)s::text IS NULL OR d.shard = %(shard)s) ORDER BY d.battery_at LIMIT %(n)s)"
            " ORDER BY owed_since LIMIT %(n)s",
            {"s": older_than_s, "shard": shard, "n": limit},
        ).fetchall()
    return _states(rows)


def mark_announced(conn: psycopg.Connection, announced: list[tuple[str, str, float | None]]) -> None:
    """Record (device_id, state, battery) as published; a state changed since stays owed, and so
    does a battery that moved to another band since."""
    if not announced:
        return
    conn.execute(
        "UPDATE gateway.devices d SET announced_state = v.state,"
        " announced_battery = coalesce(v.battery, d.announced_battery)"
        " FROM unnest(%s::text[], %s::text[], %s::float8[]) AS v(id, state, battery)"
        " WHERE d.id = v.id AND d.state = v.state",
        ([a[0] for a in announced], [a[1] for a in announced], [a[2] for a in announced]),
    )


def recently_revoked(conn: psycopg.Connection, within_s: int) -> list[str]:
    """Ids of devices revoked in the last within_s seconds (by any process)."""
    rows = conn.execute(
        "SELECT id FROM gateway.devices WHERE revoked_at > now() - make_interval(secs => %s)",
        (within_s,),
    ).fetchall()
    return [r["id"] if isinstance(r, dict) else r[0] for r in rows]


# --- rejections -------------------------------------------------------------------------------


def add_rejections(
    conn: psycopg.Connection, counts: dict[tuple[str, str], tuple[int, str, datetime]]
) -> None:
    """Add (device_id, code) -> (count, last reason, last time) to the per-device tallies."""
    if not counts:
        return
    keys = list(counts)
    conn.execute(
        "INSERT INTO gateway.rejections AS r (device_id, code, count, last_reason, last_at)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::timestamptz[])"
        " ON CONFLICT (device_id, code) DO UPDATE SET count = r.count + EXCLUDED.count,"
        " last_reason = EXCLUDED.last_reason, last_at = greatest(r.last_at, EXCLUDED.last_at)",
        (
            [k[0] for k in keys], [k[1] for k in keys], [counts[k][0] for k in keys],
            [counts[k][1] for k in keys], [counts[k][2] for k in keys],
        ),
    )
