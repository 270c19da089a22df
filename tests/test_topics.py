"""Topic names (MQTT) and subject names (the internal log), and their parsing."""

import pytest

from homecare.log import streams
from homecare.topics import (
    DeviceChannel,
    Subjects,
    TopicError,
    device_topic,
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
    with pytest.raises(TopicError) as info:
        parse_device_topic(topic)
    assert why in str(info.value)


def test_shared_subscription():
    assert shared("gateway", "a/b") == "$share/gateway/a/b"
    assert shared("gateway", "a/b", enabled=False) == "a/b"


def test_log_subjects_under_the_namespace_device_last():
    subjects = Subjects("T1a2B")
    assert subjects.root == "t1a2b"  # one namespace, whatever case it is given in
    assert subjects.telemetry("bed-000123") == "t1a2b.telemetry.bed-000123"
    assert subjects.event("button.pressed", "btn-1") == "t1a2b.events.button.pressed.btn-1"
    assert subjects.state("bed-000123") == "t1a2b.state.bed-000123"
    assert subjects.ack("btn-1") == "t1a2b.acks.btn-1"
    assert subjects.request("alert") == "t1a2b.requests.alert"
    assert subjects.dead("dispatch-buttons") == "t1a2b.dead.dispatch-buttons"
    assert subjects.of_stream("state") == "t1a2b.state.>"
    assert subjects.events_of("button") == "t1a2b.events.button.>"


def test_log_subjects_parse_back():
    subjects = Subjects("hc")
    for subject in (subjects.telemetry("bed-1"), subjects.state("bed-1"), subjects.ack("bed-1"),
                    subjects.event("bed.exit", "bed-1")):
        assert subjects.device_of(subject) == "bed-1"
    assert subjects.event_type_of(subjects.event("button.pressed", "btn-1")) == "button.pressed"
    assert subjects.event_type_of(subjects.event("fall.suspected", "bed-1")) == "fall.suspected"


def test_every_stream_holds_its_subjects():
    subjects = Subjects("hc")
    by_token = {spec.token: spec for spec in streams.ALL}
    assert set(by_token) == {"telemetry", "events", "state", "acks", "requests", "dead"}
    for subject in (subjects.telemetry("bed-1"), subjects.event("button.pressed", "btn-1"),
                    subjects.state("bed-1"), subjects.ack("btn-1"), subjects.request("alert"),
                    subjects.dead("telemetry-samples")):
        token = subject.split(".")[1]
        assert subject.startswith(subjects.of_stream(token)[:-1])
        assert by_token[token].stream_name("hc") == f"HC_{by_token[token].name}"
