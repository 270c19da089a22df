"""Rollups kept by the service on plain PostgreSQL, and the touched minutes that drive them.

`lease_touched` moves markers written by ingest into claims (the caller commits at once, so
writers never wait for what follows); `recompute` rebuilds those minute buckets from the raw
rows and their hours from the minutes, so late and repeated data always end up in rollups equal
to aggregates of the raw rows; `release` deletes the claims with the recompute. The caller
holds the analysis lock (one writer of the rollups at a time) and owns the transactions.
`claim_touched` does the taking in the caller's one transaction instead (tools and tests that
recompute alone). On TimescaleDB continuous aggregates do the recompute; the markers still tell
the sample rules what is new.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import tuple_row

from services.telemetry.store.samples import ORIGIN, text_array, time_array

MINUTE = timedelta(minutes=1)

_CLAIM = """
DELETE FROM telemetry.touched_minutes t
USING (
    SELECT device_id, minute FROM telemetry.touched_minutes
    ORDER BY marked_at LIMIT %s FOR UPDATE SKIP LOCKED
) c
WHERE t.device_id = c.device_id AND t.minute = c.minute
RETURNING t.device_id, t.minute
"""

# Markers a writer holds (its transaction is open) are skipped: they are taken once it commits.
_TAKE = f"""
WITH taken AS ({_CLAIM}), claimed AS (
    INSERT INTO telemetry.touched_claims (device_id, minute)
    SELECT device_id, minute FROM taken ON CONFLICT DO NOTHING
)
SELECT device_id, minute FROM taken
"""

_LEFTOVER = """
SELECT device_id, minute FROM telemetry.touched_claims ORDER BY claimed_at, device_id, minute LIMIT %s
"""

# The (device_id, minute) pairs of `touched_params`, as a table `t`.
TOUCHED = "unnest(%(devices)s::text[], %(minutes)s::timestamptz[]) AS t(device_id, minute)"


# Each bed's runs of consecutive touched minutes as [lo, hi) windows (`windows_params`), as a
# table `w`: one index range scan per run instead of one per minute (a scan of each partition,
# pruned at run time, per minute cost twice the aggregate itself).
WINDOWS = "unnest(%(w_devices)s::text[], %(w_from)s::timestamptz[], %(w_to)s::timestamptz[]) AS w(device_id, lo, hi)"

# A bucket's rows are replaced, not deleted first: the raw rows of a minute that can still be
# touched are never deleted (retention drops whole days), so the (bucket, resident) rows of a
# recompute include all the earlier ones. (Deleting joined the touched minutes with the whole
# rollup table, sorted, on every pass.)
_REPLACE = """
ON CONFLICT (device_id, bucket, resident_id) DO UPDATE SET
    samples = EXCLUDED.samples, occupied_samples = EXCLUDED.occupied_samples,
    heart_rate_count = EXCLUDED.heart_rate_count, heart_rate_sum = EXCLUDED.heart_rate_sum,
    heart_rate_min = EXCLUDED.heart_rate_min, heart_rate_max = EXCLUDED.heart_rate_max,
    respiration_rate_count = EXCLUDED.respiration_rate_count, respiration_rate_sum = EXCLUDED.respiration_rate_sum,
    respiration_rate_min = EXCLUDED.respiration_rate_min, respiration_rate_max = EXCLUDED.respiration_rate_max,
    movement_sum = EXCLUDED.movement_sum, movement_max = EXCLUDED.movement_max
"""

_UPSERT_1M = f"""
INSERT INTO telemetry.vitals_1m
SELECT w.device_id, a.bucket, a.resident_id, a.samples, a.occupied_samples,
       a.heart_rate_count, a.heart_rate_sum, a.heart_rate_min, a.heart_rate_max,
       a.respiration_rate_count, a.respiration_rate_sum, a.respiration_rate_min, a.respiration_rate_max,
       a.movement_sum, a.movement_max
FROM {WINDOWS}, LATERAL (
    SELECT date_bin('1 minute', s.ts, {ORIGIN}) AS bucket, s.resident_id,
           count(*) AS samples, count(*) FILTER (WHERE s.occupied) AS occupied_samples,
           count(s.heart_rate) AS heart_rate_count, sum(s.heart_rate) AS heart_rate_sum,
           min(s.heart_rate) AS heart_rate_min, max(s.heart_rate) AS heart_rate_max,
           count(s.respiration_rate) AS respiration_rate_count, sum(s.respiration_rate) AS respiration_rate_sum,
           min(s.respiration_rate) AS respiration_rate_min, max(s.respiration_rate) AS respiration_rate_max,
           sum(s.movement::numeric) AS movement_sum, max(s.movement) AS movement_max
    FROM telemetry.bed_samples s
    WHERE s.device_id = w.device_id AND s.ts >= w.lo AND s.ts < w.hi
    GROUP BY 1, 2
) a
{_REPLACE}"""

_HOURS = f"""
SELECT DISTINCT t.device_id, date_bin('1 hour', t.minute, {ORIGIN}) AS hour FROM {TOUCHED}
"""


# LATERAL: an index range scan of the hour's minutes per touched hour, whatever the planner
# estimates of vitals_1m (a fresh table's estimate made it scan the whole table every pass).
_UPSERT_1H = f"""
INSERT INTO telemetry.vitals_1h
SELECT h.device_id, h.hour, a.resident_id, a.samples, a.occupied_samples,
       a.heart_rate_count, a.heart_rate_sum, a.heart_rate_min, a.heart_rate_max,
       a.respiration_rate_count, a.respiration_rate_sum, a.respiration_rate_min, a.respiration_rate_max,
       a.movement_sum, a.movement_max
FROM ({_HOURS}) h, LATERAL (
    SELECT m.resident_id, sum(m.samples) AS samples, sum(m.occupied_samples) AS occupied_samples,
           sum(m.heart_rate_count) AS heart_rate_count, sum(m.heart_rate_sum) AS heart_rate_sum,
           min(m.heart_rate_min) AS heart_rate_min, max(m.heart_rate_max) AS heart_rate_max,
           sum(m.respiration_rate_count) AS respiration_rate_count,
           sum(m.respiration_rate_sum) AS respiration_rate_sum,
           min(m.respiration_rate_min) AS respiration_rate_min, max(m.respiration_rate_max) AS respiration_rate_max,
           sum(m.movement_sum) AS movement_sum, max(m.movement_max) AS movement_max
    FROM telemetry.vitals_1m m
    WHERE m.device_id = h.device_id AND m.bucket >= h.hour AND m.bucket < h.hour + INTERVAL '1 hour'
    GROUP BY m.resident_id
) a
{_REPLACE}"""


@dataclass(frozen=True)
class Touched:
    """The minutes of one bed that got new samples: the first and the last of them."""

    device_id: str
    first: datetime
    last: datetime
    minutes: tuple[datetime, ...]


def claim_touched(conn: psycopg.Connection, limit: int) -> list[Touched]:
    """Take up to `limit` touched-minute markers (skipping ones a writer holds), per bed, in the
    caller's transaction: writers marking the same minutes wait until it ends."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(_CLAIM, (limit,)).fetchall()
    return group(rows)


def lease_touched(conn: psycopg.Connection, limit: int) -> list[Touched]:
    """Claims left by a failed pass, else up to `limit` markers moved into claims, per bed; the
    caller commits before working on them and calls `release` when done."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(_LEFTOVER, (limit,)).fetchall() or cur.execute(_TAKE, (limit,)).fetchall()
    return group(rows)


def release(conn: psycopg.Connection, touched: list[Touched]) -> None:
    """Delete the claims of minutes whose rollups and rules are done (in that transaction)."""
    conn.execute(
        f"DELETE FROM telemetry.touched_claims c USING {TOUCHED}"
        " WHERE c.device_id = t.device_id AND c.minute = t.minute",
        touched_params(touched),
    )


def touched_params(touched: list[Touched]) -> dict[str, str]:
    """Every touched (bed, minute) pair, as the `devices` and `minutes` arrays of `TOUCHED`."""
    return {
        "devices": text_array([t.device_id for t in touched for _ in t.minutes]),
        "minutes": time_array([minute for t in touched for minute in t.minutes]),
    }


def windows_params(touched: list[Touched]) -> dict[str, str]:
    """Each bed's runs of consecutive touched minutes as [from, to) windows: the arrays of
    `WINDOWS`."""
    devices: list[str] = []
    starts: list[datetime] = []
    ends: list[datetime] = []
    for t in touched:
        start = previous = t.minutes[0]
        for minute in (*t.minutes[1:], None):
            if minute is None or minute - previous != MINUTE:
                devices.append(t.device_id)
                starts.append(start)
                ends.append(previous + MINUTE)
                start = minute
            previous = minute
    return {"w_devices": text_array(devices), "w_from": time_array(starts), "w_to": time_array(ends)}


def group(rows: list[tuple[str, datetime]]) -> list[Touched]:
    """(device_id, minute) pairs as one Touched per bed, by bed id."""
    by_device: dict[str, list[datetime]] = defaultdict(list)
    for device_id, minute in rows:
        by_device[device_id].append(minute)
    return [
        Touched(device_id, min(minutes), max(minutes), tuple(sorted(set(minutes))))
        for device_id, minutes in sorted(by_device.items())
    ]


def recompute(conn: psycopg.Connection, touched: list[Touched]) -> int:
    """Rebuild the 1m buckets of the touched minutes from raw rows and their 1h buckets from the
    1m rows (plain PostgreSQL); how many minute buckets were rebuilt."""
    minutes = sum(len(t.minutes) for t in touched)
    if not minutes:
        return 0
    with conn.cursor() as cur:
        cur.execute(_UPSERT_1M, windows_params(touched))
        cur.execute(_UPSERT_1H, touched_params(touched))
    return minutes


def prune(conn: psycopg.Connection, table: str, before: datetime) -> int:
    """Delete rollup rows older than `before` from vitals_1m or vitals_1h (plain); how many."""
    if table not in ("vitals_1m", "vitals_1h"):
        raise ValueError(f"not a rollup table: {table}")
    cur = conn.execute(f"DELETE FROM telemetry.{table} WHERE bucket < %s", (before,))
    return cur.rowcount
