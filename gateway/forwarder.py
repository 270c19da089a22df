"""Forwarding of validated device data into the internal log; the device's message is
acknowledged to the broker only once JetStream has stored the forward (on a quorum).

Nothing is written to the database on this path and nothing is de-duplicated here: a message
the broker delivers twice (the bridge restarted before its ack) is stored twice in the log, and
its consumers, which record what they applied in the same transaction as the effect, apply it
once."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime

import paho.mqtt.client as mqtt

from homecare.contract import Ack, Telemetry
from homecare.internal import DeviceAck, DeviceEvent
from homecare.log import Log
from homecare.mqtt import MqttLink

from .metrics import FORWARD_LATENCY
from .registry import DeviceRef

log = logging.getLogger(__name__)


def batch_json(ref: DeviceRef, telemetry: Telemetry) -> bytes:
    """A DeviceBatch as JSON, written directly: the hot path, and the samples are validated.
    Every time in one form (UTC, microseconds, Z), as telemetry expects the gateway's batches."""
    return json.dumps(
        {
            "device_id": ref.id,
            "resident_id": ref.resident_id,
            "samples": [
                {"ts": s.ts.isoformat(timespec="microseconds").replace("+00:00", "Z"),
                 "occupied": s.occupied,
                 "heart_rate": s.heart_rate, "respiration_rate": s.respiration_rate,
                 "movement": s.movement}
                for s in telemetry.samples
            ],
        },
        separators=(",", ":"),
    ).encode()


class Forwarder:
    """Puts a device's validated telemetry batch, event or command ack into its stream, then
    acknowledges the device's message on the session it came in on."""

    def __init__(self, link: MqttLink, log_: Log):
        self._link = link
        self._log = log_

    def telemetry(self, ref: DeviceRef, telemetry: Telemetry, message: mqtt.MQTTMessage) -> None:
        """Forward one device's validated batch."""
        self.telemetry_part(ref.id, batch_json(ref, telemetry), message)

    def telemetry_part(self, device_id: str, part: bytes, message: mqtt.MQTTMessage) -> None:
        """Forward one device's validated batch, already written as a DeviceBatch."""
        self._log.publish(self._log.subjects.telemetry(device_id), part, self._acker("telemetry", message))

    def event(self, ref: DeviceRef, event, message: mqtt.MQTTMessage, received_at: datetime) -> None:
        """Forward one validated event, with the device's identity and when it came."""
        forward = DeviceEvent(
            device_id=ref.id, device_kind=ref.kind, resident_id=ref.resident_id,
            received_at=received_at, **event.model_dump(),
        )
        self._log.publish(self._log.subjects.event(event.type, ref.id), forward.dumps(),
                          self._acker("events", message))

    def ack(self, ref: DeviceRef, ack: Ack, message: mqtt.MQTTMessage, received_at: datetime) -> None:
        """Forward a device's ack of a command; dispatch, which sent it, checks and records it."""
        forward = DeviceAck(device_id=ref.id, command_id=ack.command_id, ts=ack.ts, received_at=received_at)
        self._log.publish(self._log.subjects.ack(ref.id), forward.dumps(), self._acker("acks", message))

    def _acker(self, channel: str, message: mqtt.MQTTMessage):
        def stored() -> None:
            FORWARD_LATENCY.labels(channel).observe(time.monotonic() - message.timestamp)
            self._link.ack(message)

        return stored
