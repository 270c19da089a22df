"""Alerts in the database: raising findings once, system clearances, lifecycle changes.

Data functions: they take a connection and do not commit. Every change NOTIFYs
`telemetry_alert_changed` with the alert id, delivered when the caller commits. An alert opened
queues its notice (homecare/notify) in the same transaction; the routing rules decide who hears.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from homecare.db import notices
from homecare.errors import NotFound
from homecare.notify.model import Notice
from services.telemetry.domain.lifecycle import SYSTEM, AlertState
from services.telemetry.domain.notices import raised
from services.telemetry.domain.rules.model import CATEGORY, SEVERITY_RANK, Category, Clearance, Finding, Rule, Severity
from services.telemetry.store import notices as notice_outbox

CHANGED_CHANNEL = "telemetry_alert_changed"

_OPEN = """
INSERT INTO telemetry.alerts
    (id, resident_id, device_id, rule, category, severity, subject, summary, evidence, started_at)
VALUES (%(id)s, %(resident_id)s, %(device_id)s, %(rule)s, %(category)s, %(severity)s, %(subject)s,
        %(summary)s, %(evidence)s, %(started_at)s)
ON CONFLICT (rule, subject) WHERE state <> 'resolved' DO NOTHING
RETURNING id
"""

_UNRESOLVED = """
SELECT id, severity FROM telemetry.alerts WHERE rule = %s AND subject = %s AND state <> 'resolved' FOR UPDATE
"""


def new_alert_id() -> str:
    """A short random alert id, e.g. `al-3f9a1c2b7d4e`."""
    return f"al-{uuid.uuid4().hex[:12]}"


def subject_of(rule: Rule, resident_id: str, device_id: str | None) -> str:
    """What "one unresolved alert per rule" is counted on: the resident, or the device."""
    if CATEGORY[rule] is Category.DEVICE:
        if not device_id:
            raise ValueError(f"a {rule.value} alert needs a device")
        return device_id
    return resident_id


def notify(conn: psycopg.Connection, alert_id: str) -> None:
    """Tell listeners (the console) that an alert changed, once this transaction commits; dropped
    on rollback."""
    notices.notify(conn, CHANGED_CHANNEL, alert_id)


def add_event(
    conn: psycopg.Connection, alert_id: str, actor: str, kind: str, detail: dict[str, Any] | None = None,
    occurrence: str | None = None, at: datetime | None = None,
) -> bool:
    """Append to an alert's timeline; False when the occurrence is already recorded."""
    row = conn.execute(
        "INSERT INTO telemetry.alert_events (alert_id, actor, kind, detail, occurrence, at)"
        " VALUES (%s, %s, %s, %s, %s, coalesce(%s, now()))"
        " ON CONFLICT (occurrence) DO NOTHING RETURNING id",
        (alert_id, actor, kind, Jsonb(detail or {}), occurrence, at),
    ).fetchone()
    return row is not None


def occurrence_seen(conn: psycopg.Connection, occurrence: str) -> bool:
    """Whether a finding with this occurrence key was already recorded."""
    row = conn.execute("SELECT 1 FROM telemetry.alert_events WHERE occurrence = %s", (occurrence,)).fetchone()
    return row is not None


def raise_finding(conn: psycopg.Connection, finding: Finding) -> str | None:
    """Open an alert for a finding, or record it on the unresolved alert of that rule and
    subject; the alert id, or None when this occurrence was already recorded."""
    if occurrence_seen(conn, finding.occurrence):
        return None
    subject = subject_of(finding.rule, finding.resident_id, finding.device_id)
    for _ in range(3):  # the unresolved alert may be resolved between our two statements
        opened = conn.execute(_OPEN, {
            "id": new_alert_id(), "resident_id": finding.resident_id, "device_id": finding.device_id,
            "rule": finding.rule.value, "category": finding.category.value, "severity": finding.severity.value,
            "subject": subject, "summary": finding.summary, "evidence": Jsonb(finding.evidence),
            "started_at": finding.started_at,
        }).fetchone()
        if opened is not None:
            alert_id = _value(opened)
            add_event(conn, alert_id, SYSTEM, "opened", {"summary": finding.summary}, finding.occurrence)
            notify(conn, alert_id)
            # In the same transaction: the notice to people outside the console is never lost.
            put_notice(conn, raised(alert_id, finding.rule.value, finding.severity.value, finding.resident_id,
                                    finding.summary))
            return alert_id
        existing = conn.execute(_UNRESOLVED, (finding.rule.value, subject)).fetchone()
        if existing is None:
            continue
        alert_id, severity = existing if isinstance(existing, tuple) else (existing["id"], existing["severity"])
        detail = {"summary": finding.summary, "started_at": finding.started_at.isoformat(),
                  "evidence": finding.evidence}
        if not add_event(conn, alert_id, SYSTEM, "recurred", detail, finding.occurrence):
            return None
        conn.execute(
            "UPDATE telemetry.alerts SET occurrences = occurrences + 1, last_occurred_at = now(),"
            " updated_at = now() WHERE id = %s",
            (alert_id,),
        )
        if raises_severity(severity, finding):
            conn.execute(
                "UPDATE telemetry.alerts SET severity = %s, summary = %s, state = 'open' WHERE id = %s",
                (finding.severity.value, finding.summary, alert_id),
            )
            add_event(conn, alert_id, SYSTEM, "escalated", {"from": severity, "to": finding.severity.value,
                                                            "summary": finding.summary})
            # Raised to a graver severity is raised again: the routing rules of that severity apply.
            put_notice(conn, raised(alert_id, finding.rule.value, finding.severity.value, finding.resident_id,
                                    finding.summary))
        notify(conn, alert_id)
        return alert_id
    raise RuntimeError(f"could not raise {finding.occurrence}")


def raises_severity(current: str, finding: Finding) -> bool:
    """Whether a recurrence is graver than the alert it joins (a third missed self-test): the alert
    takes its severity and summary and is open again, so that an acknowledgement of the lesser
    condition does not hide the graver one."""
    return SEVERITY_RANK[finding.severity] > SEVERITY_RANK[Severity(current)]


def clear(conn: psycopg.Connection, clearance: Clearance) -> str | None:
    """Resolve the unresolved device alert a clearance ends (by the system); its id or None."""
    row = conn.execute(
        "UPDATE telemetry.alerts SET state = 'resolved', resolved_at = now(), resolved_by = %s,"
        " resolution_note = %s, updated_at = now()"
        " WHERE rule = %s AND subject = %s AND state <> 'resolved' AND started_at <= %s RETURNING id",
        (SYSTEM, clearance.reason, clearance.rule.value, clearance.device_id, clearance.at),
    ).fetchone()
    if row is None:
        return None
    alert_id = _value(row)
    add_event(conn, alert_id, SYSTEM, "resolved", {"note": clearance.reason, "at": clearance.at.isoformat()})
    notify(conn, alert_id)
    return alert_id


def put_notice(conn: psycopg.Connection, notice: Notice) -> None:
    """Queue a notice about an alert (homecare/notify) in the caller's transaction."""
    notice_outbox.put(conn, notice)


def reannounce_due(
    conn: psycopg.Connection, now: datetime, every: timedelta, severities: list[str], limit: int = 50,
) -> list[dict[str, Any]]:
    """Open alerts of these severities, nobody's yet, not announced for `every`, most overdue
    first, locked."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, resident_id, rule, severity, summary, reannounced FROM telemetry.alerts"
            " WHERE state = 'open' AND assignee IS NULL AND severity = ANY(%s)"
            " AND coalesce(reannounced_at, opened_at) <= %s"
            " ORDER BY coalesce(reannounced_at, opened_at) LIMIT %s FOR UPDATE SKIP LOCKED",
            (severities, now - every, limit),
        ).fetchall()


def mark_reannounced(conn: psycopg.Connection, alert_id: str, at: datetime) -> int:
    """Record one more announcement of an alert; how many there have been."""
    row = conn.execute(
        "UPDATE telemetry.alerts SET reannounced = reannounced + 1, reannounced_at = %s, updated_at = now()"
        " WHERE id = %s RETURNING reannounced",
        (at, alert_id),
    ).fetchone()
    return int(_value(row)) if row else 0


def load_state(conn: psycopg.Connection, alert_id: str) -> AlertState:
    """The lifecycle part of an alert, locked for update; NotFound otherwise."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT id, state, acknowledged_at, acknowledged_by, assignee, resolved_at, resolved_by,"
            " resolution_note FROM telemetry.alerts WHERE id = %s FOR UPDATE",
            (alert_id,),
        ).fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id} not found")
    return AlertState(**row)


def save_state(conn: psycopg.Connection, alert: AlertState) -> None:
    """Store the lifecycle part of an alert."""
    conn.execute(
        "UPDATE telemetry.alerts SET state = %s, acknowledged_at = %s, acknowledged_by = %s, assignee = %s,"
        " resolved_at = %s, resolved_by = %s, resolution_note = %s, updated_at = now() WHERE id = %s",
        (alert.state, alert.acknowledged_at, alert.acknowledged_by, alert.assignee, alert.resolved_at,
         alert.resolved_by, alert.resolution_note, alert.id),
    )


def _value(row: Any) -> Any:
    return row[0] if isinstance(row, tuple) else next(iter(row.values()))
