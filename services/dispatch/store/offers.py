"""Offers to providers. At most one pending offer per request (a partial unique index)."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from homecare.errors import Conflict, NotFound

from ..domain.offers import Offer, OfferStatus


def from_row(row: dict) -> Offer:
    return Offer(
        id=row["id"], request_id=row["request_id"], provider_id=row["provider_id"],
        status=OfferStatus(row["status"]), created_at=row["created_at"], deadline_at=row["deadline_at"],
        eta_minutes=row["eta_minutes"], answered_at=row["answered_at"],
        preempts_request_id=row.get("preempts_request_id"),
    )


def insert(
    conn: psycopg.Connection, offer: Offer, score: float | None = None, parts: dict[str, float] | None = None
) -> None:
    """Record a new pending offer; Conflict when the request already has one."""
    cur = conn.execute(  # the partial unique index allows one pending offer per request
        "INSERT INTO dispatch.offers (id, request_id, provider_id, status, eta_minutes, score, score_parts,"
        " created_at, deadline_at, preempts_request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (request_id) WHERE status = 'pending' DO NOTHING",
        (offer.id, offer.request_id, offer.provider_id, offer.status.value, offer.eta_minutes,
         score, Jsonb(parts) if parts is not None else None, offer.created_at, offer.deadline_at,
         offer.preempts_request_id),
    )
    if cur.rowcount != 1:
        raise Conflict(f"request {offer.request_id} already has a pending offer")


def load(conn: psycopg.Connection, offer_id: str, *, lock: bool = False) -> Offer:
    """One offer, or NotFound."""
    query = "SELECT * FROM dispatch.offers WHERE id = %s" + (" FOR UPDATE" if lock else "")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, (offer_id,)).fetchone()
    if row is None:
        raise NotFound(f"offer {offer_id} not found")
    return from_row(row)


def pending_for(conn: psycopg.Connection, request_id: str, *, lock: bool = True) -> Offer | None:
    """The request's pending offer, if any."""
    query = "SELECT * FROM dispatch.offers WHERE request_id = %s AND status = 'pending'"
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query + (" FOR UPDATE" if lock else ""), (request_id,)).fetchone()
    return from_row(row) if row else None


def save_answer(conn: psycopg.Connection, offer: Offer) -> None:
    """Close a pending offer; Conflict when it was answered meanwhile."""
    cur = conn.execute(
        "UPDATE dispatch.offers SET status = %s, answered_at = %s WHERE id = %s AND status = 'pending'",
        (offer.status.value, offer.answered_at, offer.id),
    )
    if cur.rowcount != 1:
        raise Conflict(f"offer {offer.id} was answered meanwhile")


def history(conn: psycopg.Connection, request_id: str) -> tuple[int, frozenset[str]]:
    """(offers declined or expired, providers already asked and not to be asked again)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT provider_id, status FROM dispatch.offers WHERE request_id = %s", (request_id,)
        ).fetchall()
    failed = [r for r in rows if r["status"] in ("declined", "expired")]
    return len(failed), frozenset(r["provider_id"] for r in failed)


def due(conn: psycopg.Connection, now: datetime, limit: int = 50) -> list[tuple[str, str]]:
    """(offer id, request id) of pending offers past their deadline. Their requests are locked,
    and requests another replica holds are skipped, so two timer loops never both act."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT o.id, o.request_id FROM dispatch.offers o JOIN dispatch.requests r ON r.id = o.request_id"
            " WHERE o.status = 'pending' AND o.deadline_at <= %s ORDER BY o.deadline_at LIMIT %s"
            " FOR NO KEY UPDATE OF r SKIP LOCKED",
            (now, limit),
        ).fetchall()
    return [(r["id"], r["request_id"]) for r in rows]


def to_unreachable(conn: psycopg.Connection, seen_before: datetime, limit: int = 50) -> list[tuple[str, str]]:
    """(offer id, request id) of pending offers to providers last heard from before `seen_before`,
    oldest first; requests locked, those another replica holds skipped (as `due`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT o.id, o.request_id FROM dispatch.offers o JOIN dispatch.requests r ON r.id = o.request_id"
            " JOIN dispatch.providers p ON p.id = o.provider_id"
            " WHERE o.status = 'pending' AND (p.last_seen_at IS NULL OR p.last_seen_at < %s)"
            " ORDER BY o.created_at LIMIT %s FOR NO KEY UPDATE OF r SKIP LOCKED",
            (seen_before, limit),
        ).fetchall()
    return [(r["id"], r["request_id"]) for r in rows]


def list_offers(
    conn: psycopg.Connection, provider_id: str | None = None, status: str | None = None, limit: int = 100,
    districts: frozenset[str] | None = None,
) -> list[dict]:
    """Offers, newest first, with what the provider needs to decide; `districts`: only of requests
    of these districts (a dispatcher's scope; None: all)."""
    where, params = ["true"], []
    if districts is not None:
        where.append("r.district = ANY(%s)")
        params.append(sorted(districts))
    if provider_id is not None:
        where.append("o.provider_id = %s")
        params.append(provider_id)
    if status is not None:
        where.append("o.status = %s")
        params.append(status)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT o.id, o.request_id, o.provider_id, o.status, o.eta_minutes, o.created_at, o.deadline_at,"
            " o.answered_at, o.preempts_request_id, r.resident_id, r.service, r.priority, r.urgency,"
            " r.status AS request_status, r.district,"
            # Help from another district (domain/districts.py): the provider is placed elsewhere.
            " (cardinality(p.districts) > 0 AND r.district IS NOT NULL AND NOT r.district = ANY(p.districts))"
            "   AS cross_district"
            " FROM dispatch.offers o JOIN dispatch.requests r ON r.id = o.request_id"
            " JOIN dispatch.providers p ON p.id = o.provider_id"
            f" WHERE {' AND '.join(where)} ORDER BY o.created_at DESC LIMIT %s",
            (*params, limit),
        ).fetchall()


def any_for(conn: psycopg.Connection, request_id: str, provider_id: str) -> bool:
    """Whether the provider was ever offered the request."""
    row = conn.execute(
        "SELECT 1 FROM dispatch.offers WHERE request_id = %s AND provider_id = %s LIMIT 1", (request_id, provider_id)
    ).fetchone()
    return row is not None
