"""Alerts made through telemetry's own store (as its rules raise them), never by SQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.telemetry.domain.rules.model import Finding, Rule, Severity
from services.telemetry.store import alerts as store


def raise_alert(pool, resident_id: str, rule: Rule = Rule.FALL, severity: Severity = Severity.CRITICAL,
                device_id: str | None = None, summary: str = "Suspected fall by the bed") -> str:
    """An alert as a rule would raise it; returns its id."""
    device_id = device_id or f"bed-{uuid.uuid4().hex[:8]}"
    finding = Finding(rule=rule, severity=severity, resident_id=resident_id, device_id=device_id,
                      started_at=datetime.now(UTC), summary=summary, occurrence=f"test:{uuid.uuid4().hex}",
                      evidence={"confidence": 0.9, "samples": [{"heart_rate": 80}]})
    with pool.connection() as conn:
        alert_id = store.raise_finding(conn, finding)
    assert alert_id
    return alert_id


def get_alert(pool, alert_id: str) -> dict:
    from services.telemetry import alert_queries

    with pool.connection() as conn:
        return alert_queries.get_alert(conn, alert_id)
