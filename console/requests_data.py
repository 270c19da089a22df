"""The request view's data and the dispatcher's actions on a request, through dispatch's, the
directory's and the gateway's Python interfaces (the console owns no tables)."""

from __future__ import annotations

from typing import Any

import psycopg

from gateway import interface as registry
from homecare.auth import User
from homecare.contract.models import Service
from homecare.errors import Invalid, NotFound
from homecare.residents import store as residents
from services.dispatch import interface as dispatch
from services.dispatch.interface import TRANSITIONS, Dispatch, Intake, Status

from .board import SERVICE_LABELS, board_row
from .timeline import describe_all

# Statuses from which the lifecycle allows an assignment (a first one or a reassignment).
ASSIGNABLE = frozenset(s.value for s, to in TRANSITIONS.items() if Status.ASSIGNED in to)
CANCELLABLE = frozenset(s.value for s, to in TRANSITIONS.items() if Status.CANCELLED in to)
NOTE_MAX = 2000


def provider_names(conn: psycopg.Connection) -> dict[str, str]:
    """Every provider's name by id (a roster is small)."""
    return {p["id"]: p["name"] for p in dispatch.list_providers(conn)}


def request_view(
    conn: psycopg.Connection, ctx: Dispatch, request_id: str, districts: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Everything the request page shows; NotFound for an unknown id, or a request of another
    district than `districts` (None: all)."""
    request = dispatch.get_request(conn, request_id, districts)
    names = provider_names(conn)
    try:
        resident = residents.get(conn, request["resident_id"])
    except NotFound:
        resident = None
    status = request["status"]
    return {
        "request": request,
        "row": board_row(request, resident.name if resident else None),
        "resident": resident,
        "devices": registry.devices_of(conn, request["resident_id"]) if resident else [],
        "timeline": describe_all(request["timeline"], names),
        "offers": request["offers"],
        **(candidates(conn, ctx, request, districts) if status in ASSIGNABLE
           else {"candidates": [], "off_shift": 0, "tradeoffs": []}),
        "can_assign": status in ASSIGNABLE,
        "can_cancel": status in CANCELLABLE,
        "others": [r for r in dispatch.open_requests_for(conn, request["resident_id"]) if r["id"] != request_id],
    }


def candidates(
    conn: psycopg.Connection, ctx: Dispatch, request: dict[str, Any], districts: frozenset[str] | None = None,
) -> dict[str, Any]:
    """On-shift providers of the service, best first, with ETA and score (lower is better); those
    that cannot take it now come after, with the reason. How many more are off shift. And the
    trade-offs: faster providers held back because they would make planned visits late."""
    found = [c for c in dispatch.candidates(conn, ctx, request["id"], districts)
             if c["qualified"] and not c["assigned"]]
    shown = [c for c in found if c["on_shift"]]
    for c in shown:  # an emergency goes first: who on its route becomes late
        if c.get("late") and not c.get("tradeoff"):
            c["late_words"] = "makes " + " and ".join(
                f"{_visit_label(conn, v['request_id'])} {max(1, round(v['minutes']))} min late" for v in c["late"])
    return {"candidates": shown, "off_shift": sum(1 for c in found if not c["on_shift"]),
            "tradeoffs": tradeoffs(conn, shown)}


def tradeoffs(conn: psycopg.Connection, shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """"Wang Wei is 6 min sooner but would make meal for Li Hua 12 min late": each provider held
    back for its planned visits that would be sooner than the best one matching allows, with whose
    visit would be late and by how much; the dispatcher decides."""
    best = next((c for c in shown if c["eligible"] and c["rank"] == 1), None)
    out = []
    for c in shown:
        if not c.get("tradeoff") or c.get("tradeoff_eta_minutes") is None:
            continue
        sooner = best["eta_minutes"] - c["tradeoff_eta_minutes"] if best else None
        if sooner is not None and sooner <= 0:
            continue  # not faster than what matching gives: no trade-off to weigh
        late = [{"what": _visit_label(conn, v["request_id"]), "minutes": max(1, round(v["minutes"])),
                 "request_id": v["request_id"]} for v in c["late"]]
        out.append({**c, "sooner_minutes": sooner, "late_visits": late,
                    "summary": _summary(c["name"], sooner, late)})
    out.sort(key=lambda t: t["tradeoff_eta_minutes"])
    return out


def _summary(name: str, sooner: int | None, late: list[dict[str, Any]]) -> str:
    who = " and ".join(f"{v['what']} {v['minutes']} min late" for v in late) or "planned visits late"
    faster = f"is {sooner} min sooner" if sooner is not None else "could go now"
    return f"{name} {faster} but would make {who}"


def _visit_label(conn: psycopg.Connection, request_id: str) -> str:
    """"meal for Li Hua": a planned visit as a dispatcher reads it."""
    try:
        visit = dispatch.get_request(conn, request_id)
    except NotFound:
        return "a planned visit"
    try:
        name = residents.get(conn, visit["resident_id"]).name
    except NotFound:
        name = visit["resident_id"]
    return f"{SERVICE_LABELS.get(visit['service'], visit['service']).lower()} for {name}"


def open_by_phone(
    conn: psycopg.Connection, ctx: Dispatch, resident_id: str, service: str, note: str | None, actor: str,
    districts: frozenset[str] | None = None,
) -> Intake:
    """A caller asks for a service: open a request, or join the one already open. NotFound for a
    resident of another district than `districts` (None: all)."""
    residents.get(conn, resident_id, districts)
    try:
        wanted = Service(service)
    except ValueError:
        raise Invalid(f"service: unknown service {service!r}") from None
    return dispatch.phoned(conn, ctx, resident_id, wanted, _clean(note), actor)


def assign(conn: psycopg.Connection, ctx: Dispatch, request_id: str, provider_id: str, user: User) -> str:
    """Assign or reassign by hand; returns the provider's name for the confirmation. The request
    and the provider must be in the user's view (NotFound otherwise).

    The page offers only providers on shift; one who went off shift meanwhile is refused (409)."""
    dispatch.request_in_scope(conn, request_id, user)
    dispatch.provider_in_scope(conn, provider_id, user)
    actor = dispatch.actor_of(user)
    request = dispatch.assign_manually(conn, ctx, request_id, provider_id, actor, override_shift=False)
    return provider_names(conn).get(request.provider_id or "", provider_id)


def cancel(conn: psycopg.Connection, ctx: Dispatch, request_id: str, reason: str, user: User) -> None:
    """Cancel with a reason the resident's button is told (NotFound for another district's)."""
    dispatch.request_in_scope(conn, request_id, user)
    actor = dispatch.actor_of(user)
    reason = _clean(reason)
    if not reason:
        raise Invalid("reason: say why the request is cancelled")
    dispatch.cancel_request(conn, ctx, request_id, reason, actor)


def add_note(conn: psycopg.Connection, ctx: Dispatch, request_id: str, text: str, user: User) -> None:
    """Write a note into the request's timeline (NotFound for another district's)."""
    dispatch.request_in_scope(conn, request_id, user)
    actor = dispatch.actor_of(user)
    text = _clean(text)
    if not text:
        raise Invalid("note: write something first")
    dispatch.add_note(conn, ctx, request_id, text[:NOTE_MAX], actor)


def _clean(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None
