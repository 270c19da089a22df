"""Writing bed samples: COPY into a staging table, then insert each (device, ts) once.

Data functions: they take a connection and do not commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg.rows import tuple_row

from .samples import COLUMNS, SampleRow

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

# New samples only (a redelivered one is not stored again) mark their minute as touched, for the
# rollups and the sample rules. Markers are upserted in key order, so that writers lock them in
# the same order, and so that a marker being claimed makes the writer wait and leave a new one.
_INSERT_SAMPLES = f"""
WITH new AS (
    INSERT INTO telemetry.bed_samples ({_COLS})
    SELECT {_COLS} FROM {_STAGING}
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING device_id, ts
), touched AS (
    INSERT INTO telemetry.touched_minutes AS t (device_id, minute)
    SELECT DISTINCT device_id, date_bin('1 minute', ts, {ORIGIN}) FROM new ORDER BY 1, 2
    ON CONFLICT (device_id, minute) DO UPDATE SET marked_at = now()
)
SELECT count(*) FROM new
"""

# Ordered by device so that replicas writing the same beds lock their rows in the same order.
_UPSERT_LATEST = f"""
INSERT INTO telemetry.latest_samples AS l ({_COLS})
SELECT DISTINCT ON (device_id) {_COLS} FROM {_STAGING} ORDER BY device_id, ts DESC
ON CONFLICT (device_id) DO UPDATE SET
    ts = EXCLUDED.ts, resident_id = EXCLUDED.resident_id, occupied = EXCLUDED.occupied,
    heart_rate = EXCLUDED.heart_rate, respiration_rate = EXCLUDED.respiration_rate,
    movement = EXCLUDED.movement, updated_at = now()
WHERE EXCLUDED.ts > l.ts
"""


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
    if not rows:
        return WriteResult(0, 0)
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(_CREATE_STAGING)
        cur.execute(f"DELETE FROM {_STAGING}")  # rows of an earlier write in this transaction
        with cur.copy(f"COPY {_STAGING} ({_COLS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        stored = cur.execute(_INSERT_SAMPLES).fetchone()[0]
        cur.execute(_UPSERT_LATEST)
    return WriteResult(len(rows), stored)


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
