"""Reading bed samples: vitals for charts, the latest state of beds, counts.

Data functions: they take a connection and do not commit. Buckets are aligned to UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import psycopg
from psycopg.rows import dict_row

from homecare.errors import Invalid, NotFound

RESOLUTIONS = ("raw", "1m", "1h", "auto")
BUCKETS = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1)}
# Beds sample at most once a second (mqtt-v1 sample_interval_s >= 1).
MIN_SAMPLE_INTERVAL = timedelta(seconds=1)
DEFAULT_MAX_POINTS = 5000

_RAW = """
SELECT ts, occupied, heart_rate, respiration_rate, movement
FROM telemetry.bed_samples
WHERE device_id = %(device_id)s AND ts >= %(start)s AND ts < %(end)s
ORDER BY ts
LIMIT %(limit)s
"""

# movement is a real: read as is, it comes back as the value that was stored (0.1, not
# 0.10000000149011612 as a cast to float8 would show).

# Rollups (plain tables kept by the service, or TimescaleDB continuous aggregates with the same
# columns) answer bucketed queries. A bucket is one row per resident of the bed in it, so rows
# are summed per bucket. Every bucket that overlaps [start, end) is returned whole.
_POINT = """
       sum(samples)::bigint AS samples,
       sum(occupied_samples)::float8 / sum(samples) AS occupancy,
       sum(heart_rate_sum)::float8 / nullif(sum(heart_rate_count), 0) AS heart_rate,
       min(heart_rate_min) AS heart_rate_min,
       max(heart_rate_max) AS heart_rate_max,
       sum(respiration_rate_sum)::float8 / nullif(sum(respiration_rate_count), 0) AS respiration_rate,
       min(respiration_rate_min) AS respiration_rate_min,
       max(respiration_rate_max) AS respiration_rate_max,
       (sum(movement_sum) / sum(samples))::float8 AS movement,
       max(movement_max) AS movement_max
"""
_BUCKETED = """
SELECT bucket AS ts,""" + _POINT + """
FROM telemetry.{table}
WHERE device_id = %(device_id)s
  AND bucket >= date_bin(%(step)s, %(start)s, TIMESTAMPTZ '2000-01-01 00:00:00+00')
  AND bucket < %(end)s
GROUP BY bucket
ORDER BY bucket
LIMIT %(limit)s
"""
_TABLES = {"1m": "vitals_1m", "1h": "vitals_1h"}

# Many beds' minutes in one statement, for a district's overview (beds_vitals): only what the
# overview draws, grouped but not ordered (each bed's 60 rows are put in order in Python: the
# statement's own sort of 6,000 rows cost more than its scan).
_BEDS_MINUTES = """
SELECT device_id, bucket AS ts,
       sum(samples)::bigint AS samples,
       sum(occupied_samples)::float8 / sum(samples) AS occupancy,
       sum(heart_rate_sum)::float8 / nullif(sum(heart_rate_count), 0) AS heart_rate,
       sum(respiration_rate_sum)::float8 / nullif(sum(respiration_rate_count), 0) AS respiration_rate
FROM telemetry.vitals_1m
WHERE device_id = ANY(%(device_ids)s)
  AND bucket >= date_bin(INTERVAL '1 minute', %(start)s, TIMESTAMPTZ '2000-01-01 00:00:00+00')
  AND bucket < %(end)s
GROUP BY device_id, bucket
"""
# A district overview covers at most this: 100 beds x 3 hours is 18,000 minute rows.
BEDS_MAX_SPAN = timedelta(hours=3)

_LATEST = """
SELECT device_id, ts, resident_id, occupied, heart_rate, respiration_rate,
       movement
FROM telemetry.latest_samples
WHERE device_id = ANY(%s)
"""


def choose_resolution(start: datetime, end: datetime, max_points: int = DEFAULT_MAX_POINTS) -> str:
    """The finest resolution whose points over [start, end) cannot exceed max_points."""
    span = end - start
    if span / MIN_SAMPLE_INTERVAL <= max_points:
        return "raw"
    for name, step in BUCKETS.items():
        if math.ceil(span / step) + 1 <= max_points:
            return name
    return "1h"


def resolve_resolution(
    start: datetime, end: datetime, resolution: str = "auto", max_points: int = DEFAULT_MAX_POINTS
) -> str:
    """The resolution a vitals query over [start, end) uses; Invalid for a bad range or name."""
    if _utc(end) <= _utc(start):
        raise Invalid("end must be after start")
    if resolution not in RESOLUTIONS:
        raise Invalid(f"resolution must be one of {', '.join(RESOLUTIONS)}")
    return choose_resolution(_utc(start), _utc(end), max_points) if resolution == "auto" else resolution


def vitals(
    conn: psycopg.Connection,
    device_id: str,
    start: datetime,
    end: datetime,
    resolution: str = "auto",
    max_points: int = DEFAULT_MAX_POINTS,
) -> list[dict[str, Any]]:
    """The points of one bed over [start, end), oldest first.

    A raw point is a sample: ts, occupied, heart_rate, respiration_rate, movement. A bucketed
    point ("1m", "1h"; read from the rollups, every bucket overlapping the range) has the
    bucket's start as ts, the averages as heart_rate,
    respiration_rate and movement (so a chart plots the same keys at every resolution), and
    samples, occupancy (fraction of samples occupied), *_min, *_max. "auto" is resolved by
    resolve_resolution. Invalid when the range is empty or would give more than max_points.
    """
    resolution = resolve_resolution(start, end, resolution, max_points)
    start, end = _utc(start), _utc(end)
    params = {"device_id": device_id, "start": start, "end": end, "limit": max_points + 1}
    if resolution == "raw":
        sql = _RAW
    else:
        sql, params["step"] = _BUCKETED.format(table=_TABLES[resolution]), BUCKETS[resolution]
    with conn.cursor(row_factory=dict_row) as cur:
        points = cur.execute(sql, params).fetchall()
    if len(points) > max_points:
        raise Invalid(
            f"more than {max_points} points at resolution {resolution}:"
            " narrow the range or choose a coarser resolution"
        )
    for point in points:
        point["ts"] = point["ts"].astimezone(UTC)
    return points


def beds_vitals(
    conn: psycopg.Connection, device_ids: list[str], start: datetime, end: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Per-minute points of many beds over [start, end), oldest first, keyed by bed; beds with
    no data in the range are absent. A point has ts, samples, occupancy, heart_rate and
    respiration_rate, as vitals' bucketed points. Invalid for an empty range or one longer than
    BEDS_MAX_SPAN."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise Invalid("end must be after start")
    if end - start > BEDS_MAX_SPAN:
        raise Invalid(f"a beds overview covers at most {BEDS_MAX_SPAN}")
    out: dict[str, list[dict[str, Any]]] = {}
    if not device_ids:
        return out
    params = {"device_ids": list(device_ids), "start": start, "end": end}
    with conn.cursor(row_factory=dict_row) as cur:
        points = cur.execute(_BEDS_MINUTES, params).fetchall()  # whole: a row at a time costs 3x
    for point in points:
        point["ts"] = point["ts"].astimezone(UTC)
        out.setdefault(point.pop("device_id"), []).append(point)
    for bed_points in out.values():
        bed_points.sort(key=itemgetter("ts"))
    return out


def latest_states(conn: psycopg.Connection, device_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The newest stored sample of each bed that has one (beds without samples are absent)."""
    if not device_ids:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_LATEST, (list(device_ids),)).fetchall()
    for row in rows:
        row["ts"] = row["ts"].astimezone(UTC)
    return {row["device_id"]: row for row in rows}


def latest_state(conn: psycopg.Connection, device_id: str) -> dict[str, Any]:
    """The newest stored sample of one bed; NotFound when it has none."""
    state = latest_states(conn, [device_id]).get(device_id)
    if state is None:
        raise NotFound(f"no samples of device {device_id}")
    return state


def count_samples(conn: psycopg.Connection, device_id: str | None = None) -> int:
    """How many samples are stored, of one bed or of all."""
    if device_id is None:
        row = conn.execute("SELECT count(*) FROM telemetry.bed_samples").fetchone()
    else:
        row = conn.execute(
            "SELECT count(*) FROM telemetry.bed_samples WHERE device_id = %s", (device_id,)
        ).fetchone()
    return int(row[0] if isinstance(row, tuple) else next(iter(row.values())))


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
