"""On the real broker and database: the waiting queue (most urgent first), an emergency pre-empting
routine work, command delivery in the timeline, manual assignment and shifts, provider positions."""

import json
import queue
from datetime import UTC, datetime, timedelta

from homecare.auth import Role
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.topics import DeviceChannel, device_topic
from services.dispatch import metrics
from tests.support import unique, wait_for

from .harness import (
    HOME,
    api_client,
    button_event,
    get_request,
    kinds,
    km_north,
    new_provider,
    new_resident,
    pending_offer,
    press,
    steps,
    token_for,
)


def _as(pool, provider):
    return token_for(pool, Role.PROVIDER, provider["id"])


def test_a_busy_provider_takes_the_most_urgent_queued_request_when_free(pool, start_dispatch, bus):
    component = start_dispatch(requeue_s=0.3)
    client = api_client(pool, component.routers()[0])
    carer = new_provider(pool, km=1, capacity=1)
    _, first = press(pool, bus, new_resident(pool))
    offer = pending_offer(get_request(pool, first))
    assert client.post(f"/api/v1/offers/{offer['id']}/accept", headers=_as(pool, carer)).status_code == 200

    _, older = press(pool, bus, new_resident(pool))
    pressing = new_resident(pool)
    device, newer = press(pool, bus, pressing)
    for request_id in (older, newer):
        request = get_request(pool, request_id)
        assert request["status"] == "open" and request["offers"] == []
        queued = steps(request)[-1]
        assert queued["kind"] == "queued"
        assert queued["detail"]["reason"] == "every qualified provider on shift is busy"
    bus.press(button_event(device, pressing, "meal"))  # pressed again: more urgent than the older one
    wait_for(lambda: get_request(pool, newer)["urgency"] == 2, what="second press")

    for step in ("arrived", "complete"):
        assert client.post(f"/api/v1/requests/{first}/{step}", headers=_as(pool, carer)).status_code == 200
    offered = wait_for(lambda: pending_offer(get_request(pool, newer)), what="the queued request to be offered")
    assert offered["provider_id"] == carer["id"]
    assert get_request(pool, older)["status"] == "open"  # still waiting its turn
    assert kinds(get_request(pool, older)).count("queued") == 1  # said once, not on every retry


def test_an_emergency_preempts_routine_work_not_started(pool, start_dispatch, bus):
    component = start_dispatch(requeue_s=0.3)
    client = api_client(pool, component.routers()[0])
    medic = new_provider(pool, services=("meal", "emergency"), km=1, capacity=1, name="Wang Fang")
    cook = new_provider(pool, services=("meal",), km=5, capacity=1)
    meal_device, meal = press(pool, bus, new_resident(pool))
    offer = pending_offer(get_request(pool, meal))
    assert offer["provider_id"] == medic["id"]
    assert client.post(f"/api/v1/offers/{offer['id']}/accept", headers=_as(pool, medic)).status_code == 200
    bus.command(meal_device, "request.assigned")

    _, emergency = press(pool, bus, new_resident(pool), "emergency")
    offer = pending_offer(get_request(pool, emergency))
    assert offer["provider_id"] == medic["id"] and offer["preempts_request_id"] == meal
    assert offer["score_parts"]["preempt"] == 10.0
    assert client.post(f"/api/v1/offers/{offer['id']}/accept", headers=_as(pool, medic)).status_code == 200

    assert get_request(pool, emergency)["status"] == "assigned"
    handed = get_request(pool, meal)
    assert handed["handed_back"] == 1 and handed["provider_id"] is None
    entry = next(e for e in handed["timeline"] if e["kind"] == "handed_back")
    assert entry["detail"]["for_request_id"] == emergency and entry["detail"]["previous_provider_id"] == medic["id"]
    assert entry["detail"]["reason"] == "Wang Fang was called away to a more urgent request (emergency)"
    again = bus.command(meal_device, "request.acknowledged")  # the button shows "received" again
    assert again["request_id"] == meal
    reoffered = wait_for(lambda: pending_offer(get_request(pool, meal)), what="the meal offered to someone else")
    assert reoffered["provider_id"] == cook["id"]
    with pool.connection() as conn:
        held = conn.execute(
            "SELECT count(*) AS n FROM dispatch.requests WHERE provider_id = %s"
            " AND status IN ('assigned', 'en_route', 'arrived')", (medic["id"],),
        ).fetchone()["n"]
    assert held == 1  # never above its capacity


def test_command_delivery_joins_the_timeline(pool, start_dispatch, bus, broker_url):
    start_dispatch()
    new_provider(pool)
    device, request_id = press(pool, bus, new_resident(pool))
    command_id = get_request(pool, request_id)["commands"][0]["command_id"]
    # The broker took it (PUBACK): dispatch records `sent` itself, no one reports it back.
    wait_for(lambda: get_request(pool, request_id)["commands"][0]["delivery"] == "sent", what="sent")
    unknown = metrics.EVENTS.labels("command-ack", "unknown")
    repeated = metrics.EVENTS.labels("command-ack", "repeated")
    before_unknown, before_repeated = unknown._value.get(), repeated._value.get()
    errors: queue.Queue = queue.Queue()
    listener = MqttLink(BrokerAddress.parse(broker_url), unique("errors"), clean_session=True, subscriptions={
        device_topic(device, DeviceChannel.ERRORS): lambda c, m: errors.put(json.loads(m.payload))})
    listener.start()
    assert listener.wait_subscribed(10)
    now = datetime.now(UTC)
    try:
        bus.ack(device, command_id, now + timedelta(seconds=1))
        bus.ack(device, command_id, now + timedelta(seconds=3))  # the device sent it again
        bus.ack(device, "c-not-ours")  # a command this device was never sent
        # The counters are the process's: a message of an earlier test can move them, so wait for ours.
        wait_for(lambda: unknown._value.get() > before_unknown, what="the unknown command to be consumed")
        wait_for(lambda: repeated._value.get() > before_repeated, what="the repeated ack to be consumed")
        reply = errors.get(timeout=10)
    finally:
        listener.stop()
    assert reply["topic"] == device_topic(device, DeviceChannel.ACKS)
    assert reply["reason"] == f"command_id: 'c-not-ours' is not a command sent to {device}"

    request = get_request(pool, request_id)
    assert request["ack_shown_at"] == now + timedelta(seconds=1)
    delivered = [e for e in request["timeline"] if e["kind"].startswith("command.")]
    assert [(e["kind"], e["actor"]) for e in delivered] == [
        ("command.sent", "dispatch"), ("command.acknowledged", f"device:{device}"),
    ]
    assert delivered[1]["detail"] == {"command": "request.acknowledged", "command_id": command_id, "device_id": device}
    command = request["commands"][0]
    assert command["delivery"] == "acknowledged" and command["type"] == "request.acknowledged"
    assert command["device_id"] == device


def test_a_command_expires_at_its_deadline_and_says_why(pool, start_dispatch, bus):
    start_dispatch()
    device, request_id = press(pool, bus, new_resident(pool))
    command_id = get_request(pool, request_id)["commands"][0]["command_id"]
    with pool.connection() as conn:  # its ten minutes are over
        conn.execute("UPDATE dispatch.outbox SET deadline_at = now() - interval '1 second'"
                     " WHERE command_id = %s", (command_id,))
    wait_for(lambda: get_request(pool, request_id)["commands"][0]["delivery"] == "expired", what="expiry")
    expired = [e for e in get_request(pool, request_id)["timeline"] if e["kind"] == "command.expired"]
    assert expired[0]["detail"]["reason"] == "the device did not acknowledge it"
    bus.ack(device, command_id)  # late, but the button did show it: that counts
    wait_for(lambda: get_request(pool, request_id)["commands"][0]["delivery"] == "acknowledged", what="late ack")


def test_manual_assignment_checks_the_shift_and_can_override_it(pool, clean):
    from services.dispatch.api import build_router
    from services.dispatch.usecases.context import Dispatch

    client = api_client(pool, build_router(Dispatch()))
    dispatcher = token_for(pool, Role.CITY)
    admin = token_for(pool, Role.ADMIN)  # shifts are an admin's (or the provider's): http-v1 Access
    resident = new_resident(pool)
    home = new_provider(pool, services=("bathing",))
    assert client.post(f"/api/v1/providers/{home['id']}/shift", json={"on_shift": False},
                       headers=dispatcher).status_code == 403
    assert client.post(f"/api/v1/providers/{home['id']}/shift", json={"on_shift": False},
                       headers=admin).status_code == 200
    request_id = client.post("/api/v1/requests", json={"resident_id": resident, "service": "bathing"},
                             headers=dispatcher).json()["id"]

    refused = client.post(f"/api/v1/requests/{request_id}/assign", json={"provider_id": home["id"]},
                          headers=dispatcher)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"provider {home['id']} is off shift; assign with override_shift to send them anyway"
    )
    forced = client.post(f"/api/v1/requests/{request_id}/assign",
                         json={"provider_id": home["id"], "override_shift": True}, headers=dispatcher)
    assert forced.status_code == 200, forced.text
    assert forced.json()["status"] == "assigned"
    entry = steps(forced.json())[-2]  # the assignment, then the notification
    assert entry["kind"] == "assigned" and entry["detail"]["override_shift"] is True
    assert entry["detail"]["off_shift"] is True


def test_a_provider_reports_where_it_is_and_the_next_match_uses_it(pool, start_dispatch, bus):
    component = start_dispatch()
    client = api_client(pool, component.routers()[0])
    mover = new_provider(pool, km=10)
    other = new_provider(pool, services=("bathing",), km=10)
    near = km_north(1)
    r = client.post(f"/api/v1/providers/{mover['id']}/location", json={"lat": near.lat, "lon": near.lon},
                    headers=_as(pool, mover))
    assert r.status_code == 200, r.text
    assert r.json()["location"] == {"lat": near.lat, "lon": near.lon} and r.json()["location_at"] is not None
    assert client.post(f"/api/v1/providers/{mover['id']}/location", json={"lat": HOME.lat, "lon": HOME.lon},
                       headers=_as(pool, other)).status_code == 403
    assert client.post(f"/api/v1/providers/{mover['id']}/location", json={"lat": 95, "lon": 0},
                       headers=_as(pool, mover)).status_code == 422

    _, request_id = press(pool, bus, new_resident(pool))
    offer = pending_offer(get_request(pool, request_id))
    assert offer["provider_id"] == mover["id"] and offer["eta_minutes"] == 3  # 1 km, not 10


def test_planned_shifts_put_providers_on_and_off_shift(pool, start_dispatch):
    component = start_dispatch()
    client = api_client(pool, component.routers()[0])
    dispatcher = token_for(pool, Role.CITY)
    admin = token_for(pool, Role.ADMIN)  # shifts are planned by an admin: http-v1 Access
    carer = new_provider(pool)
    assert client.post(f"/api/v1/providers/{carer['id']}/shift", json={"on_shift": False},
                       headers=_as(pool, carer)).status_code == 200  # the provider itself
    now = datetime.now(UTC)
    body = {"starts_at": now.isoformat(), "ends_at": (now + timedelta(seconds=3)).isoformat()}
    assert client.post(f"/api/v1/providers/{carer['id']}/shifts", json=body,
                       headers=dispatcher).status_code == 403
    r = client.post(f"/api/v1/providers/{carer['id']}/shifts", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["provider_id"] == carer["id"] and r.json()["started_at"] is None
    bad = {"starts_at": now.isoformat(), "ends_at": (now - timedelta(hours=1)).isoformat()}
    assert client.post(f"/api/v1/providers/{carer['id']}/shifts", json=bad, headers=admin).status_code == 422
    assert client.post(f"/api/v1/providers/{carer['id']}/shifts", json=body,
                       headers=_as(pool, carer)).status_code == 403

    def on_shift():
        return next(p for p in client.get("/api/v1/providers", headers=dispatcher).json() if p["id"] == carer["id"])[
            "on_shift"]

    wait_for(on_shift, timeout=5, what="the shift to start")
    listed = client.get(f"/api/v1/providers/{carer['id']}/shifts", headers=_as(pool, carer)).json()
    assert listed[0]["started_at"] is not None
    wait_for(lambda: not on_shift(), timeout=8, what="the shift to end")
