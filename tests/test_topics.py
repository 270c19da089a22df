"""Topic names and their parsing."""

import pytest

from homecare.topics import (
    DeviceChannel,
    TopicError,
    device_topic,
    internal_event_topic,
    parse_device_topic,
    shared,
)


def test_device_topic_round_trip():
    topic = device_topic("bed-000123", DeviceChannel.TELEMETRY)
    assert topic == "homecare/v1/devices/bed-000123/telemetry"
    parsed = parse_device_topic(topic)
    assert (parsed.device_id, parsed.channel) == ("bed-000123", DeviceChannel.TELEMETRY)


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        ("homecare/v2/devices/bed-1/telemetry", "must start with"),
        ("homecare/v1/devices/bed-000123/telemetry/extra", "must be homecare/v1/devices/{id}/{channel}"),
        ("homecare/v1/devices/Bed-000123/telemetry", "does not match"),
        ("homecare/v1/devices/ab/telemetry", "does not match"),
        ("homecare/v1/devices/bed-000123/firmware", "unknown channel"),
    ],
)
def test_bad_topics_say_why(topic, why):
    with pytest.raises(TopicError, match="") as info:
        parse_device_topic(topic)
    assert why in str(info.value)


def test_shared_subscription_and_internal_names():
    assert shared("gateway", "a/b") == "$share/gateway/a/b"
    assert shared("gateway", "a/b", enabled=False) == "a/b"
    assert internal_event_topic("button.pressed") == "homecare/internal/v1/events/button.pressed"
