"""The providers roster: who is on shift, load, current jobs and pending offers, where they are,
through dispatch's and the directory's Python interfaces."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg

from homecare.auth import audit
from homecare.residents import store as residents
from services.dispatch import interface as dispatch
from services.dispatch.interface import ACTIVE, WITH_PROVIDER, Dispatch

from .board import board_row
from .schematic import layout

SCAN = 1000  # active requests city-wide


def roster(
    conn: psycopg.Connection, ctx: Dispatch, districts: frozenset[str] | None = None,
    routes: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Every provider with its jobs, offers and presence, and the schematic map of providers,
    requests and `routes` (routes_data: each provider's planned stops in order); of `districts`
    (a dispatcher's scope: the providers serving them, their requests; None: all)."""
    active = dispatch.list_requests(conn, sorted(s.value for s in ACTIVE), limit=SCAN, districts=districts)
    people = residents.many(conn, {a["resident_id"] for a in active})
    jobs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for request in active:
        if request["provider_id"] and request["status"] in {s.value for s in WITH_PROVIDER}:
            resident = people.get(request["resident_id"])
            jobs[request["provider_id"]].append(board_row(request, resident.name if resident else None))
    offered: dict[str, int] = defaultdict(int)
    for offer in dispatch.list_offers(conn, None, "pending", limit=SCAN, districts=districts):
        offered[offer["provider_id"]] += 1
    rows = []
    for p in dispatch.list_providers(conn, ctx, districts):
        mine = jobs.get(p["id"], [])
        # A provider of several districts may hold jobs of one the dispatcher does not see: its load
        # counts them (so it does not look free), their details stay out of view.
        load = max(len(mine), p.get("active") or 0) if districts is not None else len(mine)
        rows.append({
            "id": p["id"], "name": p["name"], "services": p["services"], "on_shift": p["on_shift"],
            "capacity": p["capacity"], "load": load, "offers": offered.get(p["id"], 0), "jobs": mine,
            "lat": p["lat"], "lon": p["lon"], "last_seen_at": p["last_seen_at"],
            "state": _state(p["presence"], load, p["capacity"]), "districts": p.get("districts") or [],
            "elsewhere": load - len(mine),  # jobs in districts not in view
        })
    rows.sort(key=lambda r: (not r["on_shift"], -r["load"], r["name"]))
    places = [{
        "id": r["id"], "lat": people[r["resident_id"]].location.lat, "lon": people[r["resident_id"]].location.lon,
        "provider_id": r["provider_id"] if r["status"] in {s.value for s in WITH_PROVIDER} else None,
        "service": r["service"], "status": r["status"], "name": people[r["resident_id"]].name,
    } for r in active if r["resident_id"] in people]
    working = [r for r in rows if r["on_shift"] or r["load"]]
    return {
        "providers": rows, "working": working, "resting": [r for r in rows if r not in working],
        "map": layout(working, places, routes),
        "on_shift": sum(1 for r in rows if r["on_shift"]), "busy": sum(1 for r in rows if r["load"]),
        "unreachable": sum(1 for r in rows if r["state"] == "unreachable"),
    }


def set_shift(conn: psycopg.Connection, ctx: Dispatch, provider_id: str, on_shift: bool, actor: str) -> str:
    """An admin starts or ends a provider's shift (audited in the same transaction); returns the
    provider's name."""
    name = dispatch.set_shift(conn, ctx, provider_id, on_shift)["name"]
    audit.record(conn, actor, "provider.shift_set", f"provider:{provider_id}", {"on_shift": on_shift})
    return name


def _state(presence: str, load: int, capacity: int) -> str:
    if presence != "reachable":
        return presence  # off shift, or on shift with its app gone quiet: no offers go to it
    if load >= capacity:
        return "full"
    return "busy" if load else "free"
