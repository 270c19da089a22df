"""What a provider sees and does on its own page, through dispatch's interfaces. A provider
only ever reaches its own offers and requests: every function takes its provider id."""

from __future__ import annotations

from typing import Any

import psycopg

from homecare.errors import NotFound
from homecare.residents import store as residents
from services.dispatch import interface as dispatch
from services.dispatch.interface import WITH_PROVIDER, Dispatch, Status

JOB_LIMIT = 1000  # active requests with a provider, city-wide; filtered to this provider below
STEPS = {"en-route": Status.EN_ROUTE, "arrived": Status.ARRIVED, "complete": Status.COMPLETED}


def provider_view(conn: psycopg.Connection, provider_id: str) -> dict[str, Any]:
    """The provider, its pending offers and its current jobs, each with the resident's details."""
    me = dispatch.get_provider(conn, provider_id)
    pending = dispatch.list_offers(conn, provider_id, "pending", limit=50)
    jobs = [
        r for r in dispatch.list_requests(conn, sorted(s.value for s in WITH_PROVIDER), limit=JOB_LIMIT)
        if r["provider_id"] == provider_id
    ]
    jobs.sort(key=lambda r: (r["priority"], r["created_at"]))
    people = _residents(conn, [o["resident_id"] for o in pending] + [j["resident_id"] for j in jobs])
    return {
        "me": me,
        "offers": [{**o, "resident": people.get(o["resident_id"])} for o in pending],
        "jobs": [{**j, "resident": people.get(j["resident_id"])} for j in jobs],
    }


def concerns(conn: psycopg.Connection, provider_id: str, request_ids: list[str]) -> bool:
    """Whether any of these requests is, or was offered to, this provider."""
    for request_id in request_ids:
        try:
            request = dispatch.get_request(conn, request_id)
        except NotFound:
            continue
        if request["provider_id"] == provider_id or any(o["provider_id"] == provider_id for o in request["offers"]):
            return True
    return False


def accept(conn: psycopg.Connection, ctx: Dispatch, offer_id: str, provider_id: str, actor: str) -> str:
    """Take the offered request; returns its id."""
    return dispatch.accept_offer(conn, ctx, offer_id, provider_id, actor).id


def decline(
    conn: psycopg.Connection, ctx: Dispatch, offer_id: str, provider_id: str, actor: str, reason: str | None
) -> str:
    """Say no; dispatch asks the next provider."""
    return dispatch.decline_offer(conn, ctx, offer_id, provider_id, actor, (reason or "").strip() or None).id


def step(conn: psycopg.Connection, ctx: Dispatch, request_id: str, to: str, provider_id: str, actor: str) -> None:
    """On the way, arrived or completed, on a request assigned to this provider."""
    dispatch.advance(conn, ctx, request_id, STEPS[to], actor, provider_id)


def set_shift(conn: psycopg.Connection, ctx: Dispatch, provider_id: str, on_shift: bool) -> None:
    """Start or end this provider's shift (going on shift is a sign of life)."""
    dispatch.set_shift(conn, ctx, provider_id, on_shift)


def heartbeat(conn: psycopg.Connection, ctx: Dispatch, provider_id: str) -> None:
    """The provider's page is open (its script says so every half minute): the provider is reachable."""
    dispatch.heartbeat(conn, ctx, provider_id)


def _residents(conn: psycopg.Connection, ids: list[str]) -> dict[str, residents.Resident]:
    found = {}
    for resident_id in dict.fromkeys(ids):
        try:
            found[resident_id] = residents.get(conn, resident_id)
        except NotFound:
            pass
    return found
