"""The district beds overview: every bed of one district, who is in bed, each bed's last hour,
through the directory's, the gateway's and telemetry's Python interfaces."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from gateway import interface as registry
from homecare.errors import NotFound
from homecare.residents import store as residents
from services.telemetry import interface as telemetry

from .chart import sparkline
from .resident_data import next_minute

SPAN = timedelta(hours=1)
STEP = timedelta(minutes=1)  # beds_vitals' points are minutes
# A bed reports every few seconds while it is online: ten minutes of silence means the sensor,
# not the resident, needs a look.
STALE_AFTER = timedelta(minutes=10)
# Far more than a district has; past it the page says the list is cut short.
MAX_RESIDENTS = 1000
# The directory takes district names of at most 100 characters: a longer one (or one with a NUL,
# which PostgreSQL cannot take) is nobody's district and is not sent to the database.
DISTRICT_MAX = 200
STATE_LABELS = {"out_of_bed": "Out of bed", "no_data": "No data", "in_bed": "In bed"}


def district_residents(
    conn: psycopg.Connection, district: str, within: frozenset[str] | None = None,
) -> tuple[list[residents.Resident], bool]:
    """The residents of a district (at most MAX_RESIDENTS, by name) and whether there are more;
    NotFound when nobody lives there, the name is nobody's, or the district is not one of
    `within` (the user's; None: all) (a district page's first step)."""
    if not district or len(district) > DISTRICT_MAX or "\x00" in district:
        raise NotFound("no such district")
    if within is not None and district not in within:
        raise NotFound(f"no residents in district {district}")
    people = residents.in_district(conn, district, MAX_RESIDENTS + 1)
    if not people:
        raise NotFound(f"no residents in district {district}")
    return people[:MAX_RESIDENTS], len(people) > MAX_RESIDENTS


def district_beds(
    conn: psycopg.Connection, district: str, now: datetime | None = None, within: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Every bed of a district with its state and last hour, beds needing a look first; NotFound
    when nobody lives in the district, or it is not one of `within` (None: all)."""
    people, truncated = district_residents(conn, district, within)
    beds = registry.beds_of(conn, [r.id for r in people])
    pairs = [(r, bed) for r in people for bed in beds.get(r.id, [])]
    bed_ids = [bed for _, bed in pairs]
    now = (now or datetime.now(UTC)).astimezone(UTC)
    end = next_minute(now)
    # Two statements for all beds, whatever their number: the page stays fast for 100+ beds.
    latest = telemetry.latest_states(conn, bed_ids)
    points = telemetry.beds_vitals(conn, bed_ids, end - SPAN, end)
    rows = [bed_row(r.id, r.name, bed, latest.get(bed), points.get(bed, []), now, end - SPAN, end)
            for r, bed in pairs]
    rows.sort(key=lambda row: (row["attention"], row["resident_name"].casefold(), row["bed_id"]))
    counts = Counter(row["state"] for row in rows)
    return {
        "district": district, "rows": rows, "start": end - SPAN, "end": end,
        "counts": {state: counts.get(state, 0) for state in STATE_LABELS},
        "stale": sum(1 for row in rows if row["stale"] and row["state"] != "no_data"),
        "without_bed": [{"id": r.id, "name": r.name} for r in people if r.id not in beds],
        "truncated": truncated, "stale_after_min": int(STALE_AFTER.total_seconds() // 60),
    }


def bed_row(
    resident_id: str, resident_name: str, bed_id: str, latest: Mapping[str, Any] | None,
    points: Sequence[Mapping[str, Any]], now: datetime, start: datetime, end: datetime,
) -> dict[str, Any]:
    """One bed's row: state, age of its newest sample, latest rates, the sparkline of [start, end)."""
    if latest is None:
        state, age, stale = "no_data", None, True
    else:
        state = "in_bed" if latest["occupied"] else "out_of_bed"
        age = max(0, int((now - latest["ts"]).total_seconds()))  # a bed's clock may run ahead
        stale = age > STALE_AFTER.total_seconds()
    return {
        "resident_id": resident_id, "resident_name": resident_name, "bed_id": bed_id,
        "state": state, "state_label": STATE_LABELS[state], "stale": stale,
        "last_sample": latest["ts"] if latest else None, "age_s": age, "ago": ago(age),
        "heart_rate": latest.get("heart_rate") if latest else None,
        "respiration_rate": latest.get("respiration_rate") if latest else None,
        "spark": sparkline(points, start, end, STEP),
        "attention": _attention(state, stale),
    }


def districts(conn: psycopg.Connection, within: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Every district with residents (of `within`; None: all), with how many residents and beds, by name."""
    beds = registry.beds_per_district(conn, within)
    return [{"name": name, "residents": count, "beds": beds.get(name, 0)}
            for name, count in residents.districts(conn, within).items()]


def ago(seconds: int | None) -> str:
    """An age as the console's clock shows it (common.js's age())."""
    if seconds is None:
        return "never"
    minutes = seconds // 60
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 1440:
        return f"{minutes // 60} h {minutes % 60} min ago"
    return f"{minutes // 1440} d ago"


def _attention(state: str, stale: bool) -> int:
    # At night a resident out of bed is the first thing to check; then a bed that went quiet
    # (sensor or network), whose state is unknown; then everyone asleep.
    if stale:
        return 1
    return 0 if state == "out_of_bed" else 2
