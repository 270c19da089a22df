"""The baseline rule's use case: once a resident's night has ended (and settled), compare its
heart and breathing rate with the previous nights, all from the minute rollups. Samples of a night
that arrive after it was evaluated (a bed that was offline and sends its backlog) mark it stale,
and it is evaluated again with them."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from services.telemetry.domain.rules import baseline
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.night import last_ended_night, night_bounds, nights_touching
from services.telemetry.store import alerts as store
from services.telemetry.store.alert_settings import limits_for
from services.telemetry.store.rollups import Touched

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
    return _evaluate(conn, resident_id, last_ended_night(now, limits, settle), limits, again=False)


_CLAIM = (
    "INSERT INTO telemetry.night_summaries (resident_id, night, heart_rate, heart_rate_minutes,"
    " respiration_rate, respiration_rate_minutes) VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (resident_id, night) DO NOTHING RETURNING 1"
)
_AGAIN = (
    "UPDATE telemetry.night_summaries SET heart_rate = %s, heart_rate_minutes = %s, respiration_rate = %s,"
    " respiration_rate_minutes = %s, evaluated_at = now(), stale = false"
    " WHERE resident_id = %s AND night = %s AND stale RETURNING 1"
)


def _evaluate(conn: psycopg.Connection, resident_id: str, night: date, limits: RuleLimits, again: bool) -> list[str]:
    """Compare one night with the ones before it: the first time (`again` False: only if no
    replica did), or again after late samples (the night is stale)."""
    summary = nights(conn, resident_id, night, limits.baseline_nights, limits)
    tonight, previous = summary[-1], summary[:-1]
    values = (tonight.heart_rate, tonight.heart_rate_minutes, tonight.respiration_rate,
              tonight.respiration_rate_minutes)
    if again:
        claimed = conn.execute(_AGAIN, (*values, resident_id, night)).fetchone()
    else:
        claimed = conn.execute(_CLAIM, (resident_id, night, *values)).fetchone()
    if claimed is None:
        return []  # evaluated already (or again, by another replica)
    changed = []
    for vital in ("heart_rate", "respiration_rate"):
        found = baseline.deviation(tonight, previous, vital, limits, resident_id)
        if found is not None:
            alert = store.raise_finding(conn, found)
            changed += [alert] if alert else []
    return changed


def check_nights(conn: psycopg.Connection, now: datetime, defaults: RuleLimits) -> list[str]:
    """Evaluate the latest ended night of every resident with a bed, and again the nights that got
    late samples; ids of alerts raised."""
    residents = residents_with_beds(conn)
    limits = limits_for(conn, residents, defaults)
    changed: list[str] = []
    for resident_id in residents:
        try:
            with conn.transaction():  # a savepoint: one resident's failure does not undo the others
                changed += check_resident(conn, resident_id, now, limits[resident_id])
        except psycopg.Error:
            log.exception("night baseline of %s failed", resident_id)
    return changed + check_late_nights(conn, defaults)


def mark_late(conn: psycopg.Connection, touched: list[Touched], residents: dict[str, str],
              limits: dict[str, RuleLimits], defaults: RuleLimits) -> int:
    """Touched minutes (new samples) in nights already evaluated: those nights are stale, to be
    evaluated again; how many were marked. `residents`: each touched bed's resident. Only nights
    that have ended can have been evaluated: samples arriving live (tonight's) cost no statement."""
    now, found = datetime.now(UTC), set()
    for t in touched:
        resident = residents.get(t.device_id)
        if resident is None:
            continue
        lim = limits.get(resident, defaults)
        found |= {(resident, n) for n in nights_touching(t.first, t.last, lim) if night_bounds(n, lim)[1] <= now}
    pairs = sorted(found)
    if not pairs:
        return 0
    marked = conn.execute(
        "UPDATE telemetry.night_summaries s SET stale = true"
        " FROM unnest(%s::text[], %s::date[]) AS v(resident_id, night)"
        " WHERE s.resident_id = v.resident_id AND s.night = v.night AND NOT s.stale",
        ([p[0] for p in pairs], [p[1] for p in pairs]),
    ).rowcount
    if marked:
        log.info("%d evaluated nights got late samples: they are evaluated again", marked)
    return marked


def check_late_nights(conn: psycopg.Connection, defaults: RuleLimits, limit: int = 200) -> list[str]:
    """Evaluate again the nights marked stale; ids of alerts raised."""
    with conn.cursor(row_factory=dict_row) as cur:
        stale = cur.execute(
            "SELECT resident_id, night FROM telemetry.night_summaries WHERE stale ORDER BY night LIMIT %s"
            " FOR UPDATE SKIP LOCKED", (limit,),
        ).fetchall()
    limits = limits_for(conn, {r["resident_id"] for r in stale}, defaults)
    changed: list[str] = []
    for row in stale:
        try:
            with conn.transaction():
                changed += _evaluate(conn, row["resident_id"], row["night"], limits[row["resident_id"]], again=True)
        except psycopg.Error:
            log.exception("night baseline of %s, %s, again failed", row["resident_id"], row["night"])
    return changed
