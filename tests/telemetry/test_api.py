"""`GET /api/v1/devices/{id}/vitals` through the real app, auth and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from homecare.api.app import build_app
from homecare.auth import Role, create_user
from homecare.settings import Settings
from services.telemetry.bootstrap import build
from services.telemetry.domain.samples import parse_batches
from services.telemetry.settings import TelemetrySettings
from services.telemetry.store.samples import write_samples
from tests.support import unique

from .helpers import analyse, as_tuples, message, series


@pytest.fixture
def client(pool, broker_url):
    component = build(Settings(mqtt_url=broker_url, instance=unique("api")), pool)
    app = build_app("telemetry", pool, routers=component.routers(), checks=component.checks())
    with TestClient(app) as client:
        yield client


def _token(client, pool, role: Role) -> dict[str, str]:
    username, password = unique("user"), "correct horse battery"
    with pool.connection() as conn:
        create_user(conn, username, password, role, provider_id="prov-1" if role is Role.PROVIDER else None)
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _store(pool, bed: str, samples) -> None:
    with pool.connection() as conn, conn.transaction():
        write_samples(conn, parse_batches(message((bed, "res-api", samples)).dumps()))
    analyse(pool)


def test_vitals_need_a_token_and_a_dispatcher_or_admin(client, pool):
    url = f"/api/v1/devices/{unique('bed')}/vitals"
    response = client.get(url)
    assert response.status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert client.get(url, headers=_token(client, pool, Role.PROVIDER)).status_code == 403
    assert client.get(url, headers=_token(client, pool, Role.CITY)).status_code == 200
    assert client.get(url, headers=_token(client, pool, Role.ADMIN)).status_code == 200


def test_vitals_default_to_the_last_day_at_minute_resolution(client, pool):
    bed = unique("bed")
    now = datetime.now(UTC)
    recent = series(now - timedelta(hours=2), 30, timedelta(seconds=20))  # 10 minutes
    _store(pool, bed, recent + series(now - timedelta(days=3), 5, seed=7))  # outside the day
    response = client.get(f"/api/v1/devices/{bed}/vitals", headers=_token(client, pool, Role.CITY))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["device_id"] == bed and body["resolution"] == "1m"
    end = datetime.fromisoformat(body["end"])
    assert end - datetime.fromisoformat(body["start"]) == timedelta(hours=24)
    assert abs(end - datetime.now(UTC)) < timedelta(minutes=1)
    points = body["points"]
    assert sum(p["samples"] for p in points) == 30
    assert {"ts", "samples", "occupancy", "heart_rate", "heart_rate_min", "movement_max"} <= set(points[0])


def test_raw_vitals_return_the_samples_as_stored(client, pool):
    bed = unique("bed")
    start = datetime(2026, 11, 28, 10, 0, 0, 250000, tzinfo=UTC)
    samples = series(start, 12, seed=11)
    _store(pool, bed, samples)
    response = client.get(
        f"/api/v1/devices/{bed}/vitals",
        params={"start": "2026-11-28T10:00:00Z", "end": "2026-11-28T11:00:00Z", "resolution": "raw"},
        headers=_token(client, pool, Role.CITY),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resolution"] == "raw"
    got = [
        (datetime.fromisoformat(p["ts"]), p["occupied"], p["heart_rate"], p["respiration_rate"], p["movement"])
        for p in body["points"]
    ]
    assert got == as_tuples(samples)


def test_vitals_refuse_bad_ranges_and_resolutions(client, pool):
    headers = _token(client, pool, Role.CITY)
    url = f"/api/v1/devices/{unique('bed')}/vitals"
    backwards = client.get(
        url, params={"start": "2026-11-28T11:00:00Z", "end": "2026-11-28T10:00:00Z"}, headers=headers
    )
    assert backwards.status_code == 422 and "end must be after start" in backwards.json()["detail"]
    assert client.get(url, params={"resolution": "5m"}, headers=headers).status_code == 422


def test_vitals_refuse_more_points_than_a_chart_takes(pool, broker_url):
    component = build(
        Settings(mqtt_url=broker_url, instance=unique("api")), pool, TelemetrySettings(max_points=10)
    )
    app = build_app("telemetry", pool, routers=component.routers())
    bed = unique("bed")
    start = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    _store(pool, bed, series(start, 20))
    with TestClient(app) as client:
        params = {"start": "2026-11-28T10:00:00Z", "end": "2026-11-28T10:01:00Z"}
        headers = _token(client, pool, Role.CITY)
        url = f"/api/v1/devices/{bed}/vitals"
        too_many = client.get(url, params=params | {"resolution": "raw"}, headers=headers)
        assert too_many.status_code == 422 and "more than 10 points" in too_many.json()["detail"]
        auto = client.get(url, params=params, headers=headers)
        assert auto.status_code == 200 and auto.json()["resolution"] == "1m"
        assert [p["samples"] for p in auto.json()["points"]] == [20]
