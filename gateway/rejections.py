"""Rejection of device messages: an `errors` reply, a warning, a metric and a per-device tally."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from psycopg_pool import ConnectionPool

from homecare.contract import ErrorReply
from homecare.mqtt import MqttLink
from homecare.topics import DeviceChannel, device_topic

from . import edge_store
from .metrics import REJECTED

log = logging.getLogger(__name__)

LOG_EVERY_S = 10.0  # per device and code, so one broken device cannot flood the log


class Rejections:
    """Rejects device messages; a rejection changes no state but is seen by device and operator."""

    def __init__(self, link: MqttLink, payload_bytes: int = 200):
        self._link = link
        self._payload_bytes = payload_bytes
        self._lock = threading.Lock()
        self._tally: dict[tuple[str, str], tuple[int, str, datetime]] = {}
        self._last_log: dict[tuple[str, str], tuple[float, int]] = {}

    def reject(
        self, message: mqtt.MQTTMessage, device_id: str | None, code: str, reason: str,
        event_id: str | None = None,
    ) -> None:
        """Tell the device why, log, count, and acknowledge the message (it is dealt with)."""
        REJECTED.labels(code).inc()
        key = (device_id or "-", code)
        with self._lock:
            count, _, _ = self._tally.get(key, (0, "", None))
            self._tally[key] = (count + 1, reason, datetime.now(UTC))
            suppressed = self._should_log(key)
        if suppressed is not None:
            log.warning(
                "rejected message on %s: %s", message.topic, reason,
                extra={"device_id": device_id, "code": code, "event_id": event_id,
                       "suppressed": suppressed,
                       "payload": bytes(message.payload[: self._payload_bytes])},
            )
        # Counted before the reply goes out, so whoever sees the reply sees the count.
        if device_id is not None:
            reply = ErrorReply(topic=message.topic, reason=reason, event_id=event_id)
            self._link.publish(
                device_topic(device_id, DeviceChannel.ERRORS), reply.model_dump_json(), qos=0
            )
        self._link.ack(message)

    def unknown_device(self, message: mqtt.MQTTMessage, device_id: str) -> None:
        """Reject a message of a device that is not provisioned, or was decommissioned."""
        self.reject(
            message, device_id, "unknown_device",
            f"device: {device_id} is not provisioned or was decommissioned",
        )

    def wrong_shard(self, message: mqtt.MQTTMessage, device_id: str, shard: str, here: str) -> None:
        """Reject a message of a device provisioned on another broker shard than this one (only
        an anonymous broker lets it in: a device account exists on its own shard only)."""
        self.reject(
            message, device_id, "wrong_shard",
            f"device: {device_id} is provisioned on broker shard {shard!r}, not {here!r}:"
            " connect to the mqtt_url provisioning gave it",
        )

    def throttle(
        self, message: mqtt.MQTTMessage, device_id: str, reason: str, reply: bool
    ) -> None:
        """A message over its device's budget: counted, logged (rate-limited), acknowledged;
        the device is told only when `reply` (the flood gate limits replies too)."""
        REJECTED.labels("rate").inc()
        key = (device_id, "rate")
        with self._lock:
            count, _, _ = self._tally.get(key, (0, "", None))
            self._tally[key] = (count + 1, reason, datetime.now(UTC))
            suppressed = self._should_log(key)
        if suppressed is not None:
            log.warning("throttled %s: %s", device_id, reason,
                        extra={"device_id": device_id, "code": "rate", "suppressed": suppressed,
                               "topic": message.topic})
        if reply:
            self._link.publish(
                device_topic(device_id, DeviceChannel.ERRORS),
                ErrorReply(topic=message.topic, reason=reason).model_dump_json(), qos=0,
            )
        self._link.ack(message)

    def _should_log(self, key: tuple[str, str]) -> int | None:
        """None to stay quiet; otherwise how many were not logged since the last line."""
        now = time.monotonic()
        last, quiet = self._last_log.get(key, (0.0, 0))
        if last and now - last < LOG_EVERY_S:
            self._last_log[key] = (last, quiet + 1)
            return None
        if len(self._last_log) > 10_000:
            self._last_log.clear()
        self._last_log[key] = (now, 0)
        return quiet

    def flush(self, pool: ConnectionPool) -> None:
        """Add the tallies since the last flush to gateway.rejections."""
        with self._lock:
            tally, self._tally = self._tally, {}
        if not tally:
            return
        try:
            with pool.connection() as conn:
                edge_store.add_rejections(conn, tally)
        except Exception:
            with self._lock:  # keep them for the next flush
                for key, (count, reason, at) in tally.items():
                    newer = self._tally.get(key)
                    if newer:
                        self._tally[key] = (newer[0] + count, newer[1], newer[2])
                    else:
                        self._tally[key] = (count, reason, at)
            raise
