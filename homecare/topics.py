"""Every MQTT topic name of the network, and their parsing, and the subjects of the internal log.
No topic string is built elsewhere. The broker carries only the devices' own topics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DEVICE_PREFIX = "homecare/v1/devices"

DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)


class DeviceChannel(StrEnum):
    """The per-device topics of mqtt-v1."""

    STATUS = "status"
    TELEMETRY = "telemetry"
    EVENTS = "events"
    COMMANDS = "commands"
    ACKS = "acks"
    ERRORS = "errors"


# Channels a device publishes on, and those it subscribes to.
DEVICE_PUBLISHES = (DeviceChannel.STATUS, DeviceChannel.TELEMETRY, DeviceChannel.EVENTS, DeviceChannel.ACKS)
DEVICE_SUBSCRIBES = (DeviceChannel.COMMANDS, DeviceChannel.ERRORS)


def device_topic(device_id: str, channel: DeviceChannel | str) -> str:
    """`homecare/v1/devices/{id}/{channel}`."""
    return f"{DEVICE_PREFIX}/{device_id}/{DeviceChannel(channel).value}"


def all_devices_filter(channel: DeviceChannel | str | None = None) -> str:
    """Subscription filter for one channel of every device, or for all of them."""
    return f"{DEVICE_PREFIX}/+/{DeviceChannel(channel).value if channel else '+'}"


class TopicError(ValueError):
    """A topic that is not one of the contract's."""


@dataclass(frozen=True)
class DeviceTopic:
    device_id: str
    channel: DeviceChannel


def parse_device_topic(topic: str) -> DeviceTopic:
    """Split a device topic into device id and channel, or raise TopicError saying why."""
    prefix = DEVICE_PREFIX + "/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic must start with {prefix}")
    parts = topic[len(prefix):].split("/")
    if len(parts) != 2:
        raise TopicError("topic must be homecare/v1/devices/{id}/{channel}")
    device_id, channel = parts
    if not _DEVICE_ID.match(device_id):
        raise TopicError(f"device id {device_id!r} does not match {DEVICE_ID_PATTERN}")
    try:
        return DeviceTopic(device_id, DeviceChannel(channel))
    except ValueError:
        raise TopicError(f"unknown channel {channel!r}") from None


def is_valid_device_id(device_id: str) -> bool:
    """Whether a string is a well-formed device id."""
    return bool(_DEVICE_ID.match(device_id))


def shared(group: str, topic_filter: str, enabled: bool = True) -> str:
    """A shared subscription `$share/{group}/{filter}` so replicas split the load."""
    return f"$share/{group}/{topic_filter}" if enabled else topic_filter


class Subjects:
    """Subjects of the internal log (NATS JetStream), under the deployment's namespace.

    Each stream's subjects are `<ns>.<stream token>.` followed by what consumers filter on, the
    device id last: `hc.telemetry.{device}`, `hc.events.button.pressed.{device}`,
    `hc.state.{device}`, `hc.acks.{device}`, `hc.requests.{source}`, `hc.dead.{consumer}`.
    """

    def __init__(self, namespace: str):
        self.root = namespace.lower()

    def of_stream(self, token: str) -> str:
        """Every subject of one stream."""
        return f"{self.root}.{token}.>"

    def telemetry(self, device_id: str) -> str:
        return f"{self.root}.telemetry.{device_id}"

    def event(self, event_type: str, device_id: str) -> str:
        """An event of the contract's types (`button.pressed` is two tokens: filterable by family)."""
        return f"{self.root}.events.{event_type}.{device_id}"

    def events_of(self, family: str) -> str:
        """Every event of a family, e.g. `button` or `bed`."""
        return f"{self.root}.events.{family}.>"

    def state(self, device_id: str) -> str:
        """A liveness transition of a device (online, offline, silent)."""
        return f"{self.root}.state.{device_id}"

    def ack(self, device_id: str) -> str:
        """A device's acknowledgement of a command."""
        return f"{self.root}.acks.{device_id}"

    def request(self, source: str) -> str:
        """A service asks dispatch to open a request (a suspected fall: source `alert`)."""
        return f"{self.root}.requests.{source}"

    def dead(self, consumer: str) -> str:
        """A message a consumer gave up on, kept for an operator to read and replay."""
        return f"{self.root}.dead.{consumer}"

    def device_of(self, subject: str) -> str:
        """The device id a device-scoped subject ends with."""
        return subject.rsplit(".", 1)[-1]

    def event_type_of(self, subject: str) -> str:
        """`button.pressed` of `hc.events.button.pressed.{device}`."""
        parts = subject.split(".")
        return ".".join(parts[2:-1])
