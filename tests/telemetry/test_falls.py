"""A suspected fall opens an emergency request: fall events become OpenRequest for dispatch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from homecare.internal import DeviceEvent, OpenRequest
from homecare.topics import Internal, internal_event_topic
from tests.support import unique, wait_for

from .conftest import FAST, Listener, metric

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
