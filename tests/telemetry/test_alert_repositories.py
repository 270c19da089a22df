"""The alert flows' repositories: PostgreSQL (the store's `alerts` and `rule_state` modules) and
memory (store.memory) behave alike. Each test runs on both; on PostgreSQL in one transaction that
is rolled back at the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg.rows import dict_row

from homecare.errors import NotFound
from services.telemetry.domain.rules.bed_exit import Presence
from services.telemetry.domain.rules.device import DeviceStatus
from services.telemetry.domain.rules.episodes import Episode
from services.telemetry.domain.rules.model import Clearance, Finding, Rule, Severity
from services.telemetry.domain.rules.selftest import SelftestRecord
from services.telemetry.store.memory import MemoryRepositories
from services.telemetry.usecases.context import PostgresRepositories
from services.telemetry.usecases.ports import Repositories


@dataclass
class Store:
    repos: Repositories
    tx: Any


@pytest.fixture(params=["memory", "postgres"])
def store(request) -> Iterator[Store]:
    if request.param == "memory":
        yield Store(MemoryRepositories(lambda: datetime.now(UTC)), None)
        return
    pool = request.getfixturevalue("pool")
    with pool.connection() as conn:
        try:
            yield Store(PostgresRepositories(), conn)
        finally:
            conn.rollback()


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _finding(rule: Rule, resident: str, device: str | None, at: datetime, occurrence: str) -> Finding:
    return Finding(rule, Severity.HIGH, resident, device, at, f"{rule.value} test", occurrence, {"k": 1})


def test_a_finding_opens_one_alert_per_rule_and_subject_and_an_occurrence_counts_once(store):
    resident, bed, at = _id("res"), _id("bed"), datetime.now(UTC) - timedelta(minutes=5)
    alerts = store.repos.alerts
    first = alerts.raise_finding(store.tx, _finding(Rule.NIGHT_BED_EXIT, resident, bed, at, f"o1-{bed}"))
    assert first is not None
    assert alerts.raise_finding(store.tx, _finding(Rule.NIGHT_BED_EXIT, resident, bed, at, f"o1-{bed}")) is None
    again = alerts.raise_finding(store.tx, _finding(Rule.NIGHT_BED_EXIT, resident, bed, at, f"o2-{bed}"))
    assert again == first  # recurred on the unresolved alert
    other = alerts.raise_finding(store.tx, _finding(Rule.FALL, resident, bed, at, f"o3-{bed}"))
    assert other not in (None, first)
    state = alerts.load_state(store.tx, first)
    assert (state.id, state.state) == (first, "open")
    alerts.save_state(store.tx, replace(state, state="resolved", resolved_by="d", resolved_at=at))
    reopened = alerts.raise_finding(store.tx, _finding(Rule.NIGHT_BED_EXIT, resident, bed, at, f"o4-{bed}"))
    assert reopened not in (None, first)  # the old one is resolved: a new alert
    with pytest.raises(NotFound):
        alerts.load_state(store.tx, "al-none")


def test_a_clearance_resolves_the_device_alert_it_ends_and_no_older(store):
    resident, bed, at = _id("res"), _id("bed"), datetime.now(UTC) - timedelta(minutes=5)
    alerts = store.repos.alerts
    opened = alerts.raise_finding(store.tx, _finding(Rule.DEVICE_OFFLINE, resident, bed, at, f"o-{bed}"))
    assert alerts.clear(store.tx, Clearance(Rule.DEVICE_OFFLINE, bed, at - timedelta(minutes=1), "early")) is None
    assert alerts.clear(store.tx, Clearance(Rule.DEVICE_SILENT, bed, at, "other rule")) is None
    assert alerts.clear(store.tx, Clearance(Rule.DEVICE_OFFLINE, bed, at + timedelta(minutes=1), "back")) == opened
    state = alerts.load_state(store.tx, opened)
    assert (state.state, state.resolved_by, state.resolution_note) == ("resolved", "system", "back")
    assert alerts.clear(store.tx, Clearance(Rule.DEVICE_OFFLINE, bed, at + timedelta(minutes=2), "again")) is None


def test_events_with_an_occurrence_are_kept_once(store):
    resident, bed = _id("res"), _id("bed")
    opened = store.repos.alerts.raise_finding(
        store.tx, _finding(Rule.FALL, resident, bed, datetime.now(UTC), f"o-{bed}"))
    assert store.repos.alerts.add_event(store.tx, opened, "d", "note", {"text": "x"}, occurrence=f"n-{bed}")
    assert not store.repos.alerts.add_event(store.tx, opened, "d", "note", {"text": "x"}, occurrence=f"n-{bed}")
    assert store.repos.alerts.add_event(store.tx, opened, "d", "note")
    store.repos.alerts.notify(store.tx, opened)


def test_bed_presence_and_its_timer(store):
    bed, resident, now = _id("bed"), _id("res"), datetime.now(UTC)
    state = store.repos.rule_state
    empty = state.presence(store.tx, bed, resident)
    assert empty == Presence(bed, resident)
    out = replace(empty, exited_at=now - timedelta(minutes=40))
    state.save_presence(store.tx, out, now - timedelta(minutes=10))
    assert state.presence(store.tx, bed, "res-other") == out  # a known bed keeps what it had
    assert out in state.due_presences(store.tx, now, 10_000)
    assert out not in state.due_presences(store.tx, now - timedelta(minutes=20), 10_000)
    state.save_presence(store.tx, out, None)
    assert out not in state.due_presences(store.tx, now, 10_000)


def test_device_status_and_its_offline_timer(store):
    device, now = _id("btn"), datetime.now(UTC)
    state = store.repos.rule_state
    assert state.device_status(store.tx, device) is None
    offline = DeviceStatus(device, _id("res"), "button", "offline", now, 0.5)
    state.save_device_status(store.tx, offline, now + timedelta(minutes=5))
    assert state.device_status(store.tx, device) == offline
    assert offline not in state.due_devices(store.tx, now, 10_000)
    assert offline in state.due_devices(store.tx, now + timedelta(minutes=5), 10_000)
    state.clear_device_due(store.tx, device)
    assert offline not in state.due_devices(store.tx, now + timedelta(hours=1), 10_000)
    online = replace(offline, state="online", at=now + timedelta(minutes=1), battery=None)
    state.save_device_status(store.tx, online, None)
    assert state.device_status(store.tx, device) == online


def test_episodes_are_kept_per_rule_and_subject(store):
    bed, now = _id("bed"), datetime.now(UTC)
    state = store.repos.rule_state
    assert state.episode(store.tx, "heart_rate_range", bed) is None
    state.save_episode(store.tx, "heart_rate_range", bed, Episode(now, now))
    later = Episode(now, now + timedelta(minutes=3))
    state.save_episode(store.tx, "heart_rate_range", bed, later)
    assert state.episode(store.tx, "heart_rate_range", bed) == later
    assert state.episode(store.tx, "no_movement", bed) is None


def test_button_keys_round_trip_come_due_per_key_and_are_forgotten(store):
    from homecare.buttons import PressRun
    from services.telemetry.domain.rules.button import ButtonKey

    device, t0 = _id("btn"), datetime(2026, 12, 4, 9, 0, 0, 250000, tzinfo=UTC)
    assert store.repos.rule_state.button_key(store.tx, device, "meal") is None
    young = ButtonKey(device, "meal", "res-1", PressRun(t0, t0 + timedelta(seconds=2), 9), "e9")
    store.repos.rule_state.save_button_key(store.tx, young)
    assert store.repos.rule_state.button_key(store.tx, device, "meal") == young
    assert store.repos.rule_state.stuck_keys_left(store.tx, device) == 0
    due = t0 + timedelta(minutes=1)
    stuck = ButtonKey(device, "meal", "res-1", PressRun(t0, t0 + timedelta(seconds=6), 25, t0 + timedelta(seconds=5)),
                      "e25", due)
    store.repos.rule_state.save_button_key(store.tx, stuck)
    other = replace(stuck, service="bathing", clear_due=due + timedelta(minutes=5))
    store.repos.rule_state.save_button_key(store.tx, other)
    assert store.repos.rule_state.button_key(store.tx, device, "meal") == stuck
    assert store.repos.rule_state.stuck_keys_left(store.tx, device) == 2

    def mine(at: datetime) -> list:
        return [k for k in store.repos.rule_state.due_button_keys(store.tx, at) if k.device_id == device]

    assert mine(due - timedelta(seconds=1)) == []
    assert mine(due) == [stuck]
    store.repos.rule_state.forget_button_key(store.tx, device, "meal")
    assert store.repos.rule_state.button_key(store.tx, device, "meal") is None
    assert store.repos.rule_state.stuck_keys_left(store.tx, device) == 1
    assert mine(due + timedelta(minutes=10)) == [other]
def test_self_tests_and_their_deadline(store):
    device, now = _id("btn"), datetime.now(UTC).replace(microsecond=0)
    state = store.repos.rule_state
    assert state.selftest(store.tx, device) is None  # never sent one: older firmware
    failed = SelftestRecord(device, _id("res"), "button", now, "fail", ("battery", "speaker"), "schedule", 0,
                            now + timedelta(hours=26))
    state.save_selftest(store.tx, failed)
    assert state.selftest(store.tx, device) == failed
    assert failed not in state.due_selftests(store.tx, now + timedelta(hours=25), 10_000)
    assert failed in state.due_selftests(store.tx, now + timedelta(hours=26), 10_000)
    missed = replace(failed, misses=1, due_at=now + timedelta(hours=50))
    state.save_selftest(store.tx, missed)
    assert state.selftest(store.tx, device) == missed
    assert missed not in state.due_selftests(store.tx, now + timedelta(hours=26), 10_000)


def test_a_graver_recurrence_raises_the_alert_and_opens_it_again(store):
    resident, device, at = _id("res"), _id("btn"), datetime.now(UTC) - timedelta(hours=3)
    alerts = store.repos.alerts
    medium = Finding(Rule.SELFTEST_MISSED, Severity.MEDIUM, resident, device, at, "missed one", f"m1-{device}")
    alert_id = alerts.raise_finding(store.tx, medium)
    alerts.save_state(store.tx, replace(alerts.load_state(store.tx, alert_id), state="acknowledged",
                                        acknowledged_by="d1", acknowledged_at=at))
    same = replace(medium, occurrence=f"m2-{device}", summary="missed two")
    assert alerts.raise_finding(store.tx, same) == alert_id
    assert alerts.load_state(store.tx, alert_id).state == "acknowledged"  # no graver: as it was
    high = replace(medium, severity=Severity.HIGH, occurrence=f"m3-{device}", summary="missed three: call")
    assert alerts.raise_finding(store.tx, high) == alert_id
    assert alerts.load_state(store.tx, alert_id).state == "open"
    row = _row(store, alert_id)
    assert (row["severity"], row["summary"]) == ("high", "missed three: call")
    lower = replace(medium, occurrence=f"m4-{device}", summary="missed four?")
    alerts.raise_finding(store.tx, lower)
    assert _row(store, alert_id)["severity"] == "high"  # never lowered by a lesser recurrence


def _row(store: Store, alert_id: str) -> dict[str, Any]:
    if store.tx is None:
        return store.repos.alerts.rows[alert_id]  # type: ignore[attr-defined]
    with store.tx.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT severity, summary FROM telemetry.alerts WHERE id = %s", (alert_id,)).fetchone()
