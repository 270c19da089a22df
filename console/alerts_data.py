"""Alerts through telemetry's Python interface: for the board, the alerts page, and the
dispatcher's acknowledge / assign / resolve."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from homecare.errors import Invalid, NotFound
from homecare.residents import store as residents
from services.telemetry import interface as telemetry

from .alerts import UNRESOLVED, alert_row, ordered

NOTE_MAX = 2000


def unresolved(conn: psycopg.Connection, limit: int, districts: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Open and acknowledged alerts (of `districts`, a dispatcher's scope; None: all), most pressing first."""
    found = telemetry.list_alerts(conn, list(UNRESOLVED), limit=limit, districts=districts)
    return ordered(_rows(conn, found))


def changed(
    conn: psycopg.Connection, alert_ids: Iterable[str], districts: frozenset[str] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows of the changed alerts still to show, ids no longer to show), of `districts` (None:
    all): an alert of another district is left out, its id never named."""
    rows, gone = [], []
    for alert_id in dict.fromkeys(alert_ids):
        try:
            alert = telemetry.get_alert(conn, alert_id)
        except NotFound:
            gone.append(alert_id)
            continue
        if districts is not None and not _of(conn, alert, districts):
            continue
        rows.append(alert)
    shaped = _rows(conn, rows)
    return [r for r in shaped if r["shown"]], gone + [r["id"] for r in shaped if not r["shown"]]


def listing(
    conn: psycopg.Connection, states: list[str] | None, resident_id: str | None = None, limit: int = 200,
    districts: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """Alerts (of `districts`; None: all) for the alerts page or a resident's history, newest first."""
    return _rows(conn, telemetry.list_alerts(conn, states, resident_id, limit, districts=districts))


def detail(conn: psycopg.Connection, alert_id: str, districts: frozenset[str] | None = None) -> dict[str, Any]:
    """One alert with evidence and timeline, plus the row the pages show; NotFound also for one of
    another district than `districts` (None: all)."""
    alert = telemetry.get_alert(conn, alert_id, districts)
    try:  # whom to call, at hand: a device fault may need the resident or their family
        resident = residents.get(conn, alert["resident_id"]) if alert.get("resident_id") else None
    except NotFound:
        resident = None
    return {**alert, "row": _rows(conn, [alert])[0], "resident": resident}


def acknowledge(conn: psycopg.Connection, alert_id: str, districts: frozenset[str] | None, actor: str) -> None:
    """I have seen it and I am on it (NotFound for an alert of another district)."""
    telemetry.get_alert(conn, alert_id, districts)
    telemetry.acknowledge_alert(conn, alert_id, actor)


def assign(
    conn: psycopg.Connection, alert_id: str, districts: frozenset[str] | None, assignee: str, actor: str,
) -> None:
    """Give it to someone (a name, free text: a colleague, a nurse, a family member)."""
    telemetry.get_alert(conn, alert_id, districts)
    assignee = (assignee or "").strip()
    if not assignee:
        raise Invalid("assignee: say who takes care of it")
    telemetry.assign_alert(conn, alert_id, assignee[:200], actor)


def resolve(conn: psycopg.Connection, alert_id: str, districts: frozenset[str] | None, note: str, actor: str) -> None:
    """Close it with a note saying what was done."""
    telemetry.get_alert(conn, alert_id, districts)
    note = (note or "").strip()
    if not note:
        raise Invalid("note: say what was done before resolving")
    telemetry.resolve_alert(conn, alert_id, actor, note[:NOTE_MAX])


def _of(conn: psycopg.Connection, alert: dict[str, Any], districts: frozenset[str]) -> bool:
    """Whether the alert's resident lives in one of the districts."""
    resident_id = alert.get("resident_id")
    return bool(resident_id) and residents.districts_of(conn, [resident_id]).get(resident_id) in districts


def _rows(conn: psycopg.Connection, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = residents.names(conn, (a.get("resident_id") for a in alerts))
    return [alert_row(a, names.get(a.get("resident_id") or "")) for a in alerts]
