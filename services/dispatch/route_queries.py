"""Read side of care plans and routes, for the API and the console: a resident's plans, a day's
routes (every provider's stops in order, with planned times, window, resident, and the request
carrying each once released), one provider's route, the day's planning runs."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

import psycopg
from psycopg.rows import dict_row

from homecare.errors import NotFound
from homecare.residents import store as residents

from .domain.plans import CarePlan
from .domain.routes import PlanRun, plan_fields
from .store import plans as plan_store
from .store import providers

# The provider a stop is with: the request's once released (a dispatcher may have reassigned it;
# a request handed back has none and stays on the planned route), else the planned one.
_WITH = "coalesce(r.provider_id, v.provider_id)"
_STOP = (
    f"SELECT v.key, v.plan_id, v.day, v.resident_id, res.name AS resident_name, v.district, v.service,"
    f" {_WITH} AS provider_id, p.name AS provider_name, v.provider_id AS planned_provider_id, v.seq,"
    " v.planned_arrival, v.planned_start,"
    " v.earliest AS window_start, v.latest AS window_end, v.duration AS duration_minutes, v.travel_minutes,"
    " v.request_id, r.status, r.en_route_at, r.arrived_at, r.completed_at, r.late_flagged_at,"
    " r.plan_missed_at, v.released_at, v.unplanned_reason"
    " FROM dispatch.planned_visits v"
    " LEFT JOIN dispatch.requests r ON r.id = v.request_id"
    f" LEFT JOIN dispatch.providers p ON p.id = {_WITH}"
    " LEFT JOIN registry.residents res ON res.id = v.resident_id"
)


def plan_dict(plan: CarePlan) -> dict[str, Any]:
    """A care plan as the API and the console show it."""
    return {"id": plan.id, "resident_id": plan.resident_id, **plan_fields(plan), "active": plan.active,
            "pauses": [asdict(p) for p in plan.pauses]}


def run_dict(run: PlanRun) -> dict[str, Any]:
    return asdict(run)


def care_plans_of(conn: psycopg.Connection, resident_id: str) -> list[dict[str, Any]]:
    """A resident's care plans, active first."""
    return [plan_dict(p) for p in plan_store.of_resident(conn, resident_id)]


def care_plan(conn: psycopg.Connection, plan_id: str, districts: frozenset[str] | None = None) -> dict[str, Any]:
    """One care plan (NotFound, also for a plan of a resident outside `districts`; None: all)."""
    plan = plan_dict(plan_store.get(conn, plan_id))
    if districts is not None and residents.districts_of(conn, [plan["resident_id"]]).get(plan["resident_id"]) \
            not in districts:
        raise NotFound(f"care plan {plan_id} not found")
    return plan


def _stops(conn: psycopg.Connection, where: str, params: tuple) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"{_STOP} WHERE {where} ORDER BY {_WITH} NULLS LAST, coalesce(v.planned_start, v.earliest), v.seq,"
            " v.key", params
        ).fetchall()


def routes_of_day(
    conn: psycopg.Connection, day: date, districts: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Every route of a day: `routes` (provider, its stops in order), `unplanned` (with the
    reason), `run` (the latest planning run, or None). `districts`: only visits of residents in
    them (None: all)."""
    where, params = "v.day = %s", [day]
    if districts is not None:
        where += " AND v.district = ANY(%s)"
        params.append(sorted(districts))
    rows = _stops(conn, where, tuple(params))
    routes: dict[str, dict[str, Any]] = {}
    unplanned = []
    for row in rows:
        if row["provider_id"] is None:
            unplanned.append(row)
            continue
        route = routes.setdefault(row["provider_id"], {
            "provider_id": row["provider_id"], "provider_name": row["provider_name"], "stops": [],
        })
        route["stops"].append(row)
    runs = plan_store.runs(conn, day, 1)
    return {"day": day, "routes": list(routes.values()), "unplanned": unplanned,
            "run": run_dict(runs[0]) if runs else None}


def route_of(
    conn: psycopg.Connection, provider_id: str, day: date, districts: frozenset[str] | None = None,
) -> dict[str, Any]:
    """One provider's route of a day (NotFound for an unknown provider): the visits planned for it,
    and those reassigned to it since, by planned start; not those reassigned away. `districts`:
    only its visits to residents of these (a dispatcher's scope; None: all)."""
    provider = providers.get(conn, provider_id)
    where, params = f"v.day = %s AND {_WITH} = %s", [day, provider_id]
    if districts is not None:
        where += " AND v.district = ANY(%s)"
        params.append(sorted(districts))
    return {"day": day, "provider_id": provider_id, "provider_name": provider["name"],
            "stops": _stops(conn, where, tuple(params))}


def plan_runs(conn: psycopg.Connection, day: date, limit: int = 20) -> list[dict[str, Any]]:
    """The planning runs of a day, newest first."""
    return [run_dict(r) for r in plan_store.runs(conn, day, limit)]
