"""`/api/v1/alerts` through the real app, auth and database: listing, reading with evidence,
acknowledge, assign, resolve, 409 on invalid transitions; a resident's alert settings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from homecare.auth import Role
from homecare.residents import store as residents
from services.telemetry.domain.rules.model import Finding, Rule, Severity
from services.telemetry.store import alerts as store
from tests.support import unique

from .api_support import telemetry_client, token


@pytest.fixture
def client(pool, broker_url):
    with telemetry_client(pool, broker_url) as client:
        yield client


@pytest.fixture
def dispatcher(client, pool):
    return token(client, pool, Role.CITY)


def _raise(pool, resident: str, rule: Rule = Rule.HEART_RATE, device: str | None = None) -> str:
    device = device or unique("bed")
    finding = Finding(rule, Severity.HIGH, resident, device, datetime.now(UTC), "heart rate above 120/min",
                      unique("occ"), {"samples": [{"ts": "2026-11-29T03:00:00Z", "heart_rate": 131}]})
    with pool.connection() as conn, conn.transaction():
        return store.raise_finding(conn, finding)


def test_alerts_need_a_dispatcher_or_an_admin(client, pool):
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.get("/api/v1/alerts", headers=token(client, pool, Role.PROVIDER)[0]).status_code == 403
    assert client.get("/api/v1/alerts", headers=token(client, pool, Role.ADMIN)[0]).status_code == 200
    alert_id = _raise(pool, unique("res"))
    provider = token(client, pool, Role.PROVIDER)[0]
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=provider).status_code == 403


def test_list_and_read_an_alert_with_its_evidence(client, pool, dispatcher):
    headers, _ = dispatcher
    resident = unique("res")
    alert_id = _raise(pool, resident)
    listed = client.get("/api/v1/alerts", params={"state": "open", "resident_id": resident}, headers=headers)
    assert listed.status_code == 200
    [row] = listed.json()
    assert {"id", "resident_id", "device_id", "rule", "category", "severity", "state", "opened_at",
            "acknowledged_by", "assignee", "resolved_at"} <= set(row)
    assert (row["id"], row["rule"], row["category"], row["state"]) == (alert_id, "heart_rate_range", "person", "open")
    assert "evidence" not in row
    one = client.get(f"/api/v1/alerts/{alert_id}", headers=headers).json()
    assert one["evidence"]["samples"][0]["heart_rate"] == 131
    assert [e["kind"] for e in one["timeline"]] == ["opened"]
    assert client.get("/api/v1/alerts/al-nothing", headers=headers).status_code == 404
    assert client.get("/api/v1/alerts", params={"state": "closed"}, headers=headers).status_code == 422


def test_the_lifecycle_and_its_conflicts(client, pool, dispatcher):
    headers, username = dispatcher
    resident = unique("res")
    alert_id = _raise(pool, resident)
    url = f"/api/v1/alerts/{alert_id}"
    acked = client.post(f"{url}/acknowledge", headers=headers)
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == ("acknowledged", f"city:{username}")
    again = client.post(f"{url}/acknowledge", headers=headers)
    assert again.status_code == 409 and "only an open alert" in again.json()["detail"]
    assigned = client.post(f"{url}/assign", json={"assignee": "Li Mei"}, headers=headers)
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "Li Mei"
    assert assigned.json()["state"] == "acknowledged"
    assert client.post(f"{url}/assign", json={"assignee": ""}, headers=headers).status_code == 422
    resolved = client.post(f"{url}/resolve", json={"note": "called the family, all well"}, headers=headers)
    body = resolved.json()
    assert resolved.status_code == 200 and body["state"] == "resolved" and body["resolved_at"]
    assert (body["resolved_by"], body["resolution_note"]) == (f"city:{username}", "called the family, all well")
    assert [e["kind"] for e in body["timeline"]] == ["opened", "acknowledged", "assigned", "resolved"]
    assert client.post(f"{url}/resolve", json={"note": "twice"}, headers=headers).status_code == 409
    assert client.post(f"{url}/acknowledge", headers=headers).status_code == 409
    assert client.post(f"{url}/assign", json={"assignee": "Zhang"}, headers=headers).status_code == 409
    assert client.post("/api/v1/alerts/al-nothing/resolve", json={}, headers=headers).status_code == 404
    # Resolved, the rule may raise a new alert for the resident.
    assert _raise(pool, resident) != alert_id
    states = [a["state"] for a in client.get("/api/v1/alerts", params={"resident_id": resident},
                                             headers=headers).json()]
    assert states == ["open", "resolved"]


def test_an_open_alert_can_be_resolved_without_a_note(client, pool, dispatcher):
    alert_id = _raise(pool, unique("res"), Rule.DEVICE_SILENT)
    response = client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=dispatcher[0])
    assert response.status_code == 200 and response.json()["category"] == "device"
    open_ids = [a["id"] for a in client.get("/api/v1/alerts", params={"state": "open,acknowledged"},
                                            headers=dispatcher[0]).json()]
    assert alert_id not in open_ids


def test_a_residents_own_alert_settings(client, pool, dispatcher):
    headers, _ = dispatcher
    body = residents.NewResident(name=f"R {uuid.uuid4().hex[:5]}", address="2 Test Road", district="Xuhui",
                                 location=residents.Location(lat=31.2, lon=121.4))
    with pool.connection() as conn:
        resident = residents.enrol(conn, body).id
    url = f"/api/v1/residents/{resident}/alert-settings"
    first = client.get(url, headers=headers).json()
    assert first["own"]["hr_high"] is None and first["effective"]["hr_high"] == 120
    assert first["effective"]["timezone"] == "Asia/Shanghai" and first["effective"]["night_start"] == "22:00"
    saved = client.put(url, json={"hr_high": 105, "night_start": "21:30", "timezone": "Asia/Urumqi"}, headers=headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["effective"]["hr_high"] == 105 and saved.json()["effective"]["night_start"] == "21:30"
    assert client.get(url, headers=headers).json()["effective"]["timezone"] == "Asia/Urumqi"
    assert client.put(url, json={"timezone": "Mars/Olympus"}, headers=headers).status_code == 422
    assert client.put(url, json={"hr_high": 999}, headers=headers).status_code == 422
    assert client.put(url, json={"hr_low": 130}, headers=headers).status_code == 422  # above hr_high
    assert client.put(url, json={"unknown": 1}, headers=headers).status_code == 422
    assert client.get("/api/v1/residents/nobody/alert-settings", headers=headers).status_code == 404
