"""Read side of alerts for the console and the API. Stable signatures: other packages call these."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from homecare.errors import Invalid, NotFound
from services.telemetry.domain.lifecycle import STATES
from services.telemetry.store.alerts import CHANGED_CHANNEL

__all__ = ["CHANGED_CHANNEL", "get_alert", "list_alerts"]

# Alerts of residents of some districts (a dispatcher's scope, homecare.auth.Scope).
_OF_DISTRICTS = "resident_id IN (SELECT id FROM registry.residents WHERE district = ANY(%s))"

_COLUMNS = (
    "id, resident_id, device_id, rule, category, severity, state, summary, started_at, opened_at,"
    " acknowledged_at, acknowledged_by, assignee, resolved_at, resolved_by, occurrences, last_occurred_at,"
    " reannounced, reannounced_at"
)


def list_alerts(
    conn: psycopg.Connection,
    states: list[str] | None = None,
    resident_id: str | None = None,
    limit: int = 100,
    category: str | None = None,
    districts: frozenset[str] | None = None,
) -> list[dict]:
    """Alerts, newest first, optionally only in the given states / of one resident / category;
    `districts`: only of residents of these districts (a dispatcher's scope; None: all)."""
    where, params = [], []
    if districts is not None:
        where.append(_OF_DISTRICTS)
        params.append(sorted(districts))
    if states:
        unknown = set(states) - set(STATES)
        if unknown:
            raise Invalid(f"state: unknown value {', '.join(sorted(unknown))}; one of {', '.join(STATES)}")
        where.append("state = ANY(%s)")
        params.append(list(states))
    if resident_id:
        where.append("resident_id = %s")
        params.append(resident_id)
    if category:
        if category not in ("person", "device"):
            raise Invalid("category: one of person, device")
        where.append("category = %s")
        params.append(category)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM telemetry.alerts{clause} ORDER BY opened_at DESC, id LIMIT %s",
            (*params, limit),
        ).fetchall()


def get_alert(conn: psycopg.Connection, alert_id: str, districts: frozenset[str] | None = None) -> dict:
    """One alert with its evidence, resolution note and timeline (oldest first); NotFound otherwise,
    also for an alert of a resident outside `districts` (None: all)."""
    scoped = f" AND {_OF_DISTRICTS}" if districts is not None else ""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS}, evidence, resolution_note FROM telemetry.alerts WHERE id = %s{scoped}",
            (alert_id, *([sorted(districts)] if districts is not None else [])),
        ).fetchone()
        if row is None:
            raise NotFound(f"alert {alert_id} not found")
        row["timeline"] = cur.execute(
            "SELECT at, actor, kind, detail FROM telemetry.alert_events WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        ).fetchall()
    return row


def selftests_of(conn: psycopg.Connection, device_ids: list[str]) -> dict[str, dict]:
    """The latest self-test of each device that ever sent one (mqtt-v1.1), by device id: `last_at`,
    `result`, `failed` checks, `trigger`, `misses` in a row since, `due_at` of the next one. A device
    absent here never sent one: firmware older than v1.1."""
    if not device_ids:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT device_id, last_at, result, failed, trigger, misses, due_at FROM telemetry.device_selftests"
            " WHERE device_id = ANY(%s)",
            (list(device_ids),),
        ).fetchall()
    return {r["device_id"]: r for r in rows}


def open_device_alerts(conn: psycopg.Connection, device_ids: list[str]) -> dict[str, list[dict]]:
    """Each device's unresolved device alerts (offline, silent, battery, self-test, never connected),
    gravest first, by device id."""
    if not device_ids:
        return {}
    out: dict[str, list[dict]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT id, device_id, rule, severity, state, summary, opened_at FROM telemetry.alerts"
            " WHERE category = 'device' AND state <> 'resolved' AND device_id = ANY(%s)"
            " ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low'], severity), opened_at",
            (list(device_ids),),
        ).fetchall()
    for row in rows:
        out.setdefault(row["device_id"], []).append(row)
    return out
