"""The alert flows' repositories in memory: the same behaviour as the PostgreSQL ones (the
contract tests in tests/telemetry/test_alert_repositories.py hold both to it), for rule tests
without a database. As in dispatch's: no locks (one caller at a time), no rollback, and `now()`
is the clock given here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from homecare.errors import NotFound
from homecare.notify.model import Notice
from services.telemetry.domain.lifecycle import RESOLVED, SYSTEM, AlertState
from services.telemetry.domain.notices import raised
from services.telemetry.domain.rules.bed_exit import Presence
from services.telemetry.domain.rules.button import ButtonKey
from services.telemetry.domain.rules.device import DeviceStatus
from services.telemetry.domain.rules.episodes import Episode
from services.telemetry.domain.rules.model import Clearance, Finding
from services.telemetry.domain.rules.selftest import SelftestRecord
from services.telemetry.store.alerts import new_alert_id, raises_severity, subject_of

Clock = Callable[[], datetime]


class MemoryAlerts:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.rows: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.occurrences: set[str] = set()
        self.notified: list[str] = []  # what the console would be told, in order
        self.notices: list[Notice] = []  # what the outbox would hold, in order

    def notify(self, conn: Any, alert_id: str) -> None:
        self.notified.append(alert_id)

    def add_event(
        self, conn: Any, alert_id: str, actor: str, kind: str, detail: dict[str, Any] | None = None,
        occurrence: str | None = None, at: datetime | None = None,
    ) -> bool:
        if occurrence is not None:
            if occurrence in self.occurrences:
                return False
            self.occurrences.add(occurrence)
        self.events.append({"alert_id": alert_id, "actor": actor, "kind": kind, "detail": dict(detail or {}),
                            "occurrence": occurrence, "at": at or self.clock()})
        return True

    def _unresolved(self, rule: str, subject: str) -> dict[str, Any] | None:
        return next((a for a in self.rows.values()
                     if a["rule"] == rule and a["subject"] == subject and a["state"] != RESOLVED), None)

    def raise_finding(self, conn: Any, finding: Finding) -> str | None:
        if finding.occurrence in self.occurrences:
            return None
        subject = subject_of(finding.rule, finding.resident_id, finding.device_id)
        existing = self._unresolved(finding.rule.value, subject)
        now = self.clock()
        if existing is None:
            alert_id = new_alert_id()
            self.rows[alert_id] = {
                "id": alert_id, "resident_id": finding.resident_id, "device_id": finding.device_id,
                "rule": finding.rule.value, "category": finding.category.value, "severity": finding.severity.value,
                "subject": subject, "summary": finding.summary, "evidence": dict(finding.evidence),
                "started_at": finding.started_at, "opened_at": now, "state": "open", "acknowledged_at": None,
                "acknowledged_by": None, "assignee": None, "resolved_at": None, "resolved_by": None,
                "resolution_note": None, "occurrences": 1, "last_occurred_at": now,
            }
            self.add_event(conn, alert_id, SYSTEM, "opened", {"summary": finding.summary}, finding.occurrence)
            self.notify(conn, alert_id)
            self.put_notice(conn, raised(alert_id, finding.rule.value, finding.severity.value, finding.resident_id,
                                         finding.summary))
            return alert_id
        detail = {"summary": finding.summary, "started_at": finding.started_at.isoformat(),
                  "evidence": finding.evidence}
        self.add_event(conn, existing["id"], SYSTEM, "recurred", detail, finding.occurrence)
        existing["occurrences"] += 1
        existing["last_occurred_at"] = now
        if raises_severity(existing["severity"], finding):
            self.add_event(conn, existing["id"], SYSTEM, "escalated", {
                "from": existing["severity"], "to": finding.severity.value, "summary": finding.summary})
            existing.update(severity=finding.severity.value, summary=finding.summary, state="open")
            self.put_notice(conn, raised(existing["id"], finding.rule.value, finding.severity.value,
                                         finding.resident_id, finding.summary))
        self.notify(conn, existing["id"])
        return str(existing["id"])

    def put_notice(self, conn: Any, notice: Notice) -> None:
        self.notices.append(notice)

    def reannounce_due(
        self, conn: Any, now: datetime, every: timedelta, severities: list[str], limit: int = 50,
    ) -> list[dict[str, Any]]:
        def last(a: dict[str, Any]) -> datetime:
            at: datetime = a.get("reannounced_at") or a["opened_at"]
            return at
        due = [a for a in self.rows.values() if a["state"] == "open" and not a.get("assignee")
               and a["severity"] in severities and last(a) <= now - every]
        return [dict(a, reannounced=a.get("reannounced", 0)) for a in sorted(due, key=last)[:limit]]

    def mark_reannounced(self, conn: Any, alert_id: str, at: datetime) -> int:
        alert = self.rows[alert_id]
        alert["reannounced"] = alert.get("reannounced", 0) + 1
        alert["reannounced_at"] = at
        return int(alert["reannounced"])

    def clear(self, conn: Any, clearance: Clearance) -> str | None:
        alert = self._unresolved(clearance.rule.value, clearance.device_id)
        if alert is None or alert["started_at"] > clearance.at:
            return None
        alert.update(state=RESOLVED, resolved_at=self.clock(), resolved_by=SYSTEM, resolution_note=clearance.reason)
        detail = {"note": clearance.reason, "at": clearance.at.isoformat()}
        self.add_event(conn, alert["id"], SYSTEM, "resolved", detail)
        self.notify(conn, alert["id"])
        return str(alert["id"])

    def load_state(self, conn: Any, alert_id: str) -> AlertState:
        alert = self.rows.get(alert_id)
        if alert is None:
            raise NotFound(f"alert {alert_id} not found")
        return AlertState(**{k: alert[k] for k in (
            "id", "state", "acknowledged_at", "acknowledged_by", "assignee", "resolved_at", "resolved_by",
            "resolution_note")})

    def save_state(self, conn: Any, alert: AlertState) -> None:
        if alert.id in self.rows:
            self.rows[alert.id].update(
                state=alert.state, acknowledged_at=alert.acknowledged_at, acknowledged_by=alert.acknowledged_by,
                assignee=alert.assignee, resolved_at=alert.resolved_at, resolved_by=alert.resolved_by,
                resolution_note=alert.resolution_note,
            )

    def events_of(self, alert_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["alert_id"] == alert_id]


class MemoryRuleState:
    def __init__(self) -> None:
        self.presences: dict[str, tuple[Presence, datetime | None]] = {}
        self.statuses: dict[str, tuple[DeviceStatus, datetime | None]] = {}
        self.episodes: dict[tuple[str, str], Episode] = {}
        self.button_keys: dict[tuple[str, str], ButtonKey] = {}
        self.selftests: dict[str, SelftestRecord] = {}

    def presence(self, conn: Any, device_id: str, resident_id: str) -> Presence:
        if device_id not in self.presences:  # an empty one; a known bed keeps its resident until saved
            self.presences[device_id] = (Presence(device_id, resident_id), None)
        return self.presences[device_id][0]

    def save_presence(self, conn: Any, value: Presence, due_at: datetime | None) -> None:
        if value.device_id in self.presences:
            self.presences[value.device_id] = (value, due_at)

    def due_presences(self, conn: Any, now: datetime, limit: int = 500) -> list[Presence]:
        due = sorted((due_at, p.device_id) for p, due_at in self.presences.values() if due_at and due_at <= now)
        return [self.presences[device_id][0] for _, device_id in due[:limit]]

    def device_status(self, conn: Any, device_id: str) -> DeviceStatus | None:
        found = self.statuses.get(device_id)
        return found[0] if found else None

    def save_device_status(self, conn: Any, value: DeviceStatus, due_at: datetime | None) -> None:
        self.statuses[value.device_id] = (value, due_at)

    def clear_device_due(self, conn: Any, device_id: str) -> None:
        if device_id in self.statuses:
            self.statuses[device_id] = (self.statuses[device_id][0], None)

    def due_devices(self, conn: Any, now: datetime, limit: int = 500) -> list[DeviceStatus]:
        due = sorted((due_at, s.device_id) for s, due_at in self.statuses.values() if due_at and due_at <= now)
        return [self.statuses[device_id][0] for _, device_id in due[:limit]]

    def button_key(self, conn: Any, device_id: str, service: str) -> ButtonKey | None:
        return self.button_keys.get((device_id, service))

    def save_button_key(self, conn: Any, value: ButtonKey) -> None:
        self.button_keys[(value.device_id, value.service)] = value

    def forget_button_key(self, conn: Any, device_id: str, service: str) -> None:
        self.button_keys.pop((device_id, service), None)

    def due_button_keys(self, conn: Any, now: datetime, limit: int = 500) -> list[ButtonKey]:
        due = sorted(((k.clear_due, key) for key, k in self.button_keys.items() if k.clear_due and k.clear_due <= now))
        return [self.button_keys[key] for _, key in due[:limit]]

    def stuck_keys_left(self, conn: Any, device_id: str) -> int:
        return sum(1 for k in self.button_keys.values() if k.device_id == device_id and k.clear_due is not None)

    def episode(self, conn: Any, rule: str, subject: str) -> Episode | None:
        return self.episodes.get((rule, subject))

    def selftest(self, conn: Any, device_id: str) -> SelftestRecord | None:
        return self.selftests.get(device_id)

    def save_selftest(self, conn: Any, value: SelftestRecord) -> None:
        self.selftests[value.device_id] = value

    def due_selftests(self, conn: Any, now: datetime, limit: int = 500) -> list[SelftestRecord]:
        due = sorted((r.due_at, r.device_id) for r in self.selftests.values() if r.due_at and r.due_at <= now)
        return [self.selftests[device_id] for _, device_id in due[:limit]]

    def save_episode(self, conn: Any, rule: str, subject: str, value: Episode) -> None:
        self.episodes[(rule, subject)] = replace(value)


class MemoryRepositories:
    """The alert flows' repositories in memory (`usecases.ports.Repositories`), on one clock."""

    def __init__(self, clock: Clock) -> None:
        self.alerts = MemoryAlerts(clock)
        self.rule_state = MemoryRuleState()
