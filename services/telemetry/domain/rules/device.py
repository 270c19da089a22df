"""Device alerts: offline (after a grace time), silent, low battery, never connected. Kept apart
from alerts about the person; they close themselves when the condition ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Clearance, Finding, Rule, Severity, iso


@dataclass(frozen=True)
class DeviceStatus:
    """The latest liveness the gateway announced for a device."""

    device_id: str
    resident_id: str
    kind: str
    state: str  # online | offline | silent
    at: datetime
    battery: float | None = None


Outcome = Finding | Clearance


def is_newer(previous: DeviceStatus | None, status: DeviceStatus) -> bool:
    """Whether an announcement is newer than what is known (repeats and stale ones are not)."""
    return previous is None or status.at > previous.at


def on_status(status: DeviceStatus, limits: RuleLimits) -> list[Outcome]:
    """What a new liveness announcement concludes at once (offline waits for due())."""
    out: list[Outcome] = []
    if status.state == "online":  # a device that never connected comes online first
        out += [Clearance(Rule.DEVICE_OFFLINE, status.device_id, status.at, "back online"),
                Clearance(Rule.NEVER_CONNECTED, status.device_id, status.at, "connected"),
                Clearance(Rule.DEVICE_SILENT, status.device_id, status.at, "reporting again")]
    elif status.state == "silent":
        out.append(_finding(Rule.DEVICE_SILENT, Severity.MEDIUM, status, "stopped reporting", status.at,
                            {"state": status.state, "at": iso(status.at)}))
    if status.battery is not None:
        out += battery(status, status.battery, status.at, limits, {"source": "status"})
    return out


def due_at(status: DeviceStatus, limits: RuleLimits) -> datetime | None:
    """When an offline device becomes an alert, if it stays offline."""
    if status.state != "offline":
        return None
    return status.at + timedelta(seconds=limits.offline_grace_s)


def due(status: DeviceStatus, now: datetime, limits: RuleLimits) -> Finding | None:
    """The offline alert, when the device is still offline after the grace time."""
    when = due_at(status, limits)
    if when is None or now < when:
        return None
    minutes = int((now - status.at).total_seconds() // 60)
    return _finding(Rule.DEVICE_OFFLINE, Severity.MEDIUM, status, f"offline for {minutes} minutes", status.at,
                    {"state": status.state, "at": iso(status.at), "grace_s": limits.offline_grace_s})


def never_connected(status: DeviceStatus, provisioned_at: datetime, now: datetime, after: timedelta) -> Finding | None:
    """A device provisioned `after` ago (a day by default) that has never connected: still in its
    box, unplugged, or with wrong credentials; someone has to go and look. `status.at` is unused."""
    if now - provisioned_at < after:
        return None
    hours = int((now - provisioned_at).total_seconds() // 3600)
    return _finding(Rule.NEVER_CONNECTED, Severity.MEDIUM, status, f"never connected ({hours} h since provisioning)",
                    provisioned_at, {"provisioned_at": iso(provisioned_at), "after_h": after.total_seconds() / 3600})


def battery(
    status: DeviceStatus, level: float, at: datetime, limits: RuleLimits, evidence: dict[str, Any]
) -> list[Outcome]:
    """Low battery below the threshold; cleared once above the (higher) recovery level."""
    if level < limits.battery_low_below:
        return [low_battery(status, level, at, {**evidence, "below": limits.battery_low_below})]
    if level >= limits.battery_ok_above:
        return [Clearance(Rule.BATTERY_LOW, status.device_id, at, f"battery at {level:.0%}")]
    return []


def low_battery(status: DeviceStatus, level: float | None, at: datetime, evidence: dict[str, Any]) -> Finding:
    """The low-battery alert (a `battery.low` event always is one: the device's own threshold)."""
    what = "battery low" if level is None else f"battery at {level:.0%}"
    return _finding(Rule.BATTERY_LOW, Severity.LOW, status, what, at, {**evidence, "battery": level})


def _finding(rule: Rule, severity: Severity, status: DeviceStatus, what: str, since: datetime,
             evidence: dict[str, Any]) -> Finding:
    return Finding(
        rule=rule, severity=severity, resident_id=status.resident_id, device_id=status.device_id,
        started_at=since, summary=f"{status.kind} {status.device_id} {what}",
        occurrence=f"{rule.value}:{status.device_id}:{iso(since)}",
        evidence={"device_id": status.device_id, "kind": status.kind, **evidence},
    )
