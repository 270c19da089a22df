"""The edge's two lanes: presses and command acks travel on a session of their own, so a
backlog of telemetry never stands between a resident's press and the internal log."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt

from gateway.bootstrap import build
from gateway.edge import BULK, CONTROL, LANES
from homecare.contract import DeviceKind
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.topics import DEVICE_PUBLISHES, DeviceChannel, all_devices_filter, device_topic
from tests.support import FakeDevice, now_ts, unique

from .conftest import forget_gateway


def _for(device_id: str):
    """Forwards of one device: its events (DeviceEvent) or its telemetry (DeviceBatch)."""
    return lambda subject, payload: payload.get("device_id") == device_id


def test_every_device_channel_has_exactly_one_lane():
    channels = [c for lane in LANES for c in lane.channels]
    assert sorted(channels) == sorted(DEVICE_PUBLISHES) and len(set(channels)) == len(channels)
    assert DeviceChannel.EVENTS in CONTROL.channels and DeviceChannel.TELEMETRY in BULK.channels


def test_a_press_goes_through_while_the_telemetry_lane_is_stuck(gateway, device_factory, log_tap, log_listener):
    events = log_listener(log_tap.subjects.events_of("button"))
    telemetry = log_listener(log_tap.subjects.of_stream("telemetry"))
    bed, button = device_factory(DeviceKind.BED), device_factory(DeviceKind.BUTTON)
    assert gateway.edge.link.client_id != gateway.control.link.client_id

    stuck = threading.Event()
    gateway.edge.worker.put(lambda: stuck.wait(30))  # the bulk lane's worker is busy for now
    try:
        bed.publish(DeviceChannel.TELEMETRY, {"samples": [
            {"ts": now_ts(0), "occupied": True, "heart_rate": 60, "respiration_rate": 14, "movement": 0.1}]})
        event_id = button.press("emergency")

        _, payload = events.next(_for(button.device_id))
        assert payload["event_id"] == event_id and payload["service"] == "emergency"
        assert telemetry.pending(_for(bed.device_id)) == []  # still waiting in the other lane
    finally:
        stuck.set()
    subject, _ = telemetry.next(_for(bed.device_id))  # and not lost
    assert subject == log_tap.subjects.telemetry(bed.device_id)


def test_both_lanes_share_one_flood_budget_per_device(gateway):
    assert gateway.edge.flood is gateway.control.flood


def test_a_session_of_the_single_lane_edge_gives_its_presses_back_to_the_control_lane(
    request, settings, broker_url, log_tap, log_listener,
):
    # Before the lanes, one session held every filter. Resumed by the bulk lane, it would keep
    # taking its share of presses, and the bulk lane does not handle them.
    presses = settings.share("gateway", all_devices_filter(DeviceChannel.EVENTS))
    old = MqttLink(BrokerAddress.parse(broker_url), settings.client_id("gateway"), clean_session=False,
                   subscriptions={presses: lambda client, message: None})
    old.start()
    assert old.wait_subscribed(10)
    old.stop()

    device_factory = request.getfixturevalue("device_factory")  # starts the gateway on that session
    events = log_listener(log_tap.subjects.events_of("button"))
    button = device_factory(DeviceKind.BUTTON)
    sent = {button.press(service) for service in ("meal", "bathing", "escort", "mobility")}

    got = {events.next(_for(button.device_id))[1]["event_id"] for _ in sent}
    assert got == sent


def test_a_press_the_bulk_lane_still_receives_is_handled_there(gateway, device_factory, log_tap, log_listener):
    # Between resuming an old session and the broker's UNSUBACK, presses can still reach the bulk
    # lane: they are handled like any other, not dropped for want of a handler.
    events = log_listener(log_tap.subjects.events_of("button"))
    button = device_factory(DeviceKind.BUTTON)
    message = mqtt.MQTTMessage(mid=0, topic=device_topic(button.device_id, DeviceChannel.EVENTS).encode())
    message.payload = json.dumps({"event_id": "via-bulk", "ts": now_ts(), "type": "button.pressed",
                                  "service": "meal"}).encode()
    gateway.edge.link.client.on_message(gateway.edge.link.client, None, message)  # no filter of its own matches

    subject, payload = events.next(_for(button.device_id))
    assert subject == log_tap.subjects.event("button.pressed", button.device_id)
    assert payload["event_id"] == "via-bulk" and payload["service"] == "meal"


def test_the_lanes_can_run_in_processes_of_their_own(settings, pool, config, broker_url, resident_id,
                                                     log_tap, log_listener):
    # Two components in this test stand for the two processes (HOMECARE_GATEWAY_LANES).
    control = build(settings, pool, config.model_copy(update={"lanes": "control"}))
    bulk = build(settings, pool, config.model_copy(update={"lanes": "bulk"}))
    assert (control.edge, bulk.control) == (None, None)
    assert [e.lane for e in control.edges] == [CONTROL] and [e.lane for e in bulk.edges] == [BULK]
    events = log_listener(log_tap.subjects.events_of("button"))
    telemetry = log_listener(log_tap.subjects.of_stream("telemetry"))
    devices = []
    control.start()
    bulk.start()
    try:
        with pool.connection() as conn:
            made = [control.admin.provision(conn, unique(k), kind, resident_id)
                    for k, kind in (("btn", DeviceKind.BUTTON), ("bed", DeviceKind.BED))]
        button, bed = (FakeDevice(broker_url, device.id, secret).connect() for device, secret in made)
        devices = [button, bed]
        event_id = button.press("escort")
        bed.publish(DeviceChannel.TELEMETRY, {"samples": [
            {"ts": now_ts(0), "occupied": True, "heart_rate": 61, "respiration_rate": 13, "movement": 0.2}]})

        assert events.next(_for(button.device_id))[1]["event_id"] == event_id
        telemetry.next(_for(bed.device_id))
        assert all(check() for check in (*control.checks().values(), *bulk.checks().values()))
    finally:
        for device in devices:
            device.close()
        bulk.stop()
        control.stop()
        forget_gateway(broker_url, settings.client_id("gateway"))
