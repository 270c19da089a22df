"""The device-health page: every device of a district with its connection, battery, last self-test
and open faults, those needing someone first; through the directory's, the gateway's and
telemetry's Python interfaces, in four statements for any number of devices."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg

from gateway import interface as registry
from homecare.residents import store as residents
from services.telemetry import interface as telemetry

from .alerts import SEVERITY_ORDER, rule_label
from .beds_data import ago, district_residents

# What a device's self-test column says, worst first; the page sorts by it.
SELFTEST_LABELS = {
    "failed": "Failed", "missed": "Missed", "older_firmware": "No self-test (older firmware)",
    "never_connected": "Never connected", "passed": "Passed",
}
LOW_BATTERY = 0.2  # the battery rule's default threshold: below it the cell is marked


def districts(conn: psycopg.Connection, within: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Every district with residents (of `within`; None: all), by name, with how many."""
    return [{"name": name, "residents": count} for name, count in residents.districts(conn, within).items()]


def district_devices(
    conn: psycopg.Connection, district: str, faults_only: bool = False, now: datetime | None = None,
    within: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Every active device of a district's residents, devices with faults first; NotFound when
    nobody lives in the district, or it is not one of `within` (None: all)."""
    people, truncated = district_residents(conn, district, within)
    names = {r.id: r.name for r in people}
    owned = registry.devices_of_residents(conn, list(names))
    devices = [d for r in people for d in owned.get(r.id, [])]
    ids = [d.id for d in devices]
    tests = telemetry.selftests_of(conn, ids)
    faults = telemetry.open_device_alerts(conn, ids)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    rows = [device_row(d.model_dump(), names[d.resident_id], tests.get(d.id), faults.get(d.id, []), now)
            for d in devices]
    rows.sort(key=lambda row: (row["attention"], row["resident_name"].casefold(), row["device_id"]))
    counts = Counter(row["selftest"] for row in rows)
    shown = [row for row in rows if row["faults"]] if faults_only else rows
    return {
        "district": district, "rows": shown, "total": len(rows), "faults_only": faults_only,
        "with_faults": sum(1 for row in rows if row["faults"]),
        "counts": {key: counts.get(key, 0) for key in SELFTEST_LABELS},
        "without_device": [{"id": r.id, "name": r.name} for r in people if r.id not in owned],
        "truncated": truncated,
    }


def device_row(
    device: Mapping[str, Any], resident_name: str, test: Mapping[str, Any] | None,
    faults: list[Mapping[str, Any]], now: datetime,
) -> dict[str, Any]:
    """One device as the page shows it."""
    state = selftest_state(device, test)
    last_seen = device.get("last_seen")
    battery = device.get("battery")
    return {
        "device_id": device["id"], "kind": str(device["kind"]), "resident_id": device["resident_id"],
        "resident_name": resident_name, "state": device["state"], "fw": device.get("fw"),
        "last_seen": last_seen, "seen_ago": ago(_seconds(now, last_seen)),
        "battery": battery, "battery_low": battery is not None and battery < LOW_BATTERY,
        "selftest": state, "selftest_label": SELFTEST_LABELS[state],
        "selftest_at": test["last_at"] if test else None,
        "selftest_ago": ago(_seconds(now, test["last_at"])) if test else None,
        "failed_checks": list(test["failed"]) if test else [], "misses": test["misses"] if test else 0,
        "selftest_due": test["due_at"] if test else None,
        "faults": [{"id": f["id"], "rule": f["rule"], "label": rule_label(f["rule"]), "severity": f["severity"],
                    "summary": f["summary"]} for f in faults],
        "attention": _attention(state, faults),
    }


def selftest_state(device: Mapping[str, Any], test: Mapping[str, Any] | None) -> str:
    """failed, missed, passed; `older_firmware` for a device that connected but never sent a
    self-test (mqtt-v1.1 is newer than it), `never_connected` for one never seen at all."""
    if test is None:
        return "never_connected" if device["state"] == "never_seen" else "older_firmware"
    if test["misses"]:
        return "missed"
    return "failed" if test["result"] == "fail" else "passed"


def _attention(state: str, faults: list[Mapping[str, Any]]) -> int:
    # A device with an open fault first, gravest first; then self-tests that failed or are
    # missing; older firmware is no fault, but it is shown above devices known to be well.
    if faults:
        return SEVERITY_ORDER.get(str(faults[0]["severity"]), 3)
    return {"failed": 4, "missed": 4, "never_connected": 5, "older_firmware": 6}.get(state, 7)


def _seconds(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(0, int((now - then).total_seconds()))
