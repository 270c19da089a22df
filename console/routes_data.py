"""The day's routes as the console shows them (the roster's map and list, the provider's phone
page): each provider's planned visits in order with planned times, window, resident and status,
the visits nobody could take, and the day's last planning run; through dispatch's interface.

Times are shown in the service centre's time zone (`DispatchSettings.plan_timezone`), as plans are
written; the presses a provider holds on top of its route are listed with it as inserted."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from homecare.errors import Invalid, NotFound
from homecare.residents import store as residents
from services.dispatch import interface as dispatch
from services.dispatch.interface import Dispatch

from .board import SERVICE_LABELS

STATUS_LABELS = {"planned": "Planned", "assigned": "Next", "en_route": "On the way", "arrived": "There",
                 "completed": "Done", "cancelled": "Cancelled", "escalated": "Handed back", "open": "Open",
                 "offered": "Offered"}
DONE = frozenset({"completed", "cancelled"})
PLAN_AHEAD_DAYS = 366  # a day to plan is today or within a year: a past day's routes are the record


def chosen_day(ctx: Dispatch, value: str | None) -> date:
    """The day a page asks for (`?day=YYYY-MM-DD`), today when none; Invalid for one that is no date."""
    if not value:
        return dispatch.today_of_plans(ctx)
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise Invalid(f"day: {value[:20]!r} is not a date (YYYY-MM-DD)") from None


def day_routes(
    conn: psycopg.Connection, ctx: Dispatch, day: date, districts: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Every route of `day` (the user's districts), each stop placed (lat, lon of its resident)."""
    found = dispatch.routes_of_day(conn, day, districts)
    zone = ctx.plan_zone
    people = residents.many(conn, {s["resident_id"] for r in found["routes"] for s in r["stops"]}
                     | {s["resident_id"] for s in found["unplanned"]})
    today = day == dispatch.today_of_plans(ctx)
    routes = []
    for route in found["routes"]:
        stops = [stop_row(s, zone, people) for s in route["stops"]]
        routes.append({
            "provider_id": route["provider_id"], "provider_name": route["provider_name"], "stops": stops,
            "presses": [], "late": sum(1 for s in stops if s["late"]),
            "done": sum(1 for s in stops if s["status"] in DONE),
        })
    routes.sort(key=lambda r: (r["provider_name"] or "", r["provider_id"]))
    return {
        "day": day.isoformat(), "today": today, "routes": routes,
        "unplanned": [stop_row(s, zone, people) for s in found["unplanned"]],
        "run": _run(found["run"], zone),
        "visits": sum(len(r["stops"]) for r in routes) + len(found["unplanned"]),
    }


def provider_route(conn: psycopg.Connection, ctx: Dispatch, provider_id: str, day: date) -> dict[str, Any]:
    """One provider's route of `day`, for its phone page (none: no stops)."""
    try:
        found = dispatch.route_of(conn, provider_id, day)
    except NotFound:
        return {"day": day.isoformat(), "stops": []}
    people = residents.many(conn, {s["resident_id"] for s in found["stops"]})
    return {"day": day.isoformat(), "stops": [stop_row(s, ctx.plan_zone, people) for s in found["stops"]]}


def stop_row(stop: dict[str, Any], zone: ZoneInfo, people: dict[str, residents.Resident]) -> dict[str, Any]:
    """One planned visit as pages show it."""
    resident = people.get(stop["resident_id"])
    status = stop.get("status") or ("planned" if stop.get("provider_id") else "unplanned")
    return {
        "key": stop["key"], "seq": stop.get("seq"), "service": stop["service"],
        "service_label": SERVICE_LABELS.get(stop["service"], stop["service"]),
        "resident_id": stop["resident_id"],
        "resident_name": stop.get("resident_name") or (resident.name if resident else stop["resident_id"]),
        "address": resident.address if resident else None,
        "lat": resident.location.lat if resident else None, "lon": resident.location.lon if resident else None,
        "planned_at": local_hhmm(stop.get("planned_start"), zone),
        "arrive_at": local_hhmm(stop.get("planned_arrival"), zone),
        "planned_start": stop.get("planned_start"),
        "window": f"{local_hhmm(stop['window_start'], zone)}–{local_hhmm(stop['window_end'], zone)}",
        "duration_minutes": stop.get("duration_minutes"),
        "travel_minutes": round(stop["travel_minutes"]) if stop.get("travel_minutes") is not None else None,
        "request_id": stop.get("request_id"), "status": status,
        "status_label": STATUS_LABELS.get(status, status.replace("_", " ")),
        "late": bool(stop.get("late_flagged_at") or stop.get("plan_missed_at")),
        "missed": bool(stop.get("plan_missed_at")),
        "reason": stop.get("unplanned_reason"),
    }


def local_hhmm(value: datetime | None, zone: ZoneInfo) -> str:
    """"12:30" in the centre's time zone; "" for none."""
    return value.astimezone(zone).strftime("%H:%M") if isinstance(value, datetime) else ""


def with_presses(routes: dict[str, Any], providers: list[dict[str, Any]]) -> dict[str, Any]:
    """Today's routes with the presses each provider has in hand (the roster's `jobs`, board rows):
    dispatch inserted them into the route, so the provider does them before its next planned visit."""
    if not routes["today"]:
        return routes
    held = {p["id"]: [j for j in p["jobs"] if not j.get("planned")] for p in providers}
    return {**routes, "routes": [{**r, "presses": held.get(r["provider_id"], [])} for r in routes["routes"]]}


def plan_now(conn: psycopg.Connection, ctx: Dispatch, day_text: str, actor: str) -> str:
    """A dispatcher plans (or replans) a day now; what the run found, in words."""
    day = chosen_day(ctx, day_text or None)
    today = dispatch.today_of_plans(ctx)
    if not today <= day <= today + timedelta(days=PLAN_AHEAD_DAYS):  # as `POST /api/v1/plans/{day}`
        raise Invalid(f"day: must be today ({today.isoformat()}) or within a year after it")
    run = dispatch.plan_day_now(conn, ctx, day, actor)
    words = (f"Planned {day.isoformat()}: {run['planned']} of {run['visits']} visits on {run['workers']}"
             f" route{'s' if run['workers'] != 1 else ''}")
    if run["unplanned"]:
        words += f", {run['unplanned']} nobody could take"
    return words + f"; {run['travel_minutes']:.0f} min of travel ({run['solver']}, {run['seconds']:.1f} s)."


def _run(run: dict[str, Any] | None, zone: ZoneInfo) -> dict[str, Any] | None:
    if run is None:
        return None
    return {**run, "ran_at_local": local_hhmm(run["ran_at"], zone)}
