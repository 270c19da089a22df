"""Read side of dispatch for the console and the API. Stable signatures: other packages call these."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
from psycopg.rows import dict_row

from homecare.errors import NotFound

from .domain.districts import district_pool, other_district, serves
from .domain.matching import arrival, eta_minutes, rank, tradeoff, why_not
from .domain.presence import presence
from .domain.requests import ACTIVE, Status
from .reports import columns as sla_columns
from .reports import sla_csv, sla_report
from .store import offers, providers, requests, timeline
from .usecases.context import Dispatch, from_settings
from .usecases.pool import candidates as provider_pool
from .usecases.pool import job_of

__all__ = [
    "candidates", "count_by_status", "district_of", "get_request", "list_requests", "open_requests_for", "sla_columns",
    "sla_csv", "sla_report",
]

_COLUMNS = (
    "r.id, r.resident_id, r.device_id, r.service, r.priority, r.urgency, r.status, r.source, r.provider_id,"
    " p.name AS provider_name, r.note, r.created_at, r.acknowledged_at, r.offered_at, r.assigned_at,"
    " r.en_route_at, r.arrived_at, r.completed_at, r.cancelled_at, r.escalated_at, r.assign_due_at,"
    " r.sla_due_at, r.sla_at_risk_at, r.eta_minutes, r.district, r.ack_shown_at, r.late_flagged_at, r.handed_back,"
    " r.stuck_presses, r.stuck_from, r.stuck_to,"
    " r.reannounced, r.reannounced_at,"
    # Help from another district (domain/districts.py): the provider assigned, or offered it now, is
    # placed, and not in the request's district.
    " (r.district IS NOT NULL AND EXISTS (SELECT 1 FROM dispatch.providers x WHERE cardinality(x.districts) > 0"
    "  AND NOT r.district = ANY(x.districts) AND (x.id = r.provider_id OR x.id IN (SELECT o.provider_id"
    "  FROM dispatch.offers o WHERE o.request_id = r.id AND o.status = 'pending')))) AS cross_district,"
    # A care plan's visit (source plan): its window, planned start and place on the route.
    " r.plan_visit_key, r.window_start, r.window_end, r.planned_start, r.route_seq, r.plan_missed_at,"
    # When someone is expected at the door: the assigned provider's ETA, or the pending offer's.
    " CASE WHEN r.status IN ('assigned', 'en_route') THEN r.assigned_at + make_interval(mins => r.eta_minutes)"
    "  WHEN r.status IN ('offered', 'escalated') THEN (SELECT o.created_at + make_interval(mins => o.eta_minutes)"
    "   FROM dispatch.offers o WHERE o.request_id = r.id AND o.status = 'pending') END AS expected_arrival,"
    # Why an escalated request is with the dispatchers (offers go on meanwhile): the board says so.
    " CASE WHEN r.status = 'escalated' THEN (SELECT t.detail->>'reason' FROM dispatch.timeline t"
    "   WHERE t.request_id = r.id AND t.kind = 'escalated' ORDER BY t.id DESC LIMIT 1) END AS escalation_reason"
)
_FROM = " FROM dispatch.requests r LEFT JOIN dispatch.providers p ON p.id = r.provider_id"


def list_requests(
    conn: psycopg.Connection, statuses: list[str] | None = None, limit: int = 100,
    districts: frozenset[str] | None = None,
) -> list[dict]:
    """Requests, newest first, optionally only those in the given statuses; `districts`: only of
    these districts (a dispatcher's scope, homecare.auth.Scope; None: all)."""
    where, params = ["true"], []
    if statuses:
        unknown = set(statuses) - {s.value for s in Status}
        if unknown:
            raise ValueError(f"unknown status {', '.join(sorted(unknown))}")
        where.append("r.status = ANY(%s)")
        params.append(list(statuses))
    if districts is not None:
        where.append("r.district = ANY(%s)")
        params.append(sorted(districts))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS}{_FROM} WHERE {' AND '.join(where)} ORDER BY r.created_at DESC, r.id LIMIT %s",
            (*params, limit),
        ).fetchall()


def district_of(conn: psycopg.Connection, request_id: str) -> str | None:
    """The request's district (its resident's when it was opened); NotFound for no such request."""
    row = conn.execute("SELECT district FROM dispatch.requests WHERE id = %s", (request_id,)).fetchone()
    if row is None:
        raise NotFound(f"request {request_id} not found")
    return row["district"] if isinstance(row, dict) else row[0]


def get_request(conn: psycopg.Connection, request_id: str, districts: frozenset[str] | None = None) -> dict:
    """One request with its whole timeline (oldest first) and its offers; NotFound otherwise, also
    for a request outside `districts` (None: all), so its existence does not leak."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS}{_FROM} WHERE r.id = %s", (request_id,)).fetchone()
        if row is None or (districts is not None and row["district"] not in districts):
            raise NotFound(f"request {request_id} not found")
        row["offers"] = cur.execute(
            "SELECT o.id, o.provider_id, p.name AS provider_name, o.status, o.eta_minutes, o.score, o.score_parts,"
            " o.preempts_request_id, o.created_at, o.deadline_at, o.answered_at,"
            " (cardinality(p.districts) > 0 AND %s::text IS NOT NULL AND NOT %s::text = ANY(p.districts))"
            "   AS cross_district"
            " FROM dispatch.offers o JOIN dispatch.providers p ON p.id = o.provider_id"
            " WHERE o.request_id = %s ORDER BY o.created_at, o.id",
            (row["district"], row["district"], request_id),
        ).fetchall()
        row["commands"] = cur.execute(
            "SELECT command_id, kind AS type, device_id, created_at, sent_at, delivery,"
            " delivery_at FROM dispatch.outbox WHERE request_id = %s ORDER BY id",
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


def count_by_status(conn: psycopg.Connection, districts: frozenset[str] | None = None) -> dict[str, int]:
    """How many requests (of these districts; None: all) are in each status (every status
    present, zero when none)."""
    counts = {s.value: 0 for s in Status}
    where = " WHERE district = ANY(%(d)s)" if districts is not None else ""
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(f"SELECT status, count(*) AS n FROM dispatch.requests{where} GROUP BY status",
                               {"d": sorted(districts or ())}):
            counts[row["status"]] = row["n"]
    return counts


def _context(ctx_or_settings: Any) -> Dispatch:
    if ctx_or_settings is None:
        return Dispatch()
    if isinstance(ctx_or_settings, Dispatch):
        return ctx_or_settings
    return from_settings(ctx_or_settings)  # DispatchSettings: the context the service would use


def list_providers(
    conn: psycopg.Connection, ctx_or_settings: Dispatch | Any | None = None, districts: frozenset[str] | None = None,
) -> list[dict]:
    """Every provider (serving any of `districts`, or not yet placed; None: all) with its number
    of active requests and its presence (`off`, `reachable`, `unreachable`; domain/presence.py) by
    the context's clock and time-out, by name."""
    ctx = _context(ctx_or_settings)
    now = ctx.clock()
    return [{**row, "presence": presence(row["on_shift"], row["last_seen_at"], now, ctx.presence_timeout)}
            for row in providers.list_all(conn, districts)]


def candidates(
    conn: psycopg.Connection, ctx_or_settings: Dispatch | Any | None, request_id: str,
    districts: frozenset[str] | None = None,
) -> list[dict]:
    """Every provider as a candidate for the request, best first: those matching would offer it to
    (ranked by score), then qualified ones that cannot take it now (by ETA, with the reason), then
    the rest. `ctx_or_settings`: the service's `Dispatch` context, its `DispatchSettings`, or None
    for the defaults. NotFound for an unknown request, or one outside `districts` (None: all), whose
    candidates are then the providers in view (serving those districts, or already offered or
    assigned the request). `cross_district`: the provider serves elsewhere (domain/districts.py)."""
    ctx = _context(ctx_or_settings)
    if districts is not None and district_of(conn, request_id) not in districts:
        raise NotFound(f"request {request_id} not found")
    request = requests.load(conn, request_id)
    now = ctx.clock()
    _, tried = offers.history(conn, request.id)
    job = job_of(conn, ctx, request, tried)
    pending = offers.pending_for(conn, request.id, lock=False)
    shown = provider_pool(conn, ctx, request, now, on_shift_only=False, every_service=True)
    # Scored as matching saw them: the request's own pending offer does not count against its provider.
    pool = [replace(c, pending_offers=c.pending_offers - 1) if pending and pending.provider_id == c.provider_id else c
            for c in shown]
    # Ranked as matching ranks them: the request's district first (domain/districts.py).
    chosen = district_pool(pool, job, request.district, ctx.weights)
    ranked = {s.candidate.provider_id: (i, s) for i, s in enumerate(rank(chosen.candidates, job, ctx.weights), start=1)}
    held_back = {c.provider_id for c in pool} - {c.provider_id for c in chosen.candidates}
    # Faster answers matching holds back for the plans (domain/matching.tradeoff): the dispatcher
    # sees who would be late and by how much, and may still choose one.
    faster = {s.candidate.provider_id: s for s in tradeoff(chosen.candidates, job, ctx.weights)}
    rows = []
    for c, seen in zip(pool, shown, strict=True):
        position, scored = ranked.get(c.provider_id, (None, None))
        # Ranked: where matching places it on its route (waiting for planned visits before it).
        wait, travel = (scored.wait_minutes, scored.travel_minutes) if scored else arrival(c, job, ctx.weights)
        late = faster[c.provider_id].late if c.provider_id in faster else (scored.late if scored else ())
        rows.append({
            "provider_id": c.provider_id, "name": c.name, "rank": position,
            "eta_minutes": eta_minutes(wait + travel), "travel_minutes": round(travel, 1),
            "wait_minutes": round(wait, 1),
            "score": round(scored.cost, 2) if scored else None,
            "components": {k: round(v, 2) for k, v in scored.parts.items()} if scored else None,
            "eligible": scored is not None,
            "reason": why_not(c, job, ctx.weights) or (other_district(request.district, chosen.cross_district)
                                                         if c.provider_id in held_back else None),
            "qualified": request.service.value in c.services, "on_shift": c.on_shift,
            "load": c.active, "pending_offers": seen.pending_offers, "capacity": c.capacity,
            "free_capacity": max(0, seen.free_capacity), "preempts": bool(scored and scored.preempts),
            "visits_with_resident": c.visits_with_resident, "recent_assignments": c.recent_assignments,
            "minutes_left_on_shift": round(c.minutes_left_on_shift, 1) if c.minutes_left_on_shift is not None else None,
            "reachable": c.reachable,
            "location": {"lat": c.location.lat, "lon": c.location.lon},
            "offered_now": pending is not None and pending.provider_id == c.provider_id,
            "assigned": request.provider_id == c.provider_id,
            "cross_district": not serves(c.districts, request.district),
            # Planned visits of its route this request would make late (request id, minutes), as
            # a trade-off (`tradeoff`: held back for them, `tradeoff_eta_minutes` its ETA if chosen)
            # or, for an emergency, who becomes late.
            "late": [{"request_id": rid, "minutes": round(minutes, 1)} for rid, minutes in late],
            "tradeoff": c.provider_id in faster,
            "tradeoff_eta_minutes": faster[c.provider_id].eta_minutes if c.provider_id in faster else None,
        })
    if districts is not None:
        involved = {request.provider_id, pending.provider_id if pending else None} | set(tried)
        rows = [r for r, c in zip(rows, pool, strict=True)
                if c.provider_id in involved or not c.districts or not districts.isdisjoint(c.districts)]
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"] or 0, not r["qualified"], r["eta_minutes"], r["provider_id"]))
    return rows
