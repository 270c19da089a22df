"""Exports of a resident's vitals: FHIR R4 Observations from the minute rollups of their beds, with
the resident as a Patient and the beds as Devices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from homecare.errors import Invalid
from homecare.residents import store as residents
from services.telemetry.domain import fhir

_MINUTES = """
SELECT device_id, bucket,
       sum(heart_rate_sum)::float8 / nullif(sum(heart_rate_count), 0) AS heart_rate,
       min(heart_rate_min) AS heart_rate_min, max(heart_rate_max) AS heart_rate_max,
       sum(heart_rate_count)::bigint AS heart_rate_count,
       sum(respiration_rate_sum)::float8 / nullif(sum(respiration_rate_count), 0) AS respiration_rate,
       min(respiration_rate_min) AS respiration_rate_min, max(respiration_rate_max) AS respiration_rate_max,
       sum(respiration_rate_count)::bigint AS respiration_rate_count
FROM telemetry.vitals_1m
WHERE resident_id = %(resident_id)s AND device_id = ANY(%(beds)s)
  AND bucket >= date_bin('1 minute', %(start)s, TIMESTAMPTZ '2000-01-01 00:00:00+00') AND bucket < %(end)s
GROUP BY device_id, bucket
ORDER BY bucket, device_id
"""


def beds_of(conn: psycopg.Connection, resident_id: str) -> list[Any]:
    """The resident's beds, as the gateway's registry knows them."""
    from gateway.interface import devices_of  # the gateway owns devices

    return [d for d in devices_of(conn, resident_id) if d.kind == "bed"]


def resident_observations(
    conn: psycopg.Connection, resident_id: str, start: datetime, end: datetime, max_hours: int,
    self_url: str | None = None,
) -> dict[str, Any]:
    """A FHIR searchset Bundle of the resident's per-minute heart and respiratory rates over
    [start, end); NotFound for an unknown resident, Invalid for a bad or too long range."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise Invalid("end must be after start")
    if end - start > timedelta(hours=max_hours):
        raise Invalid(f"the range may span at most {max_hours} hours")
    resident = residents.get(conn, resident_id)
    beds = beds_of(conn, resident_id)
    rows: list[dict[str, Any]] = []
    if beds:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                _MINUTES, {"resident_id": resident_id, "beds": [b.id for b in beds], "start": start, "end": end}
            ).fetchall()
    for row in rows:
        row["bucket"] = row["bucket"].astimezone(UTC)
    measured = {row["device_id"] for row in rows}
    included = [fhir.patient(resident.id, resident.name, resident.address, resident.district,
                             [(c.name, c.phone, c.relation) for c in resident.contacts])]
    included += [fhir.device(b.id, b.kind.value, resident.id, b.fw) for b in beds if b.id in measured]
    return fhir.searchset(fhir.observations(resident_id, rows), datetime.now(UTC), self_url, included)


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
