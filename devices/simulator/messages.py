"""What a device sends: payloads of mqtt-v1 built as plain dicts, and the outgoing envelope."""

from __future__ import annotations

import json
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homecare.contract import MAX_PAYLOAD_BYTES, format_ts
from homecare.topics import DeviceChannel

# The contract's QoS per channel: telemetry may be 0 or 1; we use 1 so a batch survives a
# reconnect (the platform stores a sample once per (device, ts)).
QOS: dict[DeviceChannel, int] = {
    DeviceChannel.STATUS: 1,
    DeviceChannel.TELEMETRY: 1,
    DeviceChannel.EVENTS: 1,
    DeviceChannel.ACKS: 1,
}


# Labels of misbehaving messages that the platform should still accept (counted as sent too):
# a clock off within the window, a self-test that found a broken part.
ACCEPTABLE_LABELS = frozenset({"skew.accepted", "selftest.fail"})


@dataclass(frozen=True)
class Outgoing:
    """One message a device wants published on one of its own channels.

    A misbehaving device sets `label` (what is wrong with the message, for counting) and may
    set `raw`, the exact bytes to publish instead of the encoded payload (e.g. broken JSON).
    """

    channel: DeviceChannel
    payload: dict[str, Any]
    retain: bool = False
    raw: bytes | None = None
    label: str | None = None

    @property
    def wire(self) -> bytes:
        """The bytes published."""
        return self.raw if self.raw is not None else encode(self.payload)

    @property
    def well_formed(self) -> bool:
        """Whether the platform should accept it: counted with the normal traffic then."""
        return self.label is None or self.label in ACCEPTABLE_LABELS

    @property
    def qos(self) -> int:
        return QOS[self.channel]

    @property
    def kind(self) -> str:
        """A label for statistics: the channel, or the event type for events."""
        if self.channel is DeviceChannel.EVENTS:
            return str(self.payload.get("type"))
        return self.channel.value


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as the device puts it on the wire."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def fits(payload: dict[str, Any]) -> bool:
    """Whether the encoded payload is within the contract's 64 KiB."""
    return len(encode(payload)) <= MAX_PAYLOAD_BYTES


class DeviceRandom(random.Random):
    """A device's seeded generator; event ids drawn from it are salted per instance.

    Event ids must never repeat, also across runs of the same seeded population: the platform
    takes a repeated (device, event_id) for a redelivery and drops it. The behaviour a seed
    gives stays the same (the salt does not touch the draws)."""

    def __init__(self, seed: object) -> None:
        super().__init__(seed)
        self.salt = secrets.randbits(128)


def event_id(rng: random.Random) -> str:
    """A UUID4 from the device's own generator, salted per device instance (see DeviceRandom)."""
    return str(uuid.UUID(int=rng.getrandbits(128) ^ getattr(rng, "salt", 0), version=4))


def event(rng: random.Random, ts: datetime, type_: str, **fields: Any) -> Outgoing:
    """An `events` message."""
    payload = {"event_id": event_id(rng), "ts": format_ts(ts), "type": type_, **fields}
    return Outgoing(DeviceChannel.EVENTS, payload)


def selftest(
    rng: random.Random, ts: datetime, checks: dict[str, bool], trigger: str, command_id: str | None = None,
) -> Outgoing:
    """A `device.selftest` event (v1.1): `fail` when any check failed."""
    fields: dict[str, Any] = {"result": "pass" if all(checks.values()) else "fail", "checks": dict(checks),
                              "trigger": trigger}
    if command_id is not None:
        fields["command_id"] = command_id
    return event(rng, ts, "device.selftest", **fields)


def status(fw: str, battery: float | None = None, rssi: int | None = None) -> Outgoing:
    """A retained `status` message saying the device is online."""
    payload: dict[str, Any] = {"online": True, "fw": fw}
    if battery is not None:
        payload["battery"] = round(battery, 2)
    if rssi is not None:
        payload["rssi"] = rssi
    return Outgoing(DeviceChannel.STATUS, payload, retain=True)


OFFLINE = {"online": False}


def ack(command_id: str, ts: datetime) -> Outgoing:
    """An `acks` message: the command was shown or applied."""
    return Outgoing(DeviceChannel.ACKS, {"command_id": command_id, "ts": format_ts(ts)})
