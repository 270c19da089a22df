"""The edge's parts on their own, with hand-written fakes instead of a broker."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import psycopg

from gateway.forwarder import Forwarder
from gateway.registry import DeviceRef
from gateway.worker import Worker
from homecare.contract import DeviceKind, Telemetry, validate
from homecare.internal import DeviceBatch, DeviceEvent
from homecare.topics import DeviceChannel, Subjects


class FakeLink:
    """The device session: records which device messages were acknowledged to the broker."""

    def __init__(self):
        self.acked: list[object] = []

    def ack(self, message):
        self.acked.append(message)


class FakeLog:
    """Records publishes; the test decides when JetStream 'stores' them (calls on_done)."""

    def __init__(self):
        self.subjects = Subjects("hc")
        self.published: list[tuple[str, bytes, object]] = []

    def publish(self, subject, payload, on_done=None, headers=None):
        self.published.append((subject, payload, on_done))


class Message:
    def __init__(self, n: int):
        self.n, self.timestamp, self.qos = n, time.monotonic(), 1


def _telemetry(samples: int = 1) -> Telemetry:
    base = int(datetime.now(UTC).timestamp() * 1000)
    return Telemetry.model_validate({"samples": [
        {"ts": base - i * 1000, "occupied": True, "heart_rate": 60, "movement": 0.1}
        for i in range(samples)
    ]})


BED = DeviceRef("bed-000001", DeviceKind.BED, "res-1")
BUTTON = DeviceRef("btn-000001", DeviceKind.BUTTON, "res-1")


def test_each_device_message_is_one_batch_acked_only_once_the_log_stored_it():
    link, log_ = FakeLink(), FakeLog()
    forwarder = Forwarder(link, log_)
    messages = [Message(i) for i in range(3)]
    for m in messages:
        forwarder.telemetry(BED, _telemetry(samples=2), m)
    assert len(log_.published) == 3  # one per device message: nothing waits to be coalesced
    for subject, payload, _ in log_.published:
        batch = DeviceBatch.model_validate_json(payload)
        assert subject == "hc.telemetry.bed-000001"
        assert (batch.device_id, batch.resident_id, len(batch.samples)) == (BED.id, BED.resident_id, 2)
    assert link.acked == []  # nothing acknowledged to the broker before the log has it
    log_.published[1][2]()
    assert link.acked == [messages[1]]  # each message on its own forward's acknowledgement
    log_.published[0][2]()
    log_.published[2][2]()
    assert link.acked == [messages[1], messages[0], messages[2]]


def test_an_event_goes_to_its_type_and_device_subject_and_is_acked_once_stored():
    link, log_ = FakeLink(), FakeLog()
    forwarder = Forwarder(link, log_)
    event = validate(DeviceChannel.EVENTS, json.dumps(
        {"event_id": "ev-1", "ts": datetime.now(UTC).isoformat(), "type": "button.pressed", "service": "meal"}
    ).encode())
    received_at = datetime.now(UTC)
    message = Message(1)
    forwarder.event(BUTTON, event, message, received_at)
    forwarder.event(BUTTON, event, Message(2), received_at)  # a repeat is forwarded too
    assert [subject for subject, _, _ in log_.published] == ["hc.events.button.pressed.btn-000001"] * 2
    forward = DeviceEvent.model_validate_json(log_.published[0][1])
    assert (forward.device_id, forward.device_kind, forward.resident_id, forward.event_id) == (
        BUTTON.id, DeviceKind.BUTTON, "res-1", "ev-1")
    assert forward.received_at == received_at and forward.service == "meal"
    assert link.acked == []
    log_.published[0][2]()
    assert link.acked == [message]


def test_the_worker_retries_while_the_database_is_away_and_gives_up_on_bugs():
    worker = Worker("test-worker", capacity=10, idle=lambda: None)
    worker.start()
    try:
        attempts = {"transient": 0, "bug": 0}
        done = threading.Event()
        gave_up = threading.Event()

        def flaky() -> None:
            attempts["transient"] += 1
            if attempts["transient"] < 3:
                raise psycopg.OperationalError("connection refused")
            done.set()

        def buggy() -> None:
            attempts["bug"] += 1
            raise KeyError("bug")

        worker.put(flaky)
        worker.put(buggy, give_up=gave_up.set)
        assert done.wait(10) and gave_up.wait(10)
        assert attempts == {"transient": 3, "bug": 3}
    finally:
        worker.stop()


def test_the_hand_written_batch_json_is_a_valid_device_batch():
    from gateway.forwarder import batch_json
    from homecare.internal import DeviceBatch

    telemetry = Telemetry.model_validate({"samples": [
        {"ts": "2026-11-29T03:00:00.250+08:00", "occupied": False, "heart_rate": None,
         "respiration_rate": None, "movement": 0.0},
        {"ts": int(datetime.now(UTC).timestamp() * 1000), "occupied": True, "heart_rate": 61,
         "respiration_rate": 13, "movement": 1},
    ]}, context={"skip_window": True})
    batch = DeviceBatch.model_validate_json(batch_json(BED, telemetry))
    assert (batch.device_id, batch.resident_id) == (BED.id, BED.resident_id)
    assert [s.ts for s in batch.samples] == [s.ts for s in telemetry.samples]
    assert batch.samples[0].ts.utcoffset().total_seconds() == 0
    assert [(s.heart_rate, s.movement) for s in batch.samples] == [(None, 0.0), (61, 1.0)]


def test_the_worker_can_be_stopped_and_started_again():
    worker = Worker("test-worker", capacity=2, idle=lambda: None)
    worker.start()
    worker.stop()
    ran = threading.Event()
    worker.start()
    try:
        worker.put(ran.set)
        assert ran.wait(5)
    finally:
        worker.stop()
