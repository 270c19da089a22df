"""The resident view: profile, devices, vitals charts, alert and request history, through the
directory's, the gateway's, telemetry's and dispatch's Python interfaces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from gateway import interface as registry
from homecare.residents import store as residents
from services.dispatch import interface as dispatch
from services.telemetry import interface as telemetry

from . import alerts_data
from .board import board_row
from .chart import vitals_chart

# The two charts: (name, span, rollup resolution, bucket length).
RANGES = (
    ("24h", timedelta(hours=24), "1m", timedelta(minutes=1)),
    ("7d", timedelta(days=7), "1h", timedelta(hours=1)),
)
HISTORY_LIMIT = 50
REQUEST_SCAN = 1000  # recent requests city-wide, filtered to this resident below


def resident_view(
    conn: psycopg.Connection, resident_id: str, now: datetime | None = None, districts: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Everything the resident page shows; NotFound for an unknown id, or a resident of another
    district than `districts` (None: all)."""
    resident = residents.get(conn, resident_id, districts)
    devices = registry.devices_of(conn, resident_id)
    beds = [d.id for d in devices if d.kind == "bed"]
    latest = telemetry.latest_states(conn, beds)
    return {
        "resident": resident,
        "devices": devices,
        "latest": latest,
        "charts": [{"device_id": bed, "ranges": charts_of(conn, bed, now)} for bed in beds],
        "alerts": alerts_data.listing(conn, None, resident_id, HISTORY_LIMIT),
        "requests": request_history(conn, resident_id),
    }


def charts_of(conn: psycopg.Connection, device_id: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The 24-hour and 7-day charts of one bed, drawn from the rollups."""
    end = next_minute(now or datetime.now(UTC))
    out = []
    for name, span, resolution, step in RANGES:
        points = telemetry.vitals(conn, device_id, end - span, end, resolution)
        out.append({"name": name, "resolution": resolution, **vitals_chart(points, end - span, end, step)})
    return out


def request_history(conn: psycopg.Connection, resident_id: str) -> list[dict[str, Any]]:
    """The resident's requests, open ones first, then the most recent."""
    mine = {r["id"]: r for r in dispatch.open_requests_for(conn, resident_id)}
    for request in dispatch.list_requests(conn, None, REQUEST_SCAN):
        if request["resident_id"] == resident_id:
            mine.setdefault(request["id"], request)
    rows = [board_row(r, None) for r in mine.values()]
    rows.sort(key=lambda r: (r["section"] != "active", -_epoch(r["created_at"])))
    return rows[:HISTORY_LIMIT]


def _epoch(value: str | None) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else 0.0


def next_minute(now: datetime) -> datetime:
    """The end of charts drawn at `now`: the next whole minute, so the current minute shows."""
    return now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
