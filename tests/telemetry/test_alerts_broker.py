"""Alerts along the real path: internal messages on the broker, the running component, the
database. Samples raise a heart-rate alert after the ingest commit; events and device states are
acked only once their alert is stored, and retried while the database refuses them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from homecare.internal import DeviceEvent, DeviceState, OpenRequest
from homecare.topics import Internal, internal_event_topic
from tests.support import unique, wait_for

from .alert_support import alerts_of, recent_start, vitals_samples
from .conftest import Listener, metric
from .helpers import message


def _publish(publisher, topic: str, payload: bytes) -> None:
    publisher.publish(topic, payload, qos=1).wait_for_publish(10)


def _rules(pool, resident: str) -> list[str]:
    return sorted(a["rule"] for a in alerts_of(pool, resident))


def test_a_sustained_heart_rate_sent_through_the_broker_raises_one_alert(pool, make_component, publisher):
    make_component()
    bed, resident = unique("bed"), unique("res")
    samples = vitals_samples(recent_start(10), 150, heart_rate=131)
    for i in range(0, len(samples), 10):  # a batch every 10 s, as beds send them
        _publish(publisher, Internal.TELEMETRY, message((bed, resident, samples[i:i + 10])).dumps())
    wait_for(lambda: _rules(pool, resident) == ["heart_rate_range"], timeout=20, what="the heart-rate alert")
    time.sleep(1.5)  # later analysis passes look at the same run again
    [found] = alerts_of(pool, resident)
    assert found["occurrences"] == 1 and found["device_id"] == bed


def test_events_and_device_states_become_alerts(pool, make_component, publisher, broker_url, instance):
    requests = Listener(broker_url, f"dispatch-{instance}", Internal.OPEN_REQUEST)
    requests.link.start()
    assert requests.link.wait_subscribed(10)
    make_component()
    bed, resident = unique("bed"), unique("res")
    now = datetime.now(UTC)
    fall = DeviceEvent(device_id=bed, device_kind="bed", resident_id=resident, event_id=unique("ev"), ts=now,
                       type="fall.suspected", received_at=now, confidence=0.8)
    _publish(publisher, internal_event_topic("fall.suspected"), fall.dumps())
    low = DeviceEvent(device_id=bed, device_kind="bed", resident_id=resident, event_id=unique("ev"), ts=now,
                      type="battery.low", received_at=now, battery=0.1)
    _publish(publisher, internal_event_topic("battery.low"), low.dumps())
    _publish(publisher, Internal.DEVICE_STATE, b'{"device_id": 1}')  # unreadable: dropped, not blocking
    offline = DeviceState(device_id=bed, device_kind="bed", resident_id=resident, state="offline",
                          at=now - timedelta(minutes=30))
    _publish(publisher, Internal.DEVICE_STATE, offline.dumps())
    wait_for(lambda: _rules(pool, resident) == ["battery_low", "device_offline", "fall_suspected"], timeout=15,
             what="fall, battery and offline alerts")
    request = OpenRequest.model_validate_json(requests.next())
    assert request.source_id == f"{bed}:{fall.event_id}" and request.service == "emergency"
    requests.link.stop()
    categories = {a["rule"]: a["category"] for a in alerts_of(pool, resident)}
    assert categories == {"battery_low": "device", "device_offline": "device", "fall_suspected": "person"}
    assert metric("homecare_telemetry_messages_rejected_total", topic=Internal.DEVICE_STATE,
                  reason="unparseable") >= 1


def test_a_state_the_database_refuses_is_retried_until_stored(pool, make_component, publisher):
    make_component()
    bed, resident = unique("bed"), unique("res")
    with pool.connection() as conn:
        conn.execute("ALTER TABLE telemetry.device_status RENAME TO device_status_away")
    try:
        silent = DeviceState(device_id=bed, device_kind="bed", resident_id=resident, state="silent",
                             at=datetime.now(UTC))
        _publish(publisher, Internal.DEVICE_STATE, silent.dumps())
        wait_for(lambda: metric("homecare_telemetry_rule_errors_total", step="events") > 0, what="a failed try")
        assert alerts_of(pool, resident) == []
    finally:
        with pool.connection() as conn:
            conn.execute("ALTER TABLE telemetry.device_status_away RENAME TO device_status")
    wait_for(lambda: _rules(pool, resident) == ["device_silent"], timeout=15, what="the retried state stored")


def test_an_event_the_database_refuses_for_its_content_is_dropped_without_blocking(
    pool, make_component, publisher
):
    make_component()
    resident = unique("res")
    now = datetime.now(UTC)
    bad = DeviceEvent(device_id=unique("bed"), device_kind="bed", resident_id="res-\x00", event_id=unique("ev"),
                      ts=now, type="bed.exit", received_at=now)  # text with NUL: PostgreSQL refuses it
    good = DeviceState(device_id=unique("bed"), device_kind="bed", resident_id=resident, state="silent", at=now)
    before = metric("homecare_telemetry_messages_rejected_total", topic=internal_event_topic("bed.exit"),
                    reason="unstorable")
    _publish(publisher, internal_event_topic("bed.exit"), bad.dumps())
    _publish(publisher, Internal.DEVICE_STATE, good.dumps())
    wait_for(lambda: _rules(pool, resident) == ["device_silent"], timeout=15, what="the next message handled")
    assert metric("homecare_telemetry_messages_rejected_total", topic=internal_event_topic("bed.exit"),
                  reason="unstorable") - before == 1
