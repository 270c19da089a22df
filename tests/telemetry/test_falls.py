"""A suspected fall opens an emergency request: fall events become OpenRequest for dispatch."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from homecare.internal import DeviceEvent, OpenRequest
from homecare.log import streams
from services.telemetry.queries import count_samples
from tests.support import LogTap, unique, wait_for

from .conftest import FAST, metric
from .helpers import base_time, message, series


class Requests:
    """What telemetry asked dispatch to open, read from the log's requests stream."""

    def __init__(self, tap: LogTap):
        self.tap = tap
        self.seen = 0

    def next(self, timeout: float = 10.0) -> OpenRequest:
        found = self.tap.wait_messages(streams.REQUESTS, self.seen + 1, timeout=timeout)
        self.seen += 1
        return OpenRequest.model_validate_json(found[self.seen - 1].data)

    def count(self) -> int:
        return len(self.tap.messages(streams.REQUESTS))


@pytest.fixture
def requests(log_tap) -> Requests:
    return Requests(log_tap)


def _fall(bed: str, event_id: str, confidence: float) -> DeviceEvent:
    now = datetime.now(UTC)
    return DeviceEvent(
        device_id=bed, device_kind="bed", resident_id="res-fall", event_id=event_id, ts=now,
        type="fall.suspected", received_at=now, confidence=confidence,
    )


def test_a_suspected_fall_opens_one_emergency_request_per_event(make_component, publisher, requests):
    make_component()
    bed, event_id = unique("bed"), unique("ev")
    fall = _fall(bed, event_id, 0.91)
    publisher.event(fall)
    publisher.event(fall)  # stored twice in the log: the same idempotency key for dispatch
    first = requests.next()
    second = requests.next()
    assert first == second
    assert first.source_id == f"{bed}:{event_id}" and first.service == "emergency"
    assert first.resident_id == "res-fall" and first.device_id == bed and first.source == "device"


def test_unreadable_and_unconfident_falls_open_nothing(make_component, publisher, requests, log_tap):
    make_component(FAST.model_copy(update={"fall_min_confidence": 0.5}))
    rejected = metric("homecare_telemetry_messages_rejected_total", topic="alert-input", reason="unparseable")
    log_tap.publish(log_tap.subjects.event("fall.suspected", "bed-x"), b'{"device_id": "bed-x"}')
    publisher.event(_fall(unique("bed"), "low", 0.3))
    bed = unique("bed")
    publisher.event(_fall(bed, "high", 0.8))
    # Messages are handled in order, so the confident fall's request is the first to arrive.
    assert requests.next().source_id == f"{bed}:high"
    wait_for(
        lambda: metric("homecare_telemetry_messages_rejected_total", topic="alert-input", reason="unparseable")
        - rejected == 1,
        what="the unreadable event counted",
    )
    assert requests.count() == 1


def test_a_fall_is_not_held_up_by_samples_waiting_for_the_database(make_component, publisher, requests, database_url):
    """The alert inputs have consumers of their own: with samples the writers cannot commit
    (the table is locked), a fall still opens its request."""
    make_component()
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE telemetry.bed_samples IN ACCESS EXCLUSIVE MODE")
        beds = [unique("bed") for _ in range(60)]  # more than any broker's in-flight window here
        for bed in beds:
            publisher.telemetry(message((bed, "res-x", series(base_time(), 5))))
        bed = unique("bed")
        publisher.event(_fall(bed, "while-blocked", 0.9))
        assert requests.next().source_id == f"{bed}:while-blocked"
        blocker.rollback()
    # and the samples are stored once the table is free
    wait_for(lambda: _count(database_url, beds[-1]) == 5, what="the last bed's samples stored")


def _count(database_url: str, device_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        return count_samples(conn, device_id)
