"""A resident presses a button; the network acknowledges, assigns a named provider, and
completes; the button sees the three commands in order. A bed's batch sent twice is stored once."""

from __future__ import annotations

import time

import pytest

from homecare.topics import DeviceChannel
from tests.e2e.conftest import Api
from tests.support import FakeDevice, now_ts, unique, wait_for

pytestmark = pytest.mark.e2e

RESIDENT = {
    "name": "Wang Xiuying", "address": "88 Wuning Road, Apt 1203", "district": "Putuo",
    "location": {"lat": 31.2397, "lon": 121.4260},
    "contacts": [{"name": "Wang Lei", "phone": "+86 138 0000 0000", "relation": "son"}],
}


def enrol_home(admin: Api) -> tuple[dict, dict, dict]:
    resident = admin.call("POST", "/api/v1/residents", 201, json=RESIDENT)
    button = admin.call("POST", "/api/v1/devices", 201,
                        json={"id": unique("btn"), "kind": "button", "resident_id": resident["id"]})
    bed = admin.call("POST", "/api/v1/devices", 201,
                     json={"id": unique("bed"), "kind": "bed", "resident_id": resident["id"]})
    return resident, button, bed


def test_press_is_acknowledged_assigned_and_completed_in_order(admin, network, instance):
    resident, button, _ = enrol_home(admin)
    provider = admin.call("POST", "/api/v1/providers", 201, json={
        "name": "Li Mei", "services": ["meal", "mobility"],
        "location": {"lat": 31.2400, "lon": 121.4300}, "capacity": 2,
    })
    admin.call("POST", "/api/v1/users", 201, json={
        "username": f"limei-{instance}", "password": "provider-pass-1", "role": "provider",
        "provider_id": provider["id"],
    })
    li_mei = Api(network.api_url, f"limei-{instance}", "provider-pass-1")

    device = FakeDevice(network.broker_url, button["id"], button["secret"]).connect()
    try:
        device.press("meal")
        acknowledged = device.next_command(timeout=10)
        assert acknowledged["type"] == "request.acknowledged"
        assert acknowledged["service"] == "meal"
        request_id = acknowledged["request_id"]
        device.ack(acknowledged["command_id"])

        offers = wait_for(lambda: li_mei.call("GET", "/api/v1/offers", params={"status": "pending"}),
                          timeout=10, what="an offer to Li Mei")
        assert offers[0]["request_id"] == request_id
        li_mei.call("POST", f"/api/v1/offers/{offers[0]['id']}/accept")

        assigned = device.next_command(timeout=10)
        assert assigned["type"] == "request.assigned"
        assert assigned["request_id"] == request_id
        assert assigned["provider"] == "Li Mei"
        assert isinstance(assigned["eta_minutes"], int) and assigned["eta_minutes"] >= 0
        device.ack(assigned["command_id"])

        li_mei.call("POST", f"/api/v1/requests/{request_id}/arrived")
        li_mei.call("POST", f"/api/v1/requests/{request_id}/complete")
        completed = device.next_command(timeout=10)
        assert completed["type"] == "request.completed"
        assert completed["request_id"] == request_id

        request = admin.call("GET", f"/api/v1/requests/{request_id}")
        assert request["status"] == "completed"
        assert request["resident_id"] == resident["id"]
        assert request["provider_id"] == provider["id"]
        kinds = [entry["kind"] for entry in request["timeline"]]
        assert len(kinds) >= 4, kinds
    finally:
        device.close()


def test_bed_batch_sent_twice_is_stored_once(admin, network):
    _, _, bed = enrol_home(admin)
    device = FakeDevice(network.broker_url, bed["id"], bed["secret"]).connect()
    try:
        samples = [
            {"ts": now_ts(-10 + i), "occupied": True, "heart_rate": 60 + i, "respiration_rate": 14,
             "movement": 0.1}
            for i in range(10)
        ]
        device.publish(DeviceChannel.TELEMETRY, {"samples": samples})
        device.publish(DeviceChannel.TELEMETRY, {"samples": samples})  # a retry after reconnect
        device.publish(DeviceChannel.TELEMETRY, {"samples": samples[5:]})  # a partial overlap

        def stored():
            points = admin.call("GET", f"/api/v1/devices/{bed['id']}/vitals",
                                params={"resolution": "raw"})["points"]
            return points if len(points) >= 10 else None

        wait_for(stored, timeout=15, what="10 stored samples")
        # The duplicates were published after the original; give them time to be processed.
        time.sleep(1.0)
        points = admin.call("GET", f"/api/v1/devices/{bed['id']}/vitals", params={"resolution": "raw"})["points"]
        assert len(points) == 10
        assert [p["heart_rate"] for p in points] == [60 + i for i in range(10)]
    finally:
        device.close()


def test_a_rejected_message_gets_a_reason_on_errors(admin, network):
    _, _, bed = enrol_home(admin)
    device = FakeDevice(network.broker_url, bed["id"], bed["secret"]).connect()
    try:
        device.publish(DeviceChannel.TELEMETRY, {"samples": [
            {"ts": now_ts(), "occupied": True, "heart_rate": 300, "respiration_rate": 14, "movement": 0.1},
        ]})
        error = device.next_error(timeout=10)
        assert error["reason"] == "samples[0].heart_rate: must be <= 250"
        assert error["topic"].endswith(f"{bed['id']}/telemetry")
    finally:
        device.close()


def test_a_stuck_button_through_the_network_is_a_device_alert_and_a_marked_request(admin, network):
    """Device → broker → gateway → NATS → dispatch and telemetry: 4 presses a second by the
    button's clock for 7 s (under the gateway's per-device budget), sent as fast as they go."""
    from datetime import UTC, datetime, timedelta

    from homecare.contract.timestamps import format_ts

    _, button, _ = enrol_home(admin)
    device = FakeDevice(network.broker_url, button["id"], button["secret"]).connect()
    try:
        start = datetime.now(UTC) - timedelta(seconds=10)
        for n in range(28):
            device.publish(DeviceChannel.EVENTS, {"event_id": unique("ev"), "type": "button.pressed",
                                                  "service": "meal",
                                                  "ts": format_ts(start + timedelta(seconds=0.25 * n))})
        request_id = device.next_command(timeout=10)["request_id"]
        request = wait_for(lambda: (r := admin.call("GET", f"/api/v1/requests/{request_id}"))["stuck_presses"] == 28
                           and r, timeout=20, what="every press joined and the request marked")
        assert request["urgency"] == 1
        assert [e["kind"] for e in request["timeline"]].count("button_stuck") == 1
        alerts = wait_for(lambda: [a for a in admin.call("GET", "/api/v1/alerts", params={"category": "device"})
                                   if a["device_id"] == button["id"]], timeout=20, what="the device alert")
        assert [(a["rule"], a["severity"], a["state"]) for a in alerts] == [("button_stuck", "high", "open")]
    finally:
        device.close()
