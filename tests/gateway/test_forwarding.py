"""Device data through the gateway onto internal topics, against the real broker and database."""

from __future__ import annotations

from gateway.bootstrap import build
from homecare.contract import DeviceKind
from homecare.internal import DeviceEvent, TelemetryBatches
from homecare.topics import DeviceChannel, Internal, internal_event_topic
from tests.support import now_ts, wait_for

from .conftest import counter, device_row


def _for(device_id: str):
    return lambda topic, payload: payload.get("device_id") == device_id


def test_a_press_sent_twice_is_forwarded_once(gateway, device_factory, listener_factory, pool):
    events = listener_factory(internal_event_topic("button.pressed"))
    button = device_factory(DeviceKind.BUTTON)
    duplicates = counter("homecare_gateway_duplicates_total")

    event_id = button.press("meal")
    button.press("meal", event_id=event_id)

    topic, payload = events.next(_for(button.device_id))
    event = DeviceEvent.model_validate(payload)
    assert topic == internal_event_topic("button.pressed")
    assert (event.event_id, event.service, event.device_kind) == (event_id, "meal", DeviceKind.BUTTON)
    assert event.resident_id == device_row(pool, button.device_id)["resident_id"]
    wait_for(lambda: counter("homecare_gateway_duplicates_total") >= duplicates + 1, what="duplicate")
    # the repeat was dropped, and the event id is remembered as forwarded
    wait_for(lambda: _forwarded(pool, button.device_id, event_id), what="marked forwarded")
    assert events.pending(_for(button.device_id)) == []


def test_a_redelivery_after_a_restart_is_not_forwarded_again(
    settings, config, pool, broker_url, gateway, device_factory, listener_factory
):
    events = listener_factory(internal_event_topic("button.pressed"))
    button = device_factory(DeviceKind.BUTTON)
    event_id = button.press("bathing")
    events.next(_for(button.device_id))
    wait_for(lambda: _forwarded(pool, button.device_id, event_id), what="marked forwarded")

    gateway.stop()  # the same replica comes back: same client id, same session
    restarted = build(settings, pool, config)
    restarted.start()
    try:
        duplicates = counter("homecare_gateway_duplicates_total")
        button.press("bathing", event_id=event_id)
        other = button.press("bathing")
        _, payload = events.next(_for(button.device_id))
        assert payload["event_id"] == other  # the new one came through, the old one did not
        wait_for(lambda: counter("homecare_gateway_duplicates_total") >= duplicates + 1)
        assert events.pending(_for(button.device_id)) == []
    finally:
        restarted.stop()
        gateway.start()  # so the fixture's teardown finds it running


def test_bed_events_carry_their_fields(gateway, device_factory, listener_factory):
    events = listener_factory(*[internal_event_topic(t) for t in ("fall.suspected", "bed.exit")])
    bed = device_factory(DeviceKind.BED)
    bed.publish(DeviceChannel.EVENTS, {"event_id": "e-1", "ts": now_ts(), "type": "bed.exit"})
    bed.publish(DeviceChannel.EVENTS, {
        "event_id": "e-2", "ts": now_ts(), "type": "fall.suspected", "confidence": 0.8,
        "firmware_extra": "ignored",
    })
    seen = {events.next(_for(bed.device_id))[1]["type"] for _ in range(2)}
    assert seen == {"bed.exit", "fall.suspected"}


def test_a_telemetry_batch_is_forwarded(gateway, device_factory, listener_factory, pool):
    telemetry = listener_factory(Internal.TELEMETRY)
    bed = device_factory(DeviceKind.BED)
    samples = [
        {"ts": now_ts(-2), "occupied": True, "heart_rate": 62, "respiration_rate": 14, "movement": 0.05},
        {"ts": now_ts(-1), "occupied": True, "heart_rate": 63, "respiration_rate": 15, "movement": 0.1},
        {"ts": now_ts(0), "occupied": False, "heart_rate": None, "respiration_rate": None, "movement": 0},
    ]
    bed.publish(DeviceChannel.TELEMETRY, {"samples": samples})

    def has_bed(topic, payload):
        return any(b["device_id"] == bed.device_id for b in payload["batches"])

    _, payload = telemetry.next(has_bed)
    batches = TelemetryBatches.model_validate(payload).batches
    mine = next(b for b in batches if b.device_id == bed.device_id)
    assert mine.resident_id == device_row(pool, bed.device_id)["resident_id"]
    assert [s.heart_rate for s in mine.samples] == [62, 63, None]
    assert mine.samples[2].occupied is False and mine.samples[0].ts.tzinfo is not None
    wait_for(lambda: device_row(pool, bed.device_id)["last_seen"] is not None, what="last_seen")


def test_telemetry_of_many_beds_is_coalesced(gateway, device_factory, listener_factory):
    telemetry = listener_factory(Internal.TELEMETRY)
    beds = [device_factory(DeviceKind.BED) for _ in range(3)]
    ids = {b.device_id for b in beds}
    for second in range(5):
        for bed in beds:
            bed.publish(DeviceChannel.TELEMETRY, {"samples": [
                {"ts": now_ts(-second), "occupied": True, "heart_rate": 70, "movement": 0.2}
            ]})
    received: list[tuple[str, str]] = []
    while len(received) < 15:
        _, payload = telemetry.next(lambda t, p: any(b["device_id"] in ids for b in p["batches"]))
        received += [(b["device_id"], b["samples"][0]["ts"]) for b in payload["batches"]
                     if b["device_id"] in ids]
    assert len(set(received)) == 15  # every batch of every bed, none lost
    assert telemetry.pending(lambda t, p: any(b["device_id"] in ids for b in p["batches"])) == []


def _forwarded(pool, device_id: str, event_id: str) -> bool:
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT forwarded FROM gateway.seen_events WHERE device_id = %s AND event_id = %s",
            (device_id, event_id),
        ).fetchone()
    return bool(row and row["forwarded"])


def test_what_devices_send_while_the_gateway_is_down_is_forwarded_when_it_is_back(
    gateway, device_factory, listener_factory
):
    events = listener_factory(internal_event_topic("button.pressed"))
    button = device_factory(DeviceKind.BUTTON)
    gateway.stop()  # a clean stop: its persistent session keeps collecting
    event_id = button.press("emergency")
    gateway.start()
    _, payload = events.next(_for(button.device_id))
    assert (payload["event_id"], payload["service"]) == (event_id, "emergency")


def test_the_component_reports_ready_and_counts_messages(gateway, device_factory):
    checks = gateway.checks()
    assert set(checks) == {"database", "broker", "edge", "log"} and all(check() for check in checks.values())
    assert [r.prefix for r in gateway.routers()] == ["/api/v1/devices"]
    before = counter("homecare_gateway_messages_total", channel="status")
    device_factory(DeviceKind.BED)  # connects and publishes its status
    wait_for(lambda: counter("homecare_gateway_messages_total", channel="status") == before + 1)
