"""Messages that break mqtt-v1 are rejected: an errors reply naming the field, a count, no effect."""

from __future__ import annotations

import pytest

from homecare.contract import DeviceKind
from homecare.topics import DeviceChannel, device_topic
from tests.support import FakeDevice, now_ts, unique, wait_for

from .conftest import counter, device_row


def _rejections(pool, device_id: str) -> dict[str, int]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT code, count FROM gateway.rejections WHERE device_id = %s", (device_id,)
        ).fetchall()
    return {r["code"]: r["count"] for r in rows}


def _sample(**change) -> dict:
    return {"ts": now_ts(), "occupied": True, "heart_rate": 60, "respiration_rate": 12,
            "movement": 0.1, **change}


CASES = [
    # (kind, channel, payload, code, reason starts with, event_id in the reply)
    (DeviceKind.BED, DeviceChannel.TELEMETRY, b'{"samples": [', "json", "payload: invalid JSON", None),
    (DeviceKind.BED, DeviceChannel.TELEMETRY, {"samples": [_sample(), _sample(ts=now_ts(1), heart_rate=251)]},
     "schema", "samples[1].heart_rate: ", None),
    (DeviceKind.BED, DeviceChannel.TELEMETRY, {"samples": [_sample(movement=1.5)]},
     "schema", "samples[0].movement: ", None),
    (DeviceKind.BUTTON, DeviceChannel.EVENTS,
     {"event_id": "ev-1", "ts": now_ts(), "type": "button.exploded"}, "schema", "type: unknown event type", "ev-1"),
    (DeviceKind.BUTTON, DeviceChannel.EVENTS,
     {"event_id": "ev-2", "ts": now_ts(3600), "type": "button.pressed", "service": "meal"},
     "timestamp", "ts: is more than 5 minutes in the future", "ev-2"),
    (DeviceKind.BUTTON, DeviceChannel.EVENTS,
     {"event_id": "ev-3", "ts": now_ts(-8 * 86400), "type": "button.pressed", "service": "meal"},
     "timestamp", "ts: is older than 7 days", "ev-3"),
    (DeviceKind.BUTTON, DeviceChannel.EVENTS,
     {"event_id": "ev-4", "ts": now_ts(), "type": "button.pressed", "service": "laundry"},
     "schema", "service: ", "ev-4"),
    (DeviceKind.BUTTON, DeviceChannel.EVENTS,
     {"event_id": "ev-5", "ts": now_ts(), "type": "bed.exit"}, "kind", "type: a button does not send", "ev-5"),
    (DeviceKind.BUTTON, DeviceChannel.TELEMETRY, {"samples": [_sample()]},
     "kind", "topic: a button does not send telemetry", None),
    (DeviceKind.BED, DeviceChannel.STATUS, {"fw": "1.0"}, "schema", "online: is required", None),
    (DeviceKind.BED, DeviceChannel.TELEMETRY, {"samples": [_sample()], "pad": "x" * 70_000},
     "size", "payload: ", None),
    (DeviceKind.BED, DeviceChannel.STATUS, b"[true]", "json", "payload: must be a JSON object", None),
    (DeviceKind.BED, DeviceChannel.TELEMETRY, {"samples": [_sample(heart_rate="62")]},
     "schema", "samples[0].heart_rate: ", None),
    (DeviceKind.BED, DeviceChannel.TELEMETRY, {"samples": [_sample(ts=now_ts(-8 * 86400))]},
     "timestamp", "samples[0].ts: is older than 7 days", None),
    (DeviceKind.BED, DeviceChannel.TELEMETRY, {"samples": [_sample(ts=now_ts(-60))] * 2},
     "schema", "samples: ts ", None),
    (DeviceKind.BED, DeviceChannel.TELEMETRY, {"samples": []}, "schema", "samples: ", None),
]


@pytest.mark.parametrize("kind, channel, payload, code, reason, event_id", CASES,
                         ids=[f"{c[3]}:{c[4].split(':')[0]}" for c in CASES])
def test_a_bad_message_gets_an_error_reply_and_is_counted(
    gateway, device_factory, pool, log_tap, log_listener, kind, channel, payload, code, reason, event_id
):
    forwarded = log_listener(f"{log_tap.subjects.root}.>")  # every stream of this test's log
    device = device_factory(kind, connect=False)
    device.link.start()
    assert device.link.wait_subscribed(10)
    before = counter("homecare_gateway_rejected_total", code=code)

    device.publish(channel, payload)

    error = device.next_error()
    assert error["reason"].startswith(reason), error
    assert error["topic"] == device_topic(device.device_id, channel)
    assert error["event_id"] == event_id
    assert counter("homecare_gateway_rejected_total", code=code) == before + 1
    wait_for(lambda: _rejections(pool, device.device_id).get(code) == 1, what="rejection tally")
    # a rejected message changes nothing: the device was never seen, nothing of it went into
    # the log (no telemetry, event, state or command state)
    row = device_row(pool, device.device_id)
    assert row["state"] == "never_seen" and row["last_seen"] is None
    assert forwarded.pending(lambda subject, p: log_tap.subjects.device_of(subject) == device.device_id) == []


def test_an_unknown_device_is_told_and_counted(gateway, broker_url, pool):
    stranger = FakeDevice(broker_url, unique("bed"))
    stranger.link.start()
    assert stranger.link.wait_subscribed(10)
    before = counter("homecare_gateway_rejected_total", code="unknown_device")
    try:
        stranger.publish(DeviceChannel.STATUS, {"online": True})
        error = stranger.next_error()
        assert error["reason"] == f"device: {stranger.device_id} is not provisioned or was decommissioned"
        assert counter("homecare_gateway_rejected_total", code="unknown_device") == before + 1
        wait_for(lambda: _rejections(pool, stranger.device_id) == {"unknown_device": 1})
    finally:
        stranger.close()


def test_a_decommissioned_device_is_rejected(gateway, device_factory, pool):
    button = device_factory(DeviceKind.BUTTON)
    with pool.connection() as conn:
        gateway.admin.revoke(conn, button.device_id)
    button.press("meal")
    error = button.next_error()
    assert error["reason"].startswith(f"device: {button.device_id} is not provisioned")


def test_repeated_rejections_are_tallied_per_device_and_code(gateway, device_factory, pool):
    bed = device_factory(DeviceKind.BED)
    for _ in range(3):
        bed.publish(DeviceChannel.TELEMETRY, b"not json")
        bed.next_error()
    bed.publish(DeviceChannel.TELEMETRY, {"samples": []})
    assert bed.next_error()["reason"].startswith("samples: ")
    wait_for(lambda: _rejections(pool, bed.device_id) == {"json": 3, "schema": 1}, what="tallies")


def test_the_log_shows_a_rejected_payload_truncated(gateway, device_factory, caplog):
    import logging

    device = device_factory(DeviceKind.BED, connect=False)
    device.link.start()
    assert device.link.wait_subscribed(10)
    with caplog.at_level(logging.WARNING, logger="gateway.rejections"):
        device.publish(DeviceChannel.TELEMETRY, b'{"samples": "' + b"y" * 5000 + b'"}')
        device.next_error()
        record = wait_for(lambda: next((r for r in caplog.records if device.device_id in r.getMessage()
                                        or getattr(r, "device_id", None) == device.device_id), None))
    assert record.code == "schema" and len(record.payload) == 200
    assert record.payload.startswith(b'{"samples": "yyy')
