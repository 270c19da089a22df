"""Flood control: per-device budgets, what still passes over budget, and a stuck button that
cannot starve the others."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gateway.flood import FloodGate, Verdict
from gateway.settings import GatewaySettings
from homecare.contract import DeviceKind, format_ts
from homecare.topics import DeviceChannel, device_topic
from tests.support import now_ts, wait_for

from .conftest import counter, get_device

EVENTS, STATUS, TELEMETRY, ACKS = (
    DeviceChannel.EVENTS, DeviceChannel.STATUS, DeviceChannel.TELEMETRY, DeviceChannel.ACKS
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _press(service: str) -> bytes:
    return json.dumps({"event_id": str(uuid.uuid4()), "ts": now_ts(), "type": "button.pressed",
                       "service": service}).encode()


def _telemetry(age_s: float) -> bytes:
    ts = format_ts(datetime.now(UTC) - timedelta(seconds=age_s))
    return json.dumps({"samples": [{"ts": ts, "occupied": True, "heart_rate": 60, "movement": 0.1}]}).encode()


def test_a_bucket_lets_the_burst_through_then_the_rate():
    clock = Clock()
    gate = FloodGate(rate_per_s=2, burst=5, clock=clock)
    verdicts = [gate.admit("bed-1", ACKS, b"{}") for _ in range(8)]
    assert verdicts == [Verdict.PASS] * 5 + [Verdict.DROP] * 3
    assert gate.admit("bed-2", ACKS, b"{}") is Verdict.PASS  # another device has its own budget
    clock.now += 1.0  # two tokens back
    assert [gate.admit("bed-1", ACKS, b"{}") for _ in range(3)] == [Verdict.PASS, Verdict.PASS, Verdict.DROP]
    clock.now += 100  # refills up to the burst, not beyond
    assert [gate.admit("bed-1", ACKS, b"{}") for _ in range(6)].count(Verdict.PASS) == 5


def test_over_budget_a_first_press_passes_and_repeats_do_not():
    clock = Clock()
    gate = FloodGate(rate_per_s=1, burst=2, event_repeat_s=60, clock=clock)
    assert [gate.admit("btn-1", EVENTS, _press("meal")) for _ in range(4)] == [
        Verdict.PASS, Verdict.PASS, Verdict.DROP, Verdict.DROP]
    assert gate.admit("btn-1", EVENTS, _press("emergency")) is Verdict.NEWS  # never dropped
    assert gate.admit("btn-1", EVENTS, _press("emergency")) is Verdict.DROP  # its repeat is
    clock.now += 0.5
    assert gate.admit("btn-1", EVENTS, _press("meal")) is Verdict.DROP
    clock.now += 60
    for _ in range(3):  # spend the refilled budget
        gate.admit("btn-1", ACKS, b"{}")
    assert gate.admit("btn-1", EVENTS, _press("meal")) is Verdict.NEWS  # a minute on: news again
    assert gate.admit("btn-1", EVENTS, b"not json") is Verdict.DROP


def test_over_budget_a_change_of_online_and_a_backlog_pass():
    clock = Clock()
    gate = FloodGate(rate_per_s=1, burst=1, backlog_s=60, clock=clock)
    assert gate.admit("bed-1", STATUS, b'{"online": true}') is Verdict.PASS
    assert gate.admit("bed-1", STATUS, b'{"online": true, "battery": 0.5}') is Verdict.DROP
    assert gate.admit("bed-1", STATUS, b'{"online": false}') is Verdict.NEWS  # the last will
    assert gate.admit("bed-1", TELEMETRY, _telemetry(age_s=1)) is Verdict.DROP
    assert gate.admit("bed-1", TELEMETRY, _telemetry(age_s=600)) is Verdict.NEWS
    millis = json.dumps({"samples": [{"occupied": False, "movement": 0,
                                      "ts": int((datetime.now(UTC).timestamp() - 900) * 1000)}]})
    assert gate.admit("bed-1", TELEMETRY, millis.encode()) is Verdict.NEWS


def test_a_throttled_device_is_told_at_most_once_per_interval():
    clock = Clock()
    gate = FloodGate(rate_per_s=1, burst=1, reply_every_s=5, clock=clock)
    gate.admit("btn-1", ACKS, b"{}")
    gate.admit("btn-1", ACKS, b"{}")
    assert gate.reply_due("btn-1") == 1
    gate.admit("btn-1", ACKS, b"{}")
    assert gate.reply_due("btn-1") is None
    clock.now += 5
    for _ in range(4):
        gate.admit("btn-1", ACKS, b"{}")
    assert gate.reply_due("btn-1") == 4  # one token came back: 5 admitted, 1 passed


@pytest.fixture
def config() -> GatewaySettings:
    return GatewaySettings(
        flush_interval_s=0.1, sweep_interval_s=0.2, device_rate_per_s=2, device_burst=5, flood_reply_every_s=0.5,
    )


def test_a_stuck_button_is_throttled_and_does_not_starve_another(
    gateway, device_factory, log_tap, log_listener, pool
):
    events = log_listener(log_tap.subjects.events_of("button"))
    stuck = device_factory(DeviceKind.BUTTON)
    normal = device_factory(DeviceKind.BUTTON)
    dropped = counter("homecare_gateway_throttled_total", channel="events", outcome="dropped")

    def meal() -> dict:
        return {"event_id": str(uuid.uuid4()), "ts": now_ts(), "type": "button.pressed", "service": "meal"}

    sent = [stuck.link.publish(device_topic(stuck.device_id, EVENTS), json.dumps(meal()), qos=1) for _ in range(400)]
    normal_press = normal.press("meal")
    emergency = stuck.press("emergency")  # a first press of its kind, from a throttled device
    for info in sent:
        info.wait_for_publish(10)

    forwarded = {}
    while normal_press not in forwarded or emergency not in forwarded:
        subject, payload = events.next(lambda s, p: p["device_id"] in (stuck.device_id, normal.device_id))
        assert subject == log_tap.subjects.event("button.pressed", payload["device_id"])
        forwarded[payload["event_id"]] = payload
    assert forwarded[emergency]["service"] == "emergency"
    assert forwarded[normal_press]["device_id"] == normal.device_id

    reply = stuck.next_error()
    assert reply["reason"].startswith("rate: over the budget of 2 messages/s")
    assert normal.errors.empty()
    wait_for(lambda: counter("homecare_gateway_throttled_total", channel="events", outcome="dropped")
             >= dropped + 300, what="drops counted")
    # the gateway spent its work on the budget, not on the flood
    more = [p for _, p in events.pending(lambda s, p: p["device_id"] == stuck.device_id)]
    stuck_forwarded = [e for e in forwarded.values() if e["device_id"] == stuck.device_id] + more
    assert len(stuck_forwarded) < 60

    device = wait_for(lambda: (d := get_device(pool, stuck.device_id)).throttled_messages >= 300 and d,
                      what="throttling visible on the device")
    assert device.last_throttled_at is not None and device.rejected["rate"] >= 300
    assert get_device(pool, normal.device_id).throttled_messages == 0


POISON = {
    "10,000 [": b"[" * 10_000,
    "10,000 [ closed": b"[" * 10_000 + b"]" * 10_000,
    "type nested 5,000 deep": b'{"type": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    "type a list": b'{"type": ["button.pressed"], "service": "meal"}',
    "type an object": b'{"type": {"a": 1}, "online": {"a": 1}}',
    "service a list": b'{"type": "button.pressed", "service": ["meal"]}',
    "invalid UTF-8": b'{"type": "button.pressed", "service": "\xff\xfe"}',
    "lone surrogate": b'{"type": "button.pressed", "service": "\\ud800"}',
    "NaN": b'{"type": "button.pressed", "service": "meal", "x": NaN}',
    "64 KiB of junk": bytes(range(256)) * 256,
    "64 KiB of [": b"[" * 65_536,
    "over 64 KiB": b'{"type": "button.pressed", "service": "meal", "pad": "' + b"x" * 70_000 + b'"}',
    "not an object": b'"button.pressed"',
}


@pytest.mark.parametrize("payload", POISON.values(), ids=POISON.keys())
def test_the_event_key_of_a_payload_it_cannot_read_is_its_own_and_never_raises(payload):
    from gateway.flood import UNREADABLE, _event_key, _online

    assert _event_key(payload) == UNREADABLE
    assert _online(payload) is None


@pytest.mark.parametrize("channel", [EVENTS, STATUS, TELEMETRY, ACKS])
def test_unreadable_payloads_over_budget_are_repeats_not_news(channel):
    clock = Clock()
    gate = FloodGate(rate_per_s=1, burst=1, event_repeat_s=60, clock=clock)
    assert gate.admit("btn-1", channel, b"[" * 10_000) is Verdict.PASS
    for payload in POISON.values():
        assert gate.admit("btn-1", channel, payload) is Verdict.DROP
    # and an emergency from the same device is still news
    assert gate.admit("btn-1", EVENTS, _press("emergency")) is Verdict.NEWS
