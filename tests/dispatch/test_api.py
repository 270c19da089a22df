"""The dispatch HTTP API: roles, what a provider may see, and errors as 401/403/404/409/422."""

import pytest

from homecare.auth import Role
from services.dispatch.api import build_router
from services.dispatch.usecases.context import Dispatch

from .harness import api_client, new_provider, new_resident, pending_offer, steps, token_for


@pytest.fixture
def client(pool, clean):
    return api_client(pool, build_router(Dispatch()))


@pytest.fixture
def headers(pool):
    return {role: token_for(pool, role) for role in (Role.ADMIN, Role.CITY)}


def phone(client, headers, resident, service="meal", note=None):
    r = client.post("/api/v1/requests", json={"resident_id": resident, "service": service, "note": note},
                    headers=headers[Role.CITY])
    assert r.status_code in (200, 201), r.text
    return r


def test_admin_registers_providers_and_dispatchers_list_them(client, headers):
    body = {"name": "Team North", "services": ["meal", "escort"], "location": {"lat": 31.24, "lon": 121.47},
            "capacity": 3}
    r = client.post("/api/v1/providers", json=body, headers=headers[Role.ADMIN])
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"].startswith("p-") and created["services"] == ["meal", "escort"]
    assert created["location"] == {"lat": 31.24, "lon": 121.47} and created["on_shift"] is True

    assert client.post("/api/v1/providers", json=body, headers=headers[Role.CITY]).status_code == 403
    listed = client.get("/api/v1/providers", headers=headers[Role.CITY]).json()
    assert created["id"] in {p["id"] for p in listed}
    assert client.get("/api/v1/providers").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "services": ["meal"], "location": {"lat": 1, "lon": 1}, "capacity": 1},
        {"name": "A", "services": [], "location": {"lat": 1, "lon": 1}, "capacity": 1},
        {"name": "A", "services": ["laundry"], "location": {"lat": 1, "lon": 1}, "capacity": 1},
        {"name": "A", "services": ["meal"], "location": {"lat": 91, "lon": 1}, "capacity": 1},
        {"name": "A", "services": ["meal"], "location": {"lat": 1, "lon": 1}, "capacity": 0},
    ],
)
def test_invalid_provider_is_422(client, headers, body):
    assert client.post("/api/v1/providers", json=body, headers=headers[Role.ADMIN]).status_code == 422


def test_phone_intake_opens_then_joins(pool, client, headers):
    resident = new_resident(pool)
    new_provider(pool)
    first = phone(client, headers, resident, note="called from the daughter's phone")
    assert first.status_code == 201
    body = first.json()
    assert body["source"] == "phone" and body["status"] == "offered"
    assert body["note"] == "called from the daughter's phone"
    assert body["timeline"][0]["actor"].startswith("city:")
    again = phone(client, headers, resident)
    assert again.status_code == 200 and again.json()["id"] == body["id"] and again.json()["urgency"] == 2
    assert steps(again.json())[-1]["kind"] == "called_again"


def test_request_list_filters_and_orders_newest_first(pool, client, headers):
    resident = new_resident(pool)
    new_provider(pool, services=("meal",))
    meal = phone(client, headers, resident, "meal").json()
    escort = phone(client, headers, resident, "escort").json()  # nobody does escorts: escalated
    listed = client.get("/api/v1/requests", params={"status": "offered,escalated"}, headers=headers[Role.CITY])
    assert listed.status_code == 200
    ids = [r["id"] for r in listed.json()]
    assert ids.index(escort["id"]) < ids.index(meal["id"])
    only = client.get("/api/v1/requests", params={"status": "escalated"}, headers=headers[Role.CITY]).json()
    assert escort["id"] in {r["id"] for r in only} and meal["id"] not in {r["id"] for r in only}
    escalated = next(r for r in only if r["id"] == escort["id"])
    assert escalated["escalation_reason"] == "no qualified provider on shift for escort"
    row = next(r for r in listed.json() if r["id"] == meal["id"])
    assert row["escalation_reason"] is None
    for field in ("id", "resident_id", "service", "priority", "status", "created_at", "provider_id", "sla_due_at",
                  "urgency", "eta_minutes"):
        assert field in row
    bad = client.get("/api/v1/requests", params={"status": "lost"}, headers=headers[Role.CITY])
    assert bad.status_code == 422 and "lost" in bad.json()["detail"]


def test_provider_sees_and_answers_only_its_own_offers(pool, client, headers):
    resident = new_resident(pool)
    mine = new_provider(pool, km=1)
    other = new_provider(pool, km=1.5)
    request = phone(client, headers, resident).json()
    offer = pending_offer(request)
    assert offer["provider_id"] == mine["id"]
    me, them = token_for(pool, Role.PROVIDER, mine["id"]), token_for(pool, Role.PROVIDER, other["id"])

    own = client.get("/api/v1/offers", params={"status": "pending"}, headers=me).json()
    assert [o["id"] for o in own] == [offer["id"]]
    assert client.get("/api/v1/offers", params={"status": "pending"}, headers=them).json() == []
    everyone = client.get("/api/v1/offers", params={"status": "pending"}, headers=headers[Role.CITY]).json()
    assert offer["id"] in {o["id"] for o in everyone}

    assert client.post(f"/api/v1/offers/{offer['id']}/accept", headers=them).status_code == 403
    assert client.post(f"/api/v1/offers/{offer['id']}/decline", headers=them).status_code == 403
    assert client.post(f"/api/v1/offers/{offer['id']}/accept", headers=headers[Role.CITY]).status_code == 403
    assert client.get(f"/api/v1/requests/{request['id']}", headers=them).status_code == 403
    assert client.get(f"/api/v1/requests/{request['id']}", headers=me).status_code == 200
    assert client.get("/api/v1/requests", headers=me).status_code == 403
    assert client.post(f"/api/v1/requests/{request['id']}/cancel", json={"reason": "x"}, headers=me).status_code == 403

    accepted = client.post(f"/api/v1/offers/{offer['id']}/accept", headers=me)
    assert accepted.status_code == 200 and accepted.json()["provider_id"] == mine["id"]
    # Only the assigned provider (or a dispatcher) reports progress.
    assert client.post(f"/api/v1/requests/{request['id']}/arrived", headers=them).status_code == 403
    assert client.post(f"/api/v1/requests/{request['id']}/arrived", headers=headers[Role.CITY]).status_code == 200
    # An answered offer takes no second answer.
    assert client.post(f"/api/v1/offers/{offer['id']}/decline", headers=me).status_code == 409


def test_manual_assign_reassign_and_cancel(pool, client, headers):
    resident = new_resident(pool)
    first = new_provider(pool, km=1)
    second = new_provider(pool, km=2)
    request = phone(client, headers, resident).json()
    d = headers[Role.CITY]

    r = client.post(f"/api/v1/requests/{request['id']}/assign", json={"provider_id": second["id"]}, headers=d)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "assigned" and body["provider_id"] == second["id"]
    assert [o["status"] for o in body["offers"]] == ["withdrawn"]
    r = client.post(f"/api/v1/requests/{request['id']}/assign", json={"provider_id": first["id"]}, headers=d)
    assert r.json()["provider_id"] == first["id"]
    assert steps(r.json())[-2]["kind"] == "reassigned"

    cancelled = client.post(f"/api/v1/requests/{request['id']}/cancel", json={"reason": "family came"}, headers=d)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    complete = client.post(f"/api/v1/requests/{request['id']}/complete", headers=d)
    assert complete.status_code == 409 and "cancelled" in complete.json()["detail"]
    again = client.post(f"/api/v1/requests/{request['id']}/cancel", json={"reason": "again"}, headers=d)
    assert again.status_code == 409


def test_assign_checks_service_and_capacity(pool, client, headers):
    d = headers[Role.CITY]
    bather = new_provider(pool, services=("bathing",))
    busy = new_provider(pool, capacity=1)
    busy_request = phone(client, headers, new_resident(pool)).json()
    client.post(f"/api/v1/requests/{busy_request['id']}/assign", json={"provider_id": busy["id"]}, headers=d)
    request = phone(client, headers, new_resident(pool)).json()

    wrong = client.post(f"/api/v1/requests/{request['id']}/assign", json={"provider_id": bather["id"]}, headers=d)
    assert wrong.status_code == 409 and "does not provide meal" in wrong.json()["detail"]
    full = client.post(f"/api/v1/requests/{request['id']}/assign", json={"provider_id": busy["id"]}, headers=d)
    assert full.status_code == 409 and "no free capacity" in full.json()["detail"]
    unknown = client.post(f"/api/v1/requests/{request['id']}/assign", json={"provider_id": "p-nope"}, headers=d)
    assert unknown.status_code == 404


def test_unknown_ids_are_404_and_bad_bodies_422(pool, client, headers):
    d = headers[Role.CITY]
    assert client.get("/api/v1/requests/r-000000000000", headers=d).status_code == 404
    assert client.post("/api/v1/offers/o-000000000000/accept", headers=headers[Role.ADMIN]).status_code == 404
    assert client.post("/api/v1/requests/r-000000000000/cancel", json={"reason": "x"}, headers=d).status_code == 404
    assert client.post("/api/v1/requests", json={"resident_id": "res-unknown", "service": "meal"},
                       headers=d).status_code == 404
    laundry = {"resident_id": "x", "service": "laundry"}
    assert client.post("/api/v1/requests", json=laundry, headers=d).status_code == 422
    assert client.post("/api/v1/requests/r-1/cancel", json={}, headers=d).status_code == 422


def test_a_devices_commands_and_their_states(client, headers, pool):
    from datetime import UTC, datetime

    from gateway import registry
    from services.dispatch.store import devices, outbox
    from services.dispatch.usecases import delivery
    from tests.support import unique

    device_id = unique("btn")
    with pool.connection() as conn:
        registry.provision(conn, device_id, "button", new_resident(pool))
        for n, deadline in ((1, 600), (2, 0)):
            outbox.put(conn, device_id, {"command_id": f"{device_id}-c{n}", "type": "request.completed",
                                         "request_id": "r-1", "service": "meal"},
                       kind="request.completed", deadline_s=deadline)
        now = datetime.now(UTC)
        for outbox_id in outbox.overdue(conn, now, 10):
            delivery.expire(conn, Dispatch(), outbox_id, now)
    url = f"/api/v1/devices/{device_id}/commands"
    listed = client.get(url, headers=headers[Role.CITY]).json()
    assert {c["command_id"]: (c["state"], c["held"]) for c in listed} == {
        f"{device_id}-c1": ("queued", True), f"{device_id}-c2": ("expired", False)}
    assert listed[-1]["payload"]["type"] == "request.completed" and listed[-1]["acked_at"] is None
    with pool.connection() as conn:  # the device connects: nothing is held any more
        devices.record_states(conn, [(device_id, "main", "online", datetime.now(UTC))])
    assert [c["held"] for c in client.get(url, headers=headers[Role.CITY]).json()] == [False, False]
    expired = client.get(url, params={"state": "expired"}, headers=headers[Role.ADMIN])
    assert [c["command_id"] for c in expired.json()] == [f"{device_id}-c2"]
    assert client.get(f"/api/v1/devices/{unique('btn')}/commands", headers=headers[Role.ADMIN]).status_code == 404
    assert client.get(url, params={"state": "lost"}, headers=headers[Role.ADMIN]).status_code == 422
    provider = token_for(pool, Role.PROVIDER, new_provider(pool)["id"])
    assert client.get(url, headers=provider).status_code == 403


def test_a_dispatcher_asks_a_device_for_a_self_test(client, headers, pool):
    from gateway import registry
    from tests.support import unique

    device_id, gone = unique("btn"), unique("btn")
    resident = new_resident(pool)
    with pool.connection() as conn:
        registry.provision(conn, device_id, "button", resident)
        registry.provision(conn, gone, "button", resident)
        registry.revoke(conn, gone)
    d = headers[Role.CITY]
    asked = client.post(f"/api/v1/devices/{device_id}/selftest", headers=d)
    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert (body["type"], body["state"], body["held"]) == ("selftest.request", "queued", True)
    assert body["payload"] == {"command_id": body["command_id"], "type": "selftest.request"}
    listed = client.get(f"/api/v1/devices/{device_id}/commands", headers=d).json()
    assert [c["command_id"] for c in listed] == [body["command_id"]]
    refused = client.post(f"/api/v1/devices/{gone}/selftest", headers=d)
    assert refused.status_code == 409 and "decommissioned" in refused.json()["detail"]
    assert client.post(f"/api/v1/devices/{unique('btn')}/selftest", headers=d).status_code == 404
    assert client.post("/api/v1/devices/bad%00id/selftest", headers=d).status_code in (404, 422)
    provider = token_for(pool, Role.PROVIDER, new_provider(pool)["id"])
    assert client.post(f"/api/v1/devices/{device_id}/selftest", headers=provider).status_code == 403


def test_a_requests_answer_reads_its_commands_by_index_not_the_whole_outbox(client, headers, pool):
    """Every provider action answers with the request and its commands; the outbox keeps a row per
    command for good, so reading it whole made each answer slower as the city's days went by."""
    from services.dispatch import queries

    resident = new_resident(pool)
    request_id = phone(client, headers, resident).json()["id"]
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO dispatch.outbox (topic, request_id, kind, payload, command_id, device_id, deadline_at,"
            " sent_at, delivery)"
            " SELECT 'homecare/v1/devices/old/commands', 'r-old-' || n, 'request.acknowledged', '{}',"
            " 'c-old-' || n, 'old', now(), now(), 'acknowledged' FROM generate_series(1, 20000) AS n"
        )
        conn.execute("ANALYZE dispatch.outbox")
    try:
        with pool.connection() as conn, conn.transaction():
            assert queries.get_request(conn, request_id)["id"] == request_id
            scans = conn.execute(
                "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'dispatch.outbox'::regclass"
            ).fetchone()
        assert (scans["seq_scan"] if isinstance(scans, dict) else scans[0]) == 0
    finally:
        with pool.connection() as conn:
            conn.execute("DELETE FROM dispatch.outbox WHERE command_id LIKE 'c-old-%'")
