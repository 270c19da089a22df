"""Read side of dispatch for the console and the API. Stable signatures: other packages call these."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from homecare.errors import NotFound

from .domain.requests import ACTIVE, Status
from .store import timeline

_COLUMNS = (
    "r.id, r.resident_id, r.device_id, r.service, r.priority, r.urgency, r.status, r.source, r.provider_id,"
    " p.name AS provider_name, r.note, r.created_at, r.acknowledged_at, r.offered_at, r.assigned_at,"
    " r.en_route_at, r.arrived_at, r.completed_at, r.cancelled_at, r.escalated_at, r.assign_due_at,"
    " r.sla_due_at, r.sla_at_risk_at, r.eta_minutes"
)
_FROM = " FROM dispatch.requests r LEFT JOIN dispatch.providers p ON p.id = r.provider_id"


def list_requests(conn: psycopg.Connection, statuses: list[str] | None = None, limit: int = 100) -> list[dict]:
    """Requests, newest first, optionally only those in the given statuses."""
    where, params = "", []
    if statuses:
        unknown = set(statuses) - {s.value for s in Status}
        if unknown:
            raise ValueError(f"unknown status {', '.join(sorted(unknown))}")
        where, params = " WHERE r.status = ANY(%s)", [list(statuses)]
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS}{_FROM}{where} ORDER BY r.created_at DESC, r.id LIMIT %s", (*params, limit)
        ).fetchall()


def get_request(conn: psycopg.Connection, request_id: str) -> dict:
    """One request with its whole timeline (oldest first) and its offers; NotFound otherwise."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS}{_FROM} WHERE r.id = %s", (request_id,)).fetchone()
        if row is None:
            raise NotFound(f"request {request_id} not found")
        row["offers"] = cur.execute(
            "SELECT o.id, o.provider_id, p.name AS provider_name, o.status, o.eta_minutes, o.created_at,"
            " o.deadline_at, o.answered_at FROM dispatch.offers o JOIN dispatch.providers p ON p.id = o.provider_id"
            " WHERE o.request_id = %s ORDER BY o.created_at, o.id",
            (request_id,),
        ).fetchall()
    row["timeline"] = timeline.entries(conn, request_id)
    return row


def open_requests_for(conn: psycopg.Connection, resident_id: str) -> list[dict]:
    """A resident's requests that are not finished, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS}{_FROM} WHERE r.resident_id = %s AND r.status = ANY(%s) ORDER BY r.created_at DESC",
            (resident_id, [s.value for s in ACTIVE]),
        ).fetchall()


def count_by_status(conn: psycopg.Connection) -> dict[str, int]:
    """How many requests are in each status (every status present, zero when none)."""
    counts = {s.value: 0 for s in Status}
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute("SELECT status, count(*) AS n FROM dispatch.requests GROUP BY status"):
            counts[row["status"]] = row["n"]
    return counts
