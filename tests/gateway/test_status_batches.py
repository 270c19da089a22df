"""Statuses applied a batch at a time: every transition still announced, in order; unknown and
revoked devices told why; beds with messages still queued at the gateway never marked silent."""

from __future__ import annotations

from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from gateway.edge_store import StatusUpdate
from gateway.liveness import PendingStatus, rounds
from homecare.contract import DeviceKind
from homecare.log import streams
from homecare.topics import DeviceChannel, device_topic
from tests.support import FakeDevice, unique, wait_for

from .conftest import counter, device_row


def _pending(device_id: str, online: bool, replayed: bool = False, fw: str | None = None) -> PendingStatus:
    message = mqtt.MQTTMessage(topic=device_topic(device_id, DeviceChannel.STATUS).encode())
    message.qos = 0  # nothing to acknowledge to the broker: this one never came through it
    update = StatusUpdate(device_id, online, fw, None, None, datetime.now(UTC))
    return PendingStatus(update, message, replayed)


def test_rounds_hold_one_status_per_device_in_the_order_received():
    batch = [_pending("bed-a", True), _pending("bed-b", True), _pending("bed-a", False),
             _pending("bed-a", True), _pending("bed-c", False), _pending("bed-b", False)]
    split = [[(p.update.device_id, p.update.online) for p in step] for step in rounds(batch)]
    assert split == [
        [("bed-a", True), ("bed-b", True), ("bed-c", False)],
        [("bed-a", False), ("bed-b", False)],
        [("bed-a", True)],
    ]
    assert rounds([]) == []


def test_one_batch_announces_every_transition_in_order_and_rejects_the_unknown(
    gateway, device_factory, log_tap, log_listener, pool, broker_url
):
    states = log_listener(log_tap.subjects.of_stream("state"))
    bed = device_factory(DeviceKind.BED, connect=False)
    button = device_factory(DeviceKind.BUTTON, connect=False)
    gone = device_factory(DeviceKind.BUTTON, connect=False)
    with pool.connection() as conn:
        gateway.admin.revoke(conn, gone.device_id)
    stranger = FakeDevice(broker_url, unique("bed"))
    for device in (gone, stranger):
        device.link.start()
        assert device.link.wait_subscribed(10)
    unknown_before = counter("homecare_gateway_rejected_total", code="unknown_device")
    try:
        gateway.edge.liveness.apply([
            _pending(bed.device_id, True, fw="3.1.0"),
            _pending(button.device_id, True),
            _pending(gone.device_id, True),
            _pending(bed.device_id, False),  # its last will, in the same batch
            _pending(stranger.device_id, True),
            _pending(unique("btn"), False, replayed=True),  # a replayed will of nobody: no reply
            _pending(bed.device_id, True),  # and back
        ])

        ours = (bed.device_id, button.device_id)
        seen = [states.next(lambda s, p: p.get("device_id") in ours) for _ in range(4)]
        assert all(s == log_tap.subjects.state(p["device_id"]) for s, p in seen)  # the device's subject
        seen = [(p["device_id"], p["state"]) for _, p in seen]
        assert [s for s in seen if s[0] == bed.device_id] == [
            (bed.device_id, "online"), (bed.device_id, "offline"), (bed.device_id, "online")]
        assert [s for s in seen if s[0] == button.device_id] == [(button.device_id, "online")]

        row = device_row(pool, bed.device_id)
        assert (row["state"], row["online"], row["fw"]) == ("online", True, "3.1.0")
        assert row["last_seen"] is not None
        for device in (gone, stranger):
            error = device.next_error()
            assert error["reason"] == f"device: {device.device_id} is not provisioned or was decommissioned"
            assert error["topic"] == device_topic(device.device_id, DeviceChannel.STATUS)
        assert counter("homecare_gateway_rejected_total", code="unknown_device") == unknown_before + 2
        assert device_row(pool, gone.device_id)["state"] == "never_seen"
        # the batch warmed the registry cache for the devices' next messages
        assert gateway.edge.cache.get(bed.device_id).resident_id == row["resident_id"]
        wait_for(lambda: device_row(pool, bed.device_id)["announced_state"] == "online")
        # stored in the STATE stream in that order; nothing for the unknown and revoked devices
        stored = log_tap.payloads(streams.STATE, log_tap.subjects.state(bed.device_id))
        assert [p["state"] for p in stored] == ["online", "offline", "online"]
        for device in (gone, stranger):
            assert log_tap.messages(streams.STATE, log_tap.subjects.state(device.device_id)) == []
    finally:
        stranger.close()


def test_a_status_of_a_decommissioned_device_is_rejected_through_the_broker(gateway, device_factory, pool):
    button = device_factory(DeviceKind.BUTTON)
    wait_for(lambda: device_row(pool, button.device_id)["state"] == "online", what="online")
    with pool.connection() as conn:
        gateway.admin.revoke(conn, button.device_id)
    button.publish(DeviceChannel.STATUS, {"online": True, "fw": "9.9.9"})
    error = button.next_error()
    assert error["reason"] == f"device: {button.device_id} is not provisioned or was decommissioned"
    row = device_row(pool, button.device_id)
    assert (row["state"], row["fw"]) == ("offline", "1.0.0")


def test_an_invalid_status_of_an_unknown_device_is_told_the_device_is_unknown(gateway, broker_url):
    stranger = FakeDevice(broker_url, unique("btn"))
    stranger.link.start()
    assert stranger.link.wait_subscribed(10)
    try:
        stranger.publish(DeviceChannel.STATUS, {"online": "yes"})
        assert stranger.next_error()["reason"].startswith(f"device: {stranger.device_id} is not provisioned")
    finally:
        stranger.close()


def test_a_bed_with_messages_queued_at_the_gateway_is_not_marked_silent(gateway, device_factory, pool):
    bed = device_factory(DeviceKind.BED)
    wait_for(lambda: device_row(pool, bed.device_id)["state"] == "online", what="online")
    liveness = gateway.edge.liveness
    liveness.received(bed.device_id)  # as the network thread does when its next message comes
    try:
        with pool.connection() as conn:  # unheard for an hour, as far as the database knows
            conn.execute(
                "UPDATE gateway.devices SET last_seen = now() - interval '1 hour',"
                " state_changed_at = now() - interval '1 hour' WHERE id = %s", (bed.device_id,),
            )
        liveness.sweep(pool, intervals=1, min_s=1)
        assert device_row(pool, bed.device_id)["state"] == "online"
    finally:
        liveness.handled(bed.device_id)  # dealt with (say, rejected): nothing new was written
    liveness.sweep(pool, intervals=1, min_s=1)
    assert device_row(pool, bed.device_id)["state"] == "silent"
