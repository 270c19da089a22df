"""Forwarding of validated device data onto internal topics; originals are acked on PUBACK."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime

import paho.mqtt.client as mqtt
from psycopg_pool import ConnectionPool

from homecare.contract import Telemetry
from homecare.internal import DeviceEvent
from homecare.mqtt import SplitLink
from homecare.topics import Internal, internal_event_topic

from . import edge_store
from .metrics import DUPLICATES, FORWARD_LATENCY, TELEMETRY_FLUSHES
from .registry import DeviceRef

log = logging.getLogger(__name__)


def batch_json(ref: DeviceRef, telemetry: Telemetry) -> bytes:
    """A DeviceBatch as JSON, written directly: the hot path, and the samples are validated."""
    return json.dumps(
        {
            "device_id": ref.id,
            "resident_id": ref.resident_id,
            "samples": [
                {"ts": s.ts.isoformat().replace("+00:00", "Z"), "occupied": s.occupied,
                 "heart_rate": s.heart_rate, "respiration_rate": s.respiration_rate,
                 "movement": s.movement}
                for s in telemetry.samples
            ],
        },
        separators=(",", ":"),
    ).encode()


class TelemetryCoalescer:
    """Coalesces many devices' batches into one TelemetryBatches message.

    A flush happens when the oldest buffered batch has waited `window_s`, or before a batch
    that would take the message over `max_batches` or `max_bytes`. The device messages are
    acknowledged only once the broker has the coalesced one. Used from one thread only.
    """

    def __init__(self, link: SplitLink, window_s: float, max_batches: int, max_bytes: int):
        self._link = link
        self._window = window_s
        self._max_batches = max_batches
        self._max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._messages: list[mqtt.MQTTMessage] = []
        self._size = 0
        self._due: float | None = None

    def add(self, ref: DeviceRef, telemetry: Telemetry, message: mqtt.MQTTMessage) -> None:
        """Buffer one device's validated batch."""
        self.add_part(batch_json(ref, telemetry), message)

    def add_part(self, part: bytes, message: mqtt.MQTTMessage) -> None:
        """Buffer one device's validated batch, already written as a DeviceBatch."""
        if self._parts and (
            len(self._parts) >= self._max_batches or self._size + len(part) + 16 > self._max_bytes
        ):
            self.flush()
        if not self._parts:
            self._due = time.monotonic() + self._window
        self._parts.append(part)
        self._messages.append(message)
        self._size += len(part) + 1
        if len(self._parts) >= self._max_batches or self._window <= 0:
            self.flush()

    def due_in(self) -> float | None:
        """Seconds until the buffer must be flushed; None when it is empty."""
        return None if self._due is None else max(0.0, self._due - time.monotonic())

    def flush_if_due(self) -> None:
        if self._due is not None and time.monotonic() >= self._due:
            self.flush()

    def flush(self) -> None:
        """Publish what is buffered as one message."""
        if not self._parts:
            return
        payload = b'{"batches":[' + b",".join(self._parts) + b"]}"
        messages = self._messages
        TELEMETRY_FLUSHES.observe(len(messages))
        self._parts, self._messages, self._size, self._due = [], [], 0, None

        def done() -> None:
            now = time.monotonic()
            for m in messages:
                FORWARD_LATENCY.labels("telemetry").observe(now - m.timestamp)
                self._link.ack(m)

        self._link.publish(Internal.TELEMETRY, payload, qos=1, on_done=done)


class EventForwarder:
    """Forwards each device event once per (device, event_id), even across restarts.

    `gateway.seen_events` remembers event ids; an event already forwarded is acknowledged and
    dropped. A repeat that arrives while the first is still on its way is acknowledged with it.
    """

    def __init__(self, link: SplitLink, pool: ConnectionPool):
        self._link = link
        self._pool = pool
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[str, str], list[mqtt.MQTTMessage]] = {}
        self._forwarded: set[tuple[str, str]] = set()  # PUBACKed, not yet marked in the database

    def forward(self, ref: DeviceRef, event, message: mqtt.MQTTMessage, received_at: datetime) -> None:
        """De-duplicate and forward one validated event."""
        key = (ref.id, event.event_id)
        with self._lock:
            if key in self._forwarded:
                return self._duplicate(message)
            if key in self._in_flight:
                DUPLICATES.inc()
                self._in_flight[key].append(message)
                return
        with self._pool.connection() as conn:
            claim = edge_store.claim_event(conn, ref.id, event.event_id)
        if claim == "forwarded":
            return self._duplicate(message)
        if claim == "pending":  # stored by a run that stopped before the broker had the forward
            log.info("forwarding event %s of %s again", event.event_id, ref.id)
        with self._lock:
            self._in_flight[key] = [message]
        forward = DeviceEvent(
            device_id=ref.id, device_kind=ref.kind, resident_id=ref.resident_id,
            received_at=received_at, **event.model_dump(),
        )
        self._link.publish(
            internal_event_topic(event.type), forward.dumps(), qos=1,
            on_done=lambda: self._done(key),
        )

    def _duplicate(self, message: mqtt.MQTTMessage) -> None:
        DUPLICATES.inc()
        self._link.ack(message)

    def _done(self, key: tuple[str, str]) -> None:
        with self._lock:
            messages = self._in_flight.pop(key, [])
            self._forwarded.add(key)
        now = time.monotonic()
        if messages:
            FORWARD_LATENCY.labels("events").observe(now - messages[0].timestamp)
        for m in messages:
            self._link.ack(m)

    def flush(self, pool: ConnectionPool) -> None:
        """Mark forwarded events in the database."""
        with self._lock:
            keys = list(self._forwarded)
        if not keys:
            return
        with pool.connection() as conn:
            edge_store.mark_forwarded(conn, keys)
        with self._lock:
            self._forwarded.difference_update(keys)
