"""Alerts along the real path: messages in the internal log, the running component, the
database. Samples raise a heart-rate alert after the ingest commit; events and device states are
acked only once their alert is stored, and retried while the database is away; a message the
database refuses for its content is dead-lettered with the reason."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from homecare.internal import DeviceEvent, DeviceState, OpenRequest
from homecare.log import streams
from tests.support import unique, wait_for

from .alert_support import alerts_of, recent_start, vitals_samples
from .conftest import metric
from .helpers import message


def _rules(pool, resident: str) -> list[str]:
    return sorted(a["rule"] for a in alerts_of(pool, resident))


def test_a_sustained_heart_rate_sent_through_the_log_raises_one_alert(pool, make_component, publisher):
    make_component()
    bed, resident = unique("bed"), unique("res")
    samples = vitals_samples(recent_start(10), 150, heart_rate=131)
    for i in range(0, len(samples), 10):  # a batch every 10 s, as beds send them
        publisher.telemetry(message((bed, resident, samples[i:i + 10])))
    wait_for(lambda: _rules(pool, resident) == ["heart_rate_range"], timeout=20, what="the heart-rate alert")
    time.sleep(1.5)  # later analysis passes look at the same run again
    [found] = alerts_of(pool, resident)
    assert found["occurrences"] == 1 and found["device_id"] == bed


def test_events_and_device_states_become_alerts(pool, make_component, publisher, log_tap):
    make_component()
    bed, resident = unique("bed"), unique("res")
    now = datetime.now(UTC)
    fall = DeviceEvent(device_id=bed, device_kind="bed", resident_id=resident, event_id=unique("ev"), ts=now,
                       type="fall.suspected", received_at=now, confidence=0.8)
    publisher.event(fall)
    low = DeviceEvent(device_id=bed, device_kind="bed", resident_id=resident, event_id=unique("ev"), ts=now,
                      type="battery.low", received_at=now, battery=0.1)
    publisher.event(low)
    log_tap.publish(log_tap.subjects.state("bed-x"), b'{"device_id": 1}')  # unreadable: dead-lettered
    offline = DeviceState(device_id=bed, device_kind="bed", resident_id=resident, state="offline",
                          at=now - timedelta(minutes=30))
    publisher.state(offline)
    wait_for(lambda: _rules(pool, resident) == ["battery_low", "device_offline", "fall_suspected"], timeout=15,
             what="fall, battery and offline alerts")
    [stored] = log_tap.wait_messages(streams.REQUESTS, 1)
    request = OpenRequest.model_validate_json(stored.data)
    assert request.source_id == f"{bed}:{fall.event_id}" and request.service == "emergency"
    categories = {a["rule"]: a["category"] for a in alerts_of(pool, resident)}
    assert categories == {"battery_low": "device", "device_offline": "device", "fall_suspected": "person"}
    assert metric("homecare_telemetry_messages_rejected_total", topic="alert-input", reason="unparseable") >= 1
    [dead] = log_tap.wait_messages(streams.DEAD, 1)
    assert dead.headers["Homecare-Consumer"] == "telemetry-states" and dead.data == b'{"device_id": 1}'


def test_a_failed_self_test_through_the_log_is_a_device_fault_that_a_pass_clears(pool, make_component, publisher):
    make_component()
    button, resident = unique("btn"), unique("res")
    now = datetime.now(UTC)

    def selftest(result: str, at: datetime, **checks: bool) -> DeviceEvent:
        return DeviceEvent(device_id=button, device_kind="button", resident_id=resident, event_id=unique("ev"),
                           ts=at, type="device.selftest", received_at=at, result=result, checks=checks,
                           trigger="platform", command_id="c-1")

    publisher.event(selftest("fail", now - timedelta(minutes=2), button=True, speaker=False))
    wait_for(lambda: _rules(pool, resident) == ["device_selftest_failed"], timeout=15, what="the fault")
    [fault] = alerts_of(pool, resident)
    assert fault["category"] == "device" and "speaker" in fault["summary"]
    publisher.event(selftest("pass", now - timedelta(minutes=1), button=True, speaker=True))
    wait_for(lambda: [a["state"] for a in alerts_of(pool, resident)] == ["resolved"], timeout=15,
             what="the fault cleared by a passing self-test")
    with pool.connection() as conn:
        row = conn.execute("SELECT result, trigger, misses FROM telemetry.device_selftests WHERE device_id = %s",
                           (button,)).fetchone()
    assert (row["result"], row["trigger"], row["misses"]) == ("pass", "platform", 0)


def test_a_state_is_retried_while_the_database_cannot_take_it_and_stored_after(pool, make_component, publisher):
    make_component()
    bed, resident = unique("bed"), unique("res")
    with pool.connection() as conn:
        conn.execute("ALTER TABLE telemetry.device_status RENAME TO device_status_away")
    try:
        silent = DeviceState(device_id=bed, device_kind="bed", resident_id=resident, state="silent",
                             at=datetime.now(UTC))
        failures = metric("homecare_log_handle_seconds_count", consumer="telemetry-states")
        publisher.state(silent)
        time.sleep(2)  # tried, and held: a missing table is no fault of the message
        assert alerts_of(pool, resident) == []
        assert metric("homecare_log_handle_seconds_count", consumer="telemetry-states") == failures
    finally:
        with pool.connection() as conn:
            conn.execute("ALTER TABLE telemetry.device_status_away RENAME TO device_status")
    wait_for(lambda: _rules(pool, resident) == ["device_silent"], timeout=15, what="the retried state stored")


def test_an_event_the_database_refuses_for_its_content_is_dead_lettered_without_blocking(
    pool, make_component, publisher, log_tap
):
    make_component()
    resident = unique("res")
    now = datetime.now(UTC)
    bad = DeviceEvent(device_id=unique("bed"), device_kind="bed", resident_id="res-\x00", event_id=unique("ev"),
                      ts=now, type="bed.exit", received_at=now)  # text with NUL: PostgreSQL refuses it
    good = DeviceState(device_id=unique("bed"), device_kind="bed", resident_id=resident, state="silent", at=now)
    before = metric("homecare_telemetry_messages_rejected_total", topic="alert-input", reason="unstorable")
    publisher.event(bad)
    publisher.state(good)
    wait_for(lambda: _rules(pool, resident) == ["device_silent"], timeout=15, what="the next message handled")
    [dead] = log_tap.wait_messages(streams.DEAD, 1)
    assert "the database refuses it" in dead.headers["Homecare-Reason"]
    assert metric("homecare_telemetry_messages_rejected_total", topic="alert-input", reason="unstorable") - before == 1


def test_a_stuck_buttons_presses_through_the_log_raise_one_device_alert(pool, make_component, publisher):
    """The alert consumer reads button presses from EVENTS too (dispatch's consumer reads them
    for the requests): a stuck button's run is judged on the presses' own times."""
    make_component()
    button, resident = unique("btn"), unique("res")
    start = datetime.now(UTC) - timedelta(seconds=20)
    for n in range(28):  # 4 a second for 7 s, sent at once
        ts = start + timedelta(seconds=0.25 * n)
        publisher.event(DeviceEvent(device_id=button, device_kind="button", resident_id=resident,
                                    event_id=unique("ev"), ts=ts, type="button.pressed", received_at=ts,
                                    service="bathing"))
    wait_for(lambda: _rules(pool, resident) == ["button_stuck"], timeout=15, what="the stuck-button alert")
    wait_for(lambda: metric("homecare_telemetry_alert_messages_total", topic="button.pressed",
                            outcome="handled") >= 28, timeout=15, what="every press handled")
    [found] = alerts_of(pool, resident)
    assert found["device_id"] == button and found["occurrences"] == 1 and found["severity"] == "high"
