"""Providers (caregivers or teams) and their current load."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from homecare.errors import NotFound

from ..domain.matching import Candidate, Location

# Requests that hold a provider's capacity.
_BUSY = "('assigned', 'en_route', 'arrived')"


def insert(
    conn: psycopg.Connection, provider_id: str, name: str, services: list[str], location: Location,
    capacity: int, on_shift: bool = True,
) -> dict:
    """Register a provider; returns its row."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "INSERT INTO dispatch.providers (id, name, services, lat, lon, capacity, on_shift)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (provider_id, name, services, location.lat, location.lon, capacity, on_shift),
        ).fetchone()


def get(conn: psycopg.Connection, provider_id: str, *, lock: bool = False) -> dict:
    """One provider (row-locked when `lock`, which serialises capacity checks), or NotFound."""
    query = "SELECT * FROM dispatch.providers WHERE id = %s" + (" FOR UPDATE" if lock else "")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, (provider_id,)).fetchone()
    if row is None:
        raise NotFound(f"provider {provider_id} not found")
    return row


def list_all(conn: psycopg.Connection) -> list[dict]:
    """Every provider with its number of active requests, by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT p.*, (SELECT count(*) FROM dispatch.requests r WHERE r.provider_id = p.id"
            f" AND r.status IN {_BUSY}) AS active FROM dispatch.providers p ORDER BY p.name, p.id"
        ).fetchall()


def set_on_shift(conn: psycopg.Connection, provider_id: str, on_shift: bool) -> dict:
    """Start or end a provider's shift."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE dispatch.providers SET on_shift = %s WHERE id = %s RETURNING *", (on_shift, provider_id)
        ).fetchone()
    if row is None:
        raise NotFound(f"provider {provider_id} not found")
    return row


def active_count(conn: psycopg.Connection, provider_id: str) -> int:
    """Requests the provider holds now (read after locking its row, so it is current)."""
    row = conn.execute(
        f"SELECT count(*) AS n FROM dispatch.requests WHERE provider_id = %s AND status IN {_BUSY}",
        (provider_id,),
    ).fetchone()
    return row["n"] if isinstance(row, dict) else row[0]


def candidates(
    conn: psycopg.Connection, service: str, resident_id: str, recent_since: datetime
) -> list[Candidate]:
    """On-shift providers of a service, with load, history with the resident, recent work."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT p.id, p.name, p.services, p.lat, p.lon, p.capacity, p.on_shift,"
            f" (SELECT count(*) FROM dispatch.requests r WHERE r.provider_id = p.id AND r.status IN {_BUSY})"
            "   AS active,"
            " (SELECT count(*) FROM dispatch.offers o WHERE o.provider_id = p.id AND o.status = 'pending')"
            "   AS pending_offers,"
            " (SELECT count(*) FROM dispatch.requests r WHERE r.provider_id = p.id AND r.resident_id = %s"
            "   AND r.status = 'completed') AS visits,"
            " (SELECT count(*) FROM dispatch.requests r WHERE r.provider_id = p.id AND r.assigned_at >= %s)"
            "   AS recent"
            " FROM dispatch.providers p WHERE %s = ANY (p.services) AND p.on_shift",
            (resident_id, recent_since, service),
        ).fetchall()
    return [
        Candidate(
            provider_id=r["id"], name=r["name"], services=frozenset(r["services"]),
            location=Location(r["lat"], r["lon"]), capacity=r["capacity"], on_shift=r["on_shift"],
            active=r["active"], pending_offers=r["pending_offers"], visits_with_resident=r["visits"],
            recent_assignments=r["recent"],
        )
        for r in rows
    ]
