"""The edge's parts on their own, with hand-written fakes instead of a broker."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import psycopg

from gateway.forwarder import TelemetryCoalescer
from gateway.registry import DeviceRef
from gateway.worker import Worker
from homecare.contract import DeviceKind, Telemetry
from homecare.topics import Internal


class FakeLink:
    """Records publishes; the test decides when the broker 'acknowledges' them."""

    def __init__(self):
        self.published: list[tuple[str, bytes, object]] = []
        self.acked: list[object] = []

    def publish(self, topic, payload, qos=1, retain=False, on_done=None):
        self.published.append((topic, payload, on_done))

    def ack(self, message):
        self.acked.append(message)


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


def test_batches_are_coalesced_and_acked_only_on_the_brokers_acknowledgement():
    link = FakeLink()
    coalescer = TelemetryCoalescer(link, window_s=60, max_batches=3, max_bytes=1 << 20)
    messages = [Message(i) for i in range(4)]
    for m in messages:
        coalescer.add(BED, _telemetry(), m)
    assert len(link.published) == 1  # the first three filled a message, the fourth waits
    topic, payload, on_done = link.published[0]
    assert topic == Internal.TELEMETRY
    assert [b["device_id"] for b in json.loads(payload)["batches"]] == [BED.id] * 3
    assert link.acked == []
    on_done()
    assert link.acked == messages[:3]
    coalescer.flush()
    assert len(json.loads(link.published[1][1])["batches"]) == 1


def test_a_flush_happens_when_the_window_has_passed():
    link = FakeLink()
    coalescer = TelemetryCoalescer(link, window_s=0.05, max_batches=100, max_bytes=1 << 20)
    coalescer.add(BED, _telemetry(), Message(1))
    coalescer.flush_if_due()
    assert link.published == [] and 0 < coalescer.due_in() <= 0.05
    time.sleep(0.06)
    coalescer.flush_if_due()
    assert len(link.published) == 1 and coalescer.due_in() is None


def test_the_size_limit_starts_a_new_message_before_it_is_exceeded():
    link = FakeLink()
    coalescer = TelemetryCoalescer(link, window_s=60, max_batches=100, max_bytes=20_000)
    for i in range(6):
        coalescer.add(BED, _telemetry(samples=40), Message(i))  # about 4.5 kB each
    coalescer.flush()
    sizes = [len(p) for _, p, _ in link.published]
    assert len(sizes) >= 2 and all(s <= 20_000 for s in sizes)
    assert sum(len(json.loads(p)["batches"]) for _, p, _ in link.published) == 6


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
