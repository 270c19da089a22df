"""Messages between components in the internal log (see homecare.topics.Subjects): validated
and normalised by the gateway, or emitted by a service. All are JSON and idempotent to
re-process."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from homecare.contract.models import DeviceKind, Service


class _Internal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def dumps(self) -> bytes:
        """Compact JSON bytes for publishing."""
        return self.model_dump_json(exclude_none=False).encode()


class SampleRow(_Internal):
    ts: datetime
    occupied: bool
    heart_rate: int | None = None
    respiration_rate: int | None = None
    movement: float


class DeviceBatch(_Internal):
    device_id: str
    resident_id: str
    samples: list[SampleRow]


class TelemetryBatches(_Internal):
    """Many devices' validated batches together: how telemetry parses a fetched batch at once."""

    batches: list[DeviceBatch]


class DeviceEvent(_Internal):
    """`events.{type}.{device}` in the log: a validated device event (consumers de-duplicate it).

    Type-specific fields of mqtt-v1 (service, confidence, battery, a self-test's result, checks,
    command id and trigger) are kept as they came.
    """

    model_config = ConfigDict(extra="allow")

    device_id: str
    device_kind: DeviceKind
    resident_id: str
    event_id: str
    ts: datetime
    type: str
    received_at: datetime
    service: Service | None = None
    confidence: float | None = None
    battery: float | None = None
    # device.selftest (v1.1)
    result: Literal["pass", "fail"] | None = None
    checks: dict[str, bool] | None = None
    command_id: str | None = None
    trigger: str | None = None


class DeviceState(_Internal):
    """`state.{device}` in the log: a liveness transition of a device."""

    device_id: str
    device_kind: DeviceKind
    resident_id: str
    state: Literal["online", "offline", "silent"]
    at: datetime
    battery: float | None = None
    fw: str | None = None
    # The broker shard the device uses (homecare/shards.py), where its commands go; filled by
    # the gateway that bridges that shard. Announcements from before shards: the one shard.
    shard: str = "main"


class DeviceAck(_Internal):
    """`acks.{device}` in the log: a device confirms it showed or applied a command (mqtt-v1
    `acks`), forwarded by the gateway; dispatch, which sent the command, records it."""

    device_id: str
    command_id: str
    ts: datetime  # when the device says it showed the command
    received_at: datetime


class OpenRequest(_Internal):
    """`requests.{source}` in the log: another service asks dispatch to open a request (a fall)."""

    source: Literal["alert", "device"]
    source_id: str  # idempotency key, e.g. the alert id
    resident_id: str
    service: Service
    reason: str
    device_id: str | None = None
