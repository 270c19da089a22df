"""Provider presence over HTTP on PostgreSQL: the heartbeat endpoint (and what it refuses), the
providers list saying who is unreachable, and matching passing a quiet provider by, with the
reason on the candidates list. The clock of the API's context is moved, not waited for."""

from datetime import UTC, datetime, timedelta

import pytest

from homecare.auth import Role
from services.dispatch.api import build_router
from services.dispatch.usecases.context import Dispatch

from .harness import api_client, new_provider, new_resident, pending_offer, token_for


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock():
    return Clock(datetime.now(UTC))


@pytest.fixture
def client(pool, clean, clock):
    return api_client(pool, build_router(Dispatch(clock=clock)))


def listed(client, pool, provider_id: str) -> dict:
    rows = client.get("/api/v1/providers", headers=token_for(pool, Role.CITY)).json()
    return next(p for p in rows if p["id"] == provider_id)


def test_a_quiet_provider_is_unreachable_gets_no_offer_and_is_back_with_its_heartbeat(pool, client, clock):
    near, far = new_provider(pool, km=1), new_provider(pool, km=3)
    near_app, far_app = token_for(pool, Role.PROVIDER, near["id"]), token_for(pool, Role.PROVIDER, far["id"])
    assert listed(client, pool, near["id"])["presence"] == "reachable"  # registered on shift: alive

    clock.at += timedelta(minutes=3, seconds=30)  # nobody has been heard from since
    r = client.post(f"/api/v1/providers/{far['id']}/heartbeat", headers=far_app)
    assert r.status_code == 200, r.text
    assert r.json()["presence"] == "reachable" and r.json()["last_seen_at"] == clock.at.isoformat().replace(
        "+00:00", "Z")
    quiet = listed(client, pool, near["id"])
    assert quiet["presence"] == "unreachable" and quiet["on_shift"] is True

    dispatcher = token_for(pool, Role.CITY)
    request = client.post("/api/v1/requests", json={"resident_id": new_resident(pool), "service": "meal"},
                          headers=dispatcher).json()
    assert pending_offer(request)["provider_id"] == far["id"]  # the nearer one is passed by
    candidates = {c["provider_id"]: c for c in client.get(
        f"/api/v1/requests/{request['id']}/candidates", headers=dispatcher).json()}
    assert candidates[near["id"]]["reason"] == "unreachable: its app has gone quiet"
    assert candidates[near["id"]]["reachable"] is False and candidates[far["id"]]["reachable"] is True

    assert client.post(f"/api/v1/providers/{near['id']}/heartbeat", headers=near_app, json={}).status_code == 200
    assert listed(client, pool, near["id"])["presence"] == "reachable"
    candidates = {c["provider_id"]: c for c in client.get(
        f"/api/v1/requests/{request['id']}/candidates", headers=dispatcher).json()}
    assert candidates[near["id"]]["reason"] is None


def test_answering_an_offer_counts_as_a_sign_of_life(pool, client, clock):
    carer = new_provider(pool, km=1)
    app = token_for(pool, Role.PROVIDER, carer["id"])
    clock.at += timedelta(minutes=2)
    request = client.post("/api/v1/requests", json={"resident_id": new_resident(pool), "service": "meal"},
                          headers=token_for(pool, Role.CITY)).json()
    clock.at += timedelta(seconds=30)
    r = client.post(f"/api/v1/offers/{pending_offer(request)['id']}/accept", headers=app)
    assert r.status_code == 200, r.text
    clock.at += timedelta(minutes=2)  # 2 minutes after the answer, 4:30 after going on shift
    assert listed(client, pool, carer["id"])["presence"] == "reachable"
    clock.at += timedelta(minutes=2)
    assert listed(client, pool, carer["id"])["presence"] == "unreachable"
    assert client.post(f"/api/v1/requests/{request['id']}/en-route", headers=app).status_code == 200
    assert listed(client, pool, carer["id"])["presence"] == "reachable"


def test_off_shift_is_off_and_going_on_shift_counts_as_a_heartbeat(pool, client, clock):
    carer = new_provider(pool, km=1)
    app = token_for(pool, Role.PROVIDER, carer["id"])
    assert client.post(f"/api/v1/providers/{carer['id']}/shift", json={"on_shift": False}, headers=app).json()[
        "presence"] == "off"
    clock.at += timedelta(hours=2)
    back = client.post(f"/api/v1/providers/{carer['id']}/shift", json={"on_shift": True}, headers=app).json()
    assert back["presence"] == "reachable"


@pytest.mark.parametrize(
    ("body", "content_type", "why"),
    [
        (b"garbage", "application/json", "JSON"),
        (b'{"at": "now"}', "application/json", "at"),
        (b"[1, 2]", "application/json", "object"),
        (b'{"x": "\\u0000"}', "application/json", "x"),
        (b"\x00\x01\x02", "application/json", "JSON"),
        (b'{"pad": "' + b"a" * 200_000 + b'"}', "application/json", "pad"),
    ],
)
def test_a_heartbeat_with_a_garbage_body_is_refused_with_a_reason(pool, client, body, content_type, why):
    carer = new_provider(pool)
    r = client.post(f"/api/v1/providers/{carer['id']}/heartbeat", content=body,
                    headers={**token_for(pool, Role.PROVIDER, carer["id"]), "Content-Type": content_type})
    assert r.status_code == 422, r.text
    assert why in r.text


def test_a_heartbeat_comes_only_from_the_providers_own_app(pool, client):
    carer, other = new_provider(pool), new_provider(pool)
    registered = listed(client, pool, carer["id"])["last_seen_at"]
    url = f"/api/v1/providers/{carer['id']}/heartbeat"
    assert client.post(url).status_code == 401
    assert client.post(url, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    r = client.post(url, headers=token_for(pool, Role.PROVIDER, other["id"]))
    assert r.status_code == 403 and "only its own heartbeat" in r.json()["detail"]
    for role in (Role.CITY, Role.ADMIN):
        r = client.post(url, headers=token_for(pool, role))
        assert r.status_code == 403 and r.json()["detail"], role
    r = client.post("/api/v1/providers/p-%00none/heartbeat", headers=token_for(pool, Role.PROVIDER, carer["id"]))
    assert r.status_code == 422 and r.json()["detail"]  # a NUL byte in a path is refused before any route
    assert listed(client, pool, carer["id"])["last_seen_at"] == registered  # no refused call moved it
