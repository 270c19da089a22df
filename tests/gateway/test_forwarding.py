"""Device data through the gateway into the internal log, against the real broker, NATS and database."""

from __future__ import annotations

from datetime import datetime

from gateway.bootstrap import build
from homecare.contract import DeviceKind
from homecare.internal import DeviceBatch, DeviceEvent
from homecare.log import streams
from homecare.topics import DeviceChannel
from tests.support import now_ts, wait_for

from .conftest import counter, device_row


def _for(device_id: str):
    return lambda subject, payload: payload.get("device_id") == device_id


def test_a_press_sent_twice_is_forwarded_each_time(gateway, device_factory, log_tap, log_listener, pool):
    # The gateway de-duplicates nothing: a repeated event id (a QoS 1 redelivery) is stored in
    # the log again, and its consumers apply it once (dispatch: tests/dispatch/test_intake.py::
    # test_a_redelivered_event_has_no_second_effect).
    button = device_factory(DeviceKind.BUTTON)
    subject = log_tap.subjects.event("button.pressed", button.device_id)
    events = log_listener(log_tap.subjects.of_stream("events"))

    event_id = button.press("meal")
    button.press("meal", event_id=event_id)

    for _ in range(2):
        got, payload = events.next(_for(button.device_id))
        event = DeviceEvent.model_validate(payload)
        assert got == subject
        assert (event.event_id, event.service, event.device_kind) == (event_id, "meal", DeviceKind.BUTTON)
        assert event.resident_id == device_row(pool, button.device_id)["resident_id"]
    stored = log_tap.wait_messages(streams.EVENTS, 2, subject)
    assert [DeviceEvent.model_validate_json(m.data).event_id for m in stored] == [event_id, event_id]
    # both device messages were acknowledged once the log had them: none left in flight
    wait_for(lambda: gateway.control.oldest_unacked_s() == 0, what="nothing in flight")
    assert events.pending(_for(button.device_id)) == []


def test_a_redelivery_after_a_restart_is_forwarded_again(
    settings, config, pool, gateway, device_factory, log_tap, log_listener
):
    # A gateway keeps no memory of what it forwarded: after a restart the same replica (same
    # client id, same session) forwards a repeated event id again, in order with the new ones;
    # consumers de-duplicate by event id.
    events = log_listener(log_tap.subjects.events_of("button"))
    button = device_factory(DeviceKind.BUTTON)
    event_id = button.press("bathing")
    assert events.next(_for(button.device_id))[1]["event_id"] == event_id

    gateway.stop()
    restarted = build(settings, pool, config)
    restarted.start()
    try:
        button.press("bathing", event_id=event_id)
        other = button.press("bathing")
        got = [events.next(_for(button.device_id))[1]["event_id"] for _ in range(2)]
        assert got == [event_id, other]
        stored = log_tap.wait_messages(streams.EVENTS, 3, log_tap.subjects.event("button.pressed", button.device_id))
        assert [DeviceEvent.model_validate_json(m.data).event_id for m in stored] == [event_id, event_id, other]
        assert events.pending(_for(button.device_id)) == []
    finally:
        restarted.stop()
        gateway.start()  # so the fixture's teardown finds it running


def test_bed_events_carry_their_fields(gateway, device_factory, log_tap, log_listener):
    bed = device_factory(DeviceKind.BED)
    events = log_listener(log_tap.subjects.events_of("fall"), log_tap.subjects.events_of("bed"))
    bed.publish(DeviceChannel.EVENTS, {"event_id": "e-1", "ts": now_ts(), "type": "bed.exit"})
    bed.publish(DeviceChannel.EVENTS, {
        "event_id": "e-2", "ts": now_ts(), "type": "fall.suspected", "confidence": 0.8,
        "firmware_extra": "ignored",
    })
    seen = dict(events.next(_for(bed.device_id)) for _ in range(2))
    assert set(seen) == {log_tap.subjects.event(t, bed.device_id) for t in ("bed.exit", "fall.suspected")}
    exit_, fall = (seen[log_tap.subjects.event(t, bed.device_id)] for t in ("bed.exit", "fall.suspected"))
    assert (exit_["type"], exit_["event_id"]) == ("bed.exit", "e-1")
    assert (fall["type"], fall["event_id"], fall["confidence"]) == ("fall.suspected", "e-2", 0.8)


def test_a_telemetry_batch_is_forwarded(gateway, device_factory, log_tap, log_listener, pool):
    bed = device_factory(DeviceKind.BED)
    telemetry = log_listener(log_tap.subjects.of_stream("telemetry"))
    samples = [
        {"ts": now_ts(-2), "occupied": True, "heart_rate": 62, "respiration_rate": 14, "movement": 0.05},
        {"ts": now_ts(-1), "occupied": True, "heart_rate": 63, "respiration_rate": 15, "movement": 0.1},
        {"ts": now_ts(0), "occupied": False, "heart_rate": None, "respiration_rate": None, "movement": 0},
    ]
    bed.publish(DeviceChannel.TELEMETRY, {"samples": samples})

    subject, payload = telemetry.next(_for(bed.device_id))
    assert subject == log_tap.subjects.telemetry(bed.device_id)
    mine = DeviceBatch.model_validate(payload)
    assert mine.resident_id == device_row(pool, bed.device_id)["resident_id"]
    assert [s.heart_rate for s in mine.samples] == [62, 63, None]
    assert mine.samples[2].occupied is False and mine.samples[0].ts.tzinfo is not None
    # stored in the TELEMETRY stream, where the telemetry service reads it
    stored = log_tap.wait_messages(streams.TELEMETRY, 1, subject)
    assert [DeviceBatch.model_validate_json(m.data) for m in stored] == [mine]
    wait_for(lambda: device_row(pool, bed.device_id)["last_seen"] is not None, what="last_seen")


def test_each_telemetry_message_of_many_beds_is_one_batch_in_the_log(gateway, device_factory, log_tap, log_listener):
    # One DeviceBatch per device message, on its device's subject: nothing is coalesced, nothing
    # lost, and each bed's batches keep the order the bed sent them in.
    beds = [device_factory(DeviceKind.BED) for _ in range(3)]
    ids = {b.device_id for b in beds}
    telemetry = log_listener(log_tap.subjects.of_stream("telemetry"))
    sent: dict[str, list[datetime]] = {b.device_id: [] for b in beds}
    for second in range(5):
        for bed in beds:
            ts = now_ts(-10 + second)
            sent[bed.device_id].append(datetime.fromisoformat(ts))
            bed.publish(DeviceChannel.TELEMETRY, {"samples": [
                {"ts": ts, "occupied": True, "heart_rate": 70, "movement": 0.2}
            ]})

    def ours(subject, payload):
        return payload.get("device_id") in ids

    received: dict[str, list[datetime]] = {device_id: [] for device_id in ids}
    for _ in range(15):
        subject, payload = telemetry.next(ours)
        batch = DeviceBatch.model_validate(payload)
        assert subject == log_tap.subjects.telemetry(batch.device_id) and len(batch.samples) == 1
        received[batch.device_id].append(batch.samples[0].ts)
    assert received == sent  # every message of every bed, one batch each, in order
    assert telemetry.pending(ours) == []
    stored = log_tap.wait_messages(streams.TELEMETRY, 15)
    assert sorted(m.subject for m in stored) == sorted(log_tap.subjects.telemetry(d) for d in ids for _ in range(5))


def test_what_devices_send_while_the_gateway_is_down_is_forwarded_when_it_is_back(
    gateway, device_factory, log_tap, log_listener
):
    events = log_listener(log_tap.subjects.events_of("button"))
    button = device_factory(DeviceKind.BUTTON)
    gateway.stop()  # a clean stop: its persistent session keeps collecting
    event_id = button.press("emergency")
    gateway.start()
    subject, payload = events.next(_for(button.device_id))
    assert subject == log_tap.subjects.event("button.pressed", button.device_id)
    assert (payload["event_id"], payload["service"]) == (event_id, "emergency")


def test_the_component_reports_ready_and_counts_messages(gateway, device_factory):
    checks = gateway.checks()
    assert set(checks) == {"database", "broker", "edge", "log"} and all(check() for check in checks.values())
    assert [r.prefix for r in gateway.routers()] == ["/api/v1/devices"]
    before = counter("homecare_gateway_messages_total", channel="status")
    device_factory(DeviceKind.BED)  # connects and publishes its status
    wait_for(lambda: counter("homecare_gateway_messages_total", channel="status") == before + 1)
