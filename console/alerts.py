"""Alerts as the console shows them: labels, order, and which ones are emergencies. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

UNRESOLVED = ("open", "acknowledged")
STATES = ("open", "acknowledged", "resolved")
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
RULE_LABELS = {
    "heart_rate_range": "Heart rate out of range",
    "respiration_rate_range": "Breathing rate out of range",
    "night_bed_exit": "Out of bed at night",
    "fall_suspected": "Suspected fall",
    "no_movement": "No movement in bed",
    "night_heart_rate_baseline": "Night heart rate unusual",
    "night_respiration_rate_baseline": "Night breathing unusual",
    "device_offline": "Device offline",
    "device_silent": "Device silent",
    "battery_low": "Battery low",
    "button_stuck": "Button stuck",
    "device_selftest_failed": "Self-test failed",
    "device_selftest_missed": "Self-test missed",
    "device_never_connected": "Never connected",
}


def rule_label(rule: str) -> str:
    """"fall_suspected" -> "Suspected fall"."""
    return RULE_LABELS.get(rule, rule.replace("_", " ").capitalize())


def is_emergency(alert: Mapping[str, Any]) -> bool:
    """An alert that must interrupt a dispatcher: critical, and nobody has acknowledged it yet."""
    return alert.get("severity") == "critical" and alert.get("state") == "open"


def sort_key(alert: Mapping[str, Any]) -> list[float]:
    """Open before acknowledged, then by severity, then the oldest first (it waited longest)."""
    state = 0 if alert.get("state") == "open" else 1 if alert.get("state") == "acknowledged" else 2
    return [state, SEVERITY_ORDER.get(alert.get("severity") or "", 9), _epoch(alert.get("opened_at"))]


def alert_row(alert: Mapping[str, Any], resident_name: str | None) -> dict[str, Any]:
    """One alert, JSON-ready, as the board and the alerts page show it."""
    return {
        "id": alert["id"],
        "resident_id": alert.get("resident_id"),
        "resident_name": resident_name,
        "device_id": alert.get("device_id"),
        "rule": alert.get("rule"),
        "rule_label": rule_label(alert.get("rule") or ""),
        "category": alert.get("category"),
        "severity": alert.get("severity"),
        "state": alert.get("state"),
        "summary": alert.get("summary"),
        "opened_at": _iso(alert.get("opened_at")),
        "acknowledged_by": alert.get("acknowledged_by"),
        "assignee": alert.get("assignee"),
        "resolved_at": _iso(alert.get("resolved_at")),
        "resolved_by": alert.get("resolved_by"),
        "occurrences": alert.get("occurrences") or 1,
        "emergency": is_emergency(alert),
        # Changes with each re-announcement, so the board sounds again for one nobody acknowledged.
        "alarm_key": f"{alert['id']}#{alert.get('reannounced') or 0}",
        "reannounced": alert.get("reannounced") or 0,
        "shown": alert.get("state") in UNRESOLVED,
        "sort": sort_key(alert),
    }


def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by `sort_key`."""
    return sorted(rows, key=lambda r: r["sort"])


def who(actor: str | None) -> str:
    """"dispatcher:ann" -> "ann"; "system" stays."""
    if not actor:
        return ""
    return actor.partition(":")[2] or actor


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=UTC)
        return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value
