"""Writing bed samples: COPY, each (device, ts) stored once, minutes marked, latest kept.

Data functions: they take a connection and do not commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import psycopg
from psycopg.rows import tuple_row

from services.telemetry.domain.samples import COLUMNS, Parsed, SampleRow, from_rows

_BOOL_TEXT = {True: "t", False: "f"}

_COLS = ", ".join(COLUMNS)
# Buckets are aligned on this origin (UTC), as date_bin and the rollups use it.
ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
_STAGING = "telemetry_staging"

_CREATE_STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (
    ts timestamptz NOT NULL, device_id text NOT NULL, resident_id text NOT NULL,
    occupied boolean NOT NULL, heart_rate smallint, respiration_rate smallint, movement real NOT NULL
) ON COMMIT DELETE ROWS
"""

# Markers are written in key order, so that writers lock them in the same order. An existing
# marker is locked, not rewritten (`WHERE false` still locks it): a claim skips a marker a writer
# holds, so samples committed after a claim always leave a marker behind, at no new row version.
_MARK = """
INSERT INTO telemetry.touched_minutes AS t (device_id, minute)
SELECT DISTINCT device_id, minute FROM {source} ORDER BY 1, 2
ON CONFLICT (device_id, minute) DO UPDATE SET marked_at = t.marked_at WHERE false
"""

# Ordered by device so that writers lock the rows in the same order.
_LATEST = f"""
INSERT INTO telemetry.latest_samples AS l ({_COLS})
SELECT DISTINCT ON (device_id) {_COLS} FROM {{source}} ORDER BY device_id, ts DESC
ON CONFLICT (device_id) DO UPDATE SET
    ts = EXCLUDED.ts, resident_id = EXCLUDED.resident_id, occupied = EXCLUDED.occupied,
    heart_rate = EXCLUDED.heart_rate, respiration_rate = EXCLUDED.respiration_rate,
    movement = EXCLUDED.movement, updated_at = now()
WHERE EXCLUDED.ts > l.ts
"""

# Common case: every sample is new, so they are COPied straight into the table (as fast as a
# plain COPY); the markers and the newest samples come as arrays, in the same round trip.
_MARKED = "unnest(%(m_devices)s::text[], %(m_minutes)s::timestamptz[]) AS m(device_id, minute)"
_NEWEST = (
    "unnest(%(ts)s::timestamptz[], %(devices)s::text[], %(residents)s::text[], %(occupied)s::bool[],"
    " %(hr)s::int2[], %(rr)s::int2[], %(movement)s::real[]) AS n(" + _COLS + ")"
)
_AFTER_COPY = f"""
WITH marked AS ({_MARK.format(source=_MARKED)}), latest AS ({_LATEST.format(source=_NEWEST)})
SELECT 1
"""

# A sample stored before (a redelivery): through a staging table, each (device, ts) inserted
# once, and only new samples mark their minute.
_INSERT_NEW = f"""
WITH new AS (
    INSERT INTO telemetry.bed_samples ({_COLS})
    SELECT {_COLS} FROM {_STAGING}
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING device_id, date_bin('1 minute', ts, {ORIGIN}) AS minute
), marked AS ({_MARK.format(source="new")})
SELECT count(*) FROM new
"""
_UPSERT_LATEST = _LATEST.format(source=_STAGING)


@dataclass(frozen=True)
class WriteResult:
    """How many samples a write received, and how many of them were new."""

    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def write_samples(conn: psycopg.Connection, rows: Sequence[SampleRow]) -> WriteResult:
    """Store samples once each by (device_id, ts), mark their minutes as touched, and keep each
    bed's latest sample current."""
    return write_parsed(conn, from_rows(list(rows)))


def write_parsed(conn: psycopg.Connection, parsed: Parsed) -> WriteResult:
    """`write_samples` for samples parsed for COPY (`samples.parse_for_copy`)."""
    if not parsed.lines:
        return WriteResult(0, 0)
    # A savepoint (not conn.transaction(), which would commit when no transaction is open yet):
    # a sample stored before undoes only this attempt.
    conn.execute("SAVEPOINT telemetry_copy")
    try:
        _copy(conn, "telemetry.bed_samples", parsed.lines)
        conn.execute(_AFTER_COPY, _arrays(parsed))
    except psycopg.errors.UniqueViolation:
        conn.execute("ROLLBACK TO SAVEPOINT telemetry_copy")
    else:
        conn.execute("RELEASE SAVEPOINT telemetry_copy")
        return WriteResult(len(parsed), len(parsed))
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(_CREATE_STAGING)
        cur.execute(f"DELETE FROM {_STAGING}")  # rows of an earlier write in this transaction
        _copy(conn, _STAGING, parsed.lines)
        stored = cur.execute(_INSERT_NEW).fetchone()[0]
        cur.execute(_UPSERT_LATEST)
    return WriteResult(len(parsed), stored)


def _copy(conn: psycopg.Connection, table: str, lines: list[str]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({_COLS}) FROM STDIN") as copy:
        for i in range(0, len(lines), 2000):
            copy.write("".join(lines[i:i + 2000]))


def _arrays(parsed: Parsed) -> dict[str, str]:
    minutes = sorted(parsed.minutes)
    ts, devices, residents, occupied, hr, rr, movement = zip(*parsed.latest, strict=True)
    return {
        "m_devices": text_array([m[0] for m in minutes]), "m_minutes": text_array([m[1] for m in minutes]),
        "ts": text_array(ts), "devices": text_array(devices), "residents": text_array(residents),
        "occupied": "{" + ",".join(map(_BOOL_TEXT.__getitem__, occupied)) + "}",
        "hr": _number_array(hr), "rr": _number_array(rr), "movement": _number_array(movement),
    }


# Arrays go to the server as one array literal each (cast in the statement: `%s::text[]`):
# psycopg adapts a list element by element in Python, which cost telemetry more CPU than the
# statements the arrays are for (~4 us an element).

def text_array(values: Sequence[str]) -> str:
    """An array literal of strings (for `%s::text[]`, `%s::timestamptz[]` of times as text)."""
    joined = '","'.join(values)
    if joined.count('"') != 2 * (len(values) - 1) or "\\" in joined:  # an element to escape
        joined = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + joined + '"}' if values else "{}"


def time_array(values: Sequence[datetime]) -> str:
    """An array literal of aware datetimes (for `%s::timestamptz[]`)."""
    return "{" + ",".join(map(datetime.isoformat, values)) + "}"


def _number_array(values: Sequence[int | float | None]) -> str:
    return "{" + ",".join(["NULL" if v is None else repr(v) for v in values]) + "}"


def ensure_partitions(conn: psycopg.Connection, first_day: date, days: int) -> int:
    """Create the daily sample partitions from first_day on that are missing; how many were made.

    Does nothing on TimescaleDB, whose chunks need no preparing.
    """
    row = conn.execute(
        "SELECT telemetry.ensure_bed_sample_partitions(%s, %s)", (first_day, days)
    ).fetchone()
    value = row[0] if isinstance(row, tuple) else next(iter(row.values()))
    return int(value)


def drop_partitions(conn: psycopg.Connection, before: date) -> int:
    """Drop the daily sample partitions that end on or before `before` (plain PostgreSQL); how
    many were dropped. Does nothing on TimescaleDB, whose retention policy does this."""
    row = conn.execute("SELECT telemetry.drop_bed_sample_partitions(%s)", (before,)).fetchone()
    value = row[0] if isinstance(row, tuple) else next(iter(row.values()))
    return int(value)
