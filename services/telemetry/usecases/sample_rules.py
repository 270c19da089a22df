"""Runs the sample rules (heart and breathing rate ranges, stillness) over the minutes of beds
that got new samples. Reads the raw rows and the minute rollups, so late and repeated samples
are looked at again; episodes in the database make a repeated look at the same run of samples
the same occurrence.

Most windows hold no value out of the resident's range, and then no run either: a cheap screen
(the minute rollups' min and max, or the raw rows inside the database) picks the beds whose raw
samples are worth reading into Python at all."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row, tuple_row

from services.telemetry.domain.rules import stillness, vitals
from services.telemetry.domain.rules.episodes import merge
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Minute, Rule, Sample
from services.telemetry.store import alerts as store
from services.telemetry.store import rollups
from services.telemetry.store import rule_state as state
from services.telemetry.store.alert_settings import limits_for
from services.telemetry.store.rollups import MINUTE, Touched
from services.telemetry.store.samples import text_array, time_array
from services.telemetry.usecases import nightly

log = logging.getLogger(__name__)

_SAMPLES = """
SELECT s.device_id, s.resident_id, s.ts, s.occupied, s.heart_rate, s.respiration_rate, s.movement
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(device_id, lo, hi)
JOIN telemetry.bed_samples s ON s.device_id = w.device_id AND s.ts >= w.lo AND s.ts < w.hi
ORDER BY s.device_id, s.ts
"""

_WINDOWS = (
    "unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::int[], %s::int[], %s::int[], %s::int[])"
    " AS w(device_id, lo, hi, hr_low, hr_high, rr_low, rr_high)"
)

# A minute bucket that overlaps the window counts whole: the screen may pass a bed whose outlier
# lies just outside its window (its samples are then read for nothing), never miss one inside.
# Per window an index range scan that stops at the first hit: a LATERAL with a LIMIT is never
# flattened into a join, which the planner, costing it by a guess of the array's length, may run
# as a hash join over the whole rollup table.
_OUT_OF_RANGE_MINUTES = f"""
SELECT DISTINCT w.device_id FROM {_WINDOWS}, LATERAL (
    SELECT 1 FROM telemetry.vitals_1m m
    WHERE m.device_id = w.device_id AND m.bucket > w.lo - INTERVAL '1 minute' AND m.bucket < w.hi
      AND (m.heart_rate_max > w.hr_high OR m.heart_rate_min < w.hr_low
           OR m.respiration_rate_max > w.rr_high OR m.respiration_rate_min < w.rr_low)
    LIMIT 1
) hit
"""

_OUT_OF_RANGE_SAMPLES = f"""
SELECT DISTINCT w.device_id FROM {_WINDOWS}
JOIN telemetry.bed_samples s ON s.device_id = w.device_id AND s.ts >= w.lo AND s.ts < w.hi
WHERE s.heart_rate > w.hr_high OR s.heart_rate < w.hr_low
   OR s.respiration_rate > w.rr_high OR s.respiration_rate < w.rr_low
"""

# The touched minutes' own rollups: a bed none of whose new minutes is still cannot have a new
# still run (a minute that is not still only ends one), so its hours of minutes are not read.
# Per run of consecutive touched minutes, an index range scan (LATERAL: whatever the planner
# estimates, never a sort of the whole rollup table on every pass; OFFSET 0 keeps the planner
# from flattening the LATERAL into a plain join, which it may run as a hash join over the table).
_TOUCHED_MINUTES = f"""
SELECT w.device_id, m.resident_id, m.bucket, m.samples, m.occupied_samples, m.movement_max
FROM {rollups.WINDOWS}, LATERAL (
    SELECT m.resident_id, m.bucket, m.samples, m.occupied_samples, m.movement_max FROM telemetry.vitals_1m m
    WHERE m.device_id = w.device_id AND m.bucket >= w.lo AND m.bucket < w.hi OFFSET 0
) m
"""

_MINUTES = """
SELECT m.device_id, m.resident_id, m.bucket, m.samples, m.occupied_samples, m.movement_max
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) AS w(device_id, lo, hi), LATERAL (
    SELECT m.device_id, m.resident_id, m.bucket, m.samples, m.occupied_samples, m.movement_max
    FROM telemetry.vitals_1m m WHERE m.device_id = w.device_id AND m.bucket >= w.lo AND m.bucket < w.hi OFFSET 0
) m
ORDER BY m.device_id, m.bucket
"""


def residents_of(conn: psycopg.Connection, device_ids: list[str]) -> dict[str, str]:
    """The current resident of each bed, from its latest sample."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT device_id, resident_id FROM telemetry.latest_samples WHERE device_id = ANY(%s)", (device_ids,)
        ).fetchall()
    return {r["device_id"]: r["resident_id"] for r in rows}


def evaluate(conn: psycopg.Connection, touched: list[Touched], defaults: RuleLimits,
             minutes_current: bool = False) -> list[str]:
    """Run the sample rules over touched beds; the ids of alerts opened or noted.

    `minutes_current`: the caller has just rebuilt the touched minutes' rollups from the raw
    rows (plain PostgreSQL), so the heart and breathing rate screen may read those instead of
    the raw rows. A neighbouring minute whose rollup is not rebuilt yet has a marker of its own,
    and its pass reads this window again. TimescaleDB's real-time aggregate does not see late
    rows in a materialized bucket, so there the screen reads the raw rows.
    """
    if not touched:
        return []
    residents = residents_of(conn, [t.device_id for t in touched])
    limits = limits_for(conn, residents.values(), defaults)
    limit_of = {t.device_id: limits.get(residents.get(t.device_id, ""), defaults) for t in touched}
    changed = _vitals(conn, touched, limit_of, minutes_current)
    changed += _stillness(conn, touched, limit_of, limits, defaults)
    nightly.mark_late(conn, touched, residents, limits, defaults)  # samples of a night already evaluated
    return changed


def windows(touched: list[Touched], reach: dict[str, timedelta]) -> tuple[str, str, str]:
    """Each touched bed's (device, from, until), `reach` around its touched minutes, as the
    array literals of three arrays (store.text_array)."""
    # Both ways: late samples can close a gap and join a run stored before them to one after them.
    return (
        text_array([t.device_id for t in touched]),
        time_array([t.first - reach[t.device_id] for t in touched]),
        time_array([t.last + MINUTE + reach[t.device_id] for t in touched]),
    )


def out_of_range(conn: psycopg.Connection, touched: list[Touched], reach: dict[str, timedelta],
                 limit_of: dict[str, RuleLimits], minutes_current: bool) -> list[Touched]:
    """The touched beds whose window (`reach` around their touched minutes) holds a heart or
    breathing rate outside their range (the screen; `evaluate` says when the minute rollups may
    stand in for the raw rows)."""
    limits = [limit_of[t.device_id] for t in touched]
    params = (*windows(touched, reach), *(
        "{" + ",".join(str(getattr(lim, name)) for lim in limits) + "}"
        for name in ("hr_low", "hr_high", "rr_low", "rr_high")
    ))
    query = _OUT_OF_RANGE_MINUTES if minutes_current else _OUT_OF_RANGE_SAMPLES
    with conn.cursor(row_factory=tuple_row) as cur:
        hot = {row[0] for row in cur.execute(query, params)}
    return [t for t in touched if t.device_id in hot]


def _vitals(conn: psycopg.Connection, touched: list[Touched], limit_of: dict[str, RuleLimits],
            minutes_current: bool) -> list[str]:
    # Far enough to see a whole sustained run that ends (or starts) in a touched minute.
    before = {d: timedelta(seconds=lim.sustain_s + lim.max_gap_s) for d, lim in limit_of.items()}
    touched = out_of_range(conn, touched, before, limit_of, minutes_current)
    if not touched:
        return []
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    # Tuples, not dicts: this reads every sample of a window the screen passed again on each pass.
    with conn.cursor(row_factory=tuple_row) as cur:
        for device_id, resident_id, ts, occupied, heart_rate, respiration_rate, movement in cur.execute(
            _SAMPLES, windows(touched, before)
        ):
            groups[(device_id, resident_id)].append(Sample(ts, occupied, heart_rate, respiration_rate, movement))
    changed: list[str] = []
    for (device_id, resident_id), samples in groups.items():
        lim = limit_of[device_id]
        gap = timedelta(seconds=lim.max_gap_s)
        for vital in ("heart_rate", "respiration_rate"):
            rule = vitals.RULE_OF[vital]
            for run in vitals.sustained(samples, vital, lim):
                started = _episode(conn, rule.value, device_id, run.start, run.end, gap)
                alert = store.raise_finding(conn, vitals.finding(run, vital, lim, resident_id, device_id, started))
                if alert:
                    changed.append(alert)
    return changed


def _stillness(
    conn: psycopg.Connection, touched: list[Touched], limit_of: dict[str, RuleLimits],
    limits: dict[str, RuleLimits], defaults: RuleLimits,
) -> list[str]:
    touched = with_still_minutes(conn, touched, limits, defaults)
    if not touched:
        return []
    before = {d: timedelta(minutes=lim.still_minutes) for d, lim in limit_of.items()}
    groups: dict[tuple[str, str], list[Minute]] = defaultdict(list)
    with conn.cursor(row_factory=tuple_row) as cur:
        for device_id, resident_id, *minute in cur.execute(_MINUTES, windows(touched, before)):
            groups[(device_id, resident_id)].append(Minute(*minute))
    changed: list[str] = []
    for (device_id, resident_id), minutes in groups.items():
        lim = limits.get(resident_id, defaults)
        for run in stillness.sustained(minutes, lim):
            started = _episode(conn, Rule.NO_MOVEMENT.value, device_id, run.start, run.end, MINUTE)
            alert = store.raise_finding(conn, stillness.finding(run, lim, resident_id, device_id, started))
            if alert:
                changed.append(alert)
    return changed


def with_still_minutes(conn: psycopg.Connection, touched: list[Touched], limits: dict[str, RuleLimits],
                       defaults: RuleLimits) -> list[Touched]:
    """The touched beds with a touched minute that is still, by the limits the rule applies to it."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(_TOUCHED_MINUTES, rollups.windows_params(touched)).fetchall()
    still = {device_id for device_id, resident_id, *minute in rows
             if stillness.is_still(Minute(*minute), limits.get(resident_id, defaults))}
    return [t for t in touched if t.device_id in still]


def _episode(conn: psycopg.Connection, rule: str, device_id: str, start: datetime, end: datetime,
             gap: timedelta) -> datetime:
    """The start of the episode a sustained run belongs to, after recording the run in it."""
    episode = merge(state.episode(conn, rule, device_id), start, end, gap)
    state.save_episode(conn, rule, device_id, episode)
    return episode.started_at
