"""A suspected fall opens an emergency request: fall events become OpenRequest for dispatch."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from homecare.internal import DeviceEvent, OpenRequest
from homecare.topics import Internal, internal_event_topic
from services.telemetry.queries import count_samples
from tests.support import unique, wait_for

from .conftest import FAST, Listener, metric
from .helpers import base_time, message, series

FALL = internal_event_topic("fall.suspected")


@pytest.fixture
def requests(broker_url, instance):
    listener = Listener(broker_url, f"dispatch-{instance}", Internal.OPEN_REQUEST)
    listener.link.start()
    assert listener.link.wait_subscribed(10)
    yield listener
    listener.link.stop()


def _fall(bed: str, event_id: str, confidence: float) -> bytes:
    now = datetime.now(UTC)
    return DeviceEvent(
        device_id=bed, device_kind="bed", resident_id="res-fall", event_id=event_id, ts=now,
        type="fall.suspected", received_at=now, confidence=confidence,
    ).dumps()


def test_a_suspected_fall_opens_one_emergency_request_per_event(make_component, publisher, requests):
    make_component()
    bed, event_id = unique("bed"), unique("ev")
    payload = _fall(bed, event_id, 0.91)
    publisher.publish(FALL, payload).wait_for_publish(10)
    publisher.publish(FALL, payload).wait_for_publish(10)  # redelivered: same idempotency key
    first = OpenRequest.model_validate_json(requests.next())
    second = OpenRequest.model_validate_json(requests.next())
    assert first == second
    assert first.source_id == f"{bed}:{event_id}" and first.service == "emergency"
    assert first.resident_id == "res-fall" and first.device_id == bed and first.source == "device"


def test_unreadable_and_unconfident_falls_open_nothing(make_component, publisher, requests):
    make_component(FAST.model_copy(update={"fall_min_confidence": 0.5}))
    rejected = metric("homecare_telemetry_messages_rejected_total", topic=FALL, reason="unparseable")
    publisher.publish(FALL, b'{"device_id": "bed-x"}').wait_for_publish(10)
    publisher.publish(FALL, _fall(unique("bed"), "low", 0.3)).wait_for_publish(10)
    bed = unique("bed")
    publisher.publish(FALL, _fall(bed, "high", 0.8)).wait_for_publish(10)
    # Messages are handled in order, so the confident fall's request is the first to arrive.
    assert OpenRequest.model_validate_json(requests.next()).source_id == f"{bed}:high"
    wait_for(
        lambda: metric("homecare_telemetry_messages_rejected_total", topic=FALL, reason="unparseable")
        - rejected == 1,
        what="the unreadable event counted",
    )
    assert requests.messages.empty()


def test_a_fall_is_not_held_up_by_samples_waiting_for_the_database(make_component, publisher, requests, database_url):
    """The alert inputs have a session of their own: with the samples' session full of messages
    the writer cannot commit (the table is locked), a fall still opens its request."""
    make_component()
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE telemetry.bed_samples IN ACCESS EXCLUSIVE MODE")
        beds = [unique("bed") for _ in range(60)]  # more than any broker's in-flight window here
        for bed in beds:
            publisher.publish(Internal.TELEMETRY, message((bed, "res-x", series(base_time(), 5))).dumps())
        bed = unique("bed")
        publisher.publish(FALL, _fall(bed, "while-blocked", 0.9)).wait_for_publish(10)
        assert OpenRequest.model_validate_json(requests.next()).source_id == f"{bed}:while-blocked"
        blocker.rollback()
    # and the samples are stored once the table is free
    wait_for(lambda: _count(database_url, beds[-1]) == 5, what="the last bed's samples stored")


def _count(database_url: str, device_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        return count_samples(conn, device_id)
