"""Raising alerts on the real database: one unresolved alert per rule and subject even when
replicas raise at once, each occurrence once, and a NOTIFY with the alert id on every change."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg

from services.telemetry.alert_queries import CHANGED_CHANNEL
from services.telemetry.domain.rules.model import Clearance, Finding, Rule, Severity
from services.telemetry.store import alerts as store
from services.telemetry.usecases import alert_actions as actions
from services.telemetry.usecases.context import Alerting
from tests.support import unique

from .alert_support import alert, alerts_of

NOW = datetime.now(UTC).replace(microsecond=0)


def _finding(resident: str, occurrence: str, rule: Rule = Rule.HEART_RATE, device: str = "bed-x") -> Finding:
    return Finding(rule, Severity.HIGH, resident, device, NOW, f"test {occurrence}", occurrence, {"n": occurrence})


def test_replicas_raising_at_once_leave_one_unresolved_alert_with_every_occurrence(pool):
    resident = unique("res")
    barrier = threading.Barrier(6)
    results: list[str | None] = []

    def raise_one(i: int) -> None:
        with pool.connection() as conn, conn.transaction():
            barrier.wait(10)
            results.append(store.raise_finding(conn, _finding(resident, f"{resident}:{i % 3}")))

    threads = [threading.Thread(target=raise_one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    [only] = alerts_of(pool, resident)
    # Three distinct occurrences, each raised twice: three recorded, three no-ops.
    assert sorted(r is None for r in results) == [False] * 3 + [True] * 3
    detail = alert(pool, only["id"])
    assert detail["occurrences"] == 3
    assert [e["kind"] for e in detail["timeline"]] == ["opened", "recurred", "recurred"]


def test_person_alerts_count_per_resident_and_device_alerts_per_device(pool):
    resident, bed_a, bed_b = unique("res"), unique("bed"), unique("bed")
    with pool.connection() as conn, conn.transaction():
        store.raise_finding(conn, _finding(resident, unique("o"), device=bed_a))
        store.raise_finding(conn, _finding(resident, unique("o"), device=bed_b))  # same person: same alert
        store.raise_finding(conn, _finding(resident, unique("o"), Rule.RESPIRATION_RATE))
        store.raise_finding(conn, _finding(resident, unique("o"), Rule.DEVICE_SILENT, device=bed_a))
        store.raise_finding(conn, _finding(resident, unique("o"), Rule.DEVICE_SILENT, device=bed_b))
    rules = sorted((a["rule"], a["category"], a["occurrences"]) for a in alerts_of(pool, resident))
    assert rules == [("device_silent", "device", 1), ("device_silent", "device", 1),
                     ("heart_rate_range", "person", 2), ("respiration_rate_range", "person", 1)]


def test_every_change_notifies_the_alert_id_at_commit(pool, database_url):
    resident, bed = unique("res"), unique("bed")
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANGED_CHANNEL}")
        with pool.connection() as conn, conn.transaction():
            alert_id = store.raise_finding(conn, _finding(resident, unique("o"), Rule.DEVICE_OFFLINE, bed))
        with pool.connection() as conn, conn.transaction():
            actions.acknowledge(conn, Alerting(), alert_id, "dispatcher:a")
        with pool.connection() as conn, conn.transaction():
            actions.assign(conn, Alerting(), alert_id, "Li Mei", "dispatcher:a")
        with pool.connection() as conn, conn.transaction():
            store.clear(conn, Clearance(Rule.DEVICE_OFFLINE, bed, NOW + timedelta(minutes=1), "back online"))
        try:  # a rolled back change notifies nothing
            with pool.connection() as conn, conn.transaction():
                store.raise_finding(conn, _finding(resident, unique("o"), Rule.DEVICE_SILENT, bed))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        got = [n.payload for n in listener.notifies(timeout=2, stop_after=5)]
    assert got == [alert_id] * 4
    detail = alert(pool, alert_id)
    assert (detail["state"], detail["acknowledged_by"], detail["assignee"], detail["resolved_by"]) == (
        "resolved", "dispatcher:a", "Li Mei", "system")
    assert [e["kind"] for e in detail["timeline"]] == ["opened", "acknowledged", "assigned", "resolved"]
