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


def unresolved(conn: psycopg.Connection, limit: int) -> list[dict[str, Any]]:
    """Open and acknowledged alerts, most pressing first."""
    found = telemetry.list_alerts(conn, list(UNRESOLVED), limit=limit)
    return ordered(_rows(conn, found))


def changed(conn: psycopg.Connection, alert_ids: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows of the changed alerts still to show, ids no longer to show)."""
    rows, gone = [], []
    for alert_id in dict.fromkeys(alert_ids):
        try:
            alert = telemetry.get_alert(conn, alert_id)
        except NotFound:
            gone.append(alert_id)
            continue
        rows.append(alert)
    shaped = _rows(conn, rows)
    return [r for r in shaped if r["shown"]], gone + [r["id"] for r in shaped if not r["shown"]]


def listing(
    conn: psycopg.Connection, states: list[str] | None, resident_id: str | None = None, limit: int = 200,
) -> list[dict[str, Any]]:
    """Alerts for the alerts page or a resident's history, newest first."""
    return _rows(conn, telemetry.list_alerts(conn, states, resident_id, limit))


def detail(conn: psycopg.Connection, alert_id: str) -> dict[str, Any]:
    """One alert with evidence and timeline, plus the row the pages show."""
    alert = telemetry.get_alert(conn, alert_id)
    try:  # whom to call, at hand: a device fault may need the resident or their family
        resident = residents.get(conn, alert["resident_id"]) if alert.get("resident_id") else None
    except NotFound:
        resident = None
    return {**alert, "row": _rows(conn, [alert])[0], "resident": resident}


def acknowledge(conn: psycopg.Connection, alert_id: str, actor: str) -> None:
    """I have seen it and I am on it."""
    telemetry.acknowledge_alert(conn, alert_id, actor)


def assign(conn: psycopg.Connection, alert_id: str, assignee: str, actor: str) -> None:
    """Give it to someone (a name, free text: a colleague, a nurse, a family member)."""
    assignee = (assignee or "").strip()
    if not assignee:
        raise Invalid("assignee: say who takes care of it")
    telemetry.assign_alert(conn, alert_id, assignee[:200], actor)


def resolve(conn: psycopg.Connection, alert_id: str, note: str, actor: str) -> None:
    """Close it with a note saying what was done."""
    note = (note or "").strip()
    if not note:
        raise Invalid("note: say what was done before resolving")
    telemetry.resolve_alert(conn, alert_id, actor, note[:NOTE_MAX])


def _rows(conn: psycopg.Connection, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = residents.names(conn, (a.get("resident_id") for a in alerts))
    return [alert_row(a, names.get(a.get("resident_id") or "")) for a in alerts]
