"""The baseline rule's use case: once a resident's night has ended (and settled), compare its
heart and breathing rate with the previous nights, all from the minute rollups."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from services.telemetry.domain.rules import baseline
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.night import last_ended_night, night_bounds
from services.telemetry.store import alerts as store
from services.telemetry.store.alert_settings import limits_for

log = logging.getLogger(__name__)

_NIGHTS = """
SELECT w.night,
       sum(m.heart_rate_sum)::float8 / nullif(sum(m.heart_rate_count), 0) AS heart_rate,
       count(DISTINCT m.bucket) FILTER (WHERE m.heart_rate_count > 0) AS heart_rate_minutes,
       sum(m.respiration_rate_sum)::float8 / nullif(sum(m.respiration_rate_count), 0) AS respiration_rate,
       count(DISTINCT m.bucket) FILTER (WHERE m.respiration_rate_count > 0) AS respiration_rate_minutes
FROM unnest(%s::date[], %s::timestamptz[], %s::timestamptz[]) AS w(night, lo, hi)
LEFT JOIN telemetry.vitals_1m m ON m.resident_id = %s AND m.bucket >= w.lo AND m.bucket < w.hi
GROUP BY w.night
ORDER BY w.night
"""


def nights(
    conn: psycopg.Connection, resident_id: str, last: date, count: int, limits: RuleLimits
) -> list[baseline.Night]:
    """The resident's nights from `last - count` to `last`, summarised from the minute rollups."""
    days = [last - timedelta(days=back) for back in range(count, -1, -1)]
    bounds = [night_bounds(day, limits) for day in days]
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_NIGHTS, (days, [b[0] for b in bounds], [b[1] for b in bounds], resident_id)).fetchall()
    return [baseline.Night(**row) for row in rows]


def residents_with_beds(conn: psycopg.Connection) -> list[str]:
    """Residents whose beds have reported."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT DISTINCT resident_id FROM telemetry.latest_samples ORDER BY 1").fetchall()
    return [r["resident_id"] for r in rows]


def check_resident(conn: psycopg.Connection, resident_id: str, now: datetime, limits: RuleLimits) -> list[str]:
    """Evaluate the resident's latest ended night once (replicas agree through the summary row)."""
    settle = timedelta(minutes=limits.baseline_settle_minutes)
    night = last_ended_night(now, limits, settle)
    summary = nights(conn, resident_id, night, limits.baseline_nights, limits)
    tonight, previous = summary[-1], summary[:-1]
    claimed = conn.execute(
        "INSERT INTO telemetry.night_summaries (resident_id, night, heart_rate, heart_rate_minutes,"
        " respiration_rate, respiration_rate_minutes) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (resident_id, night) DO NOTHING RETURNING 1",
        (resident_id, night, tonight.heart_rate, tonight.heart_rate_minutes, tonight.respiration_rate,
         tonight.respiration_rate_minutes),
    ).fetchone()
    if claimed is None:
        return []  # this night was evaluated already
    changed = []
    for vital in ("heart_rate", "respiration_rate"):
        found = baseline.deviation(tonight, previous, vital, limits, resident_id)
        if found is not None:
            alert = store.raise_finding(conn, found)
            changed += [alert] if alert else []
    return changed


def check_nights(conn: psycopg.Connection, now: datetime, defaults: RuleLimits) -> list[str]:
    """Evaluate the latest ended night of every resident with a bed; ids of alerts raised."""
    residents = residents_with_beds(conn)
    limits = limits_for(conn, residents, defaults)
    changed: list[str] = []
    for resident_id in residents:
        try:
            with conn.transaction():  # a savepoint: one resident's failure does not undo the others
                changed += check_resident(conn, resident_id, now, limits[resident_id])
        except psycopg.Error:
            log.exception("night baseline of %s failed", resident_id)
    return changed
