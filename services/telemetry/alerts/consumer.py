"""Consumes the internal events and device states the alert rules need. A writer thread handles
one message at a time in its own transaction and acks it after the commit (a fall: after dispatch
has its emergency request, PUBACK). Database errors are retried with backoff; the message stays
un-acked meanwhile. Unreadable messages, and ones the database refuses for their content, are
logged, counted and acked."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from homecare.internal import DeviceEvent, DeviceState
from homecare.mqtt import MqttLink
from homecare.topics import Internal, event_type_of, internal_event_topic

from .. import metrics
from ..acks import AckGate, Receipt
from ..falls import FALL_EVENT, open_request_for
from ..settings import TelemetrySettings
from . import event_rules

log = logging.getLogger(__name__)

# Errors that a given message causes whatever we retry: it is dropped, not retried forever.
_PERMANENT = (psycopg.DataError, psycopg.IntegrityError)

EVENT_TYPES = ("bed.exit", "bed.entry", FALL_EVENT, "battery.low")
TOPICS = [internal_event_topic(t) for t in EVENT_TYPES] + [Internal.DEVICE_STATE]


class AlertConsumer:
    """Turns events and device states into alerts, at least once, each effect once."""

    def __init__(self, pool: ConnectionPool, link: MqttLink, gate: AckGate, config: TelemetrySettings,
                 limits_of: Callable, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._pool = pool
        self._link = link
        self._gate = gate
        self._config = config
        self._limits_of = limits_of
        self._clock = clock
        self._queue: queue.Queue[Receipt] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def on_message(self, client, message) -> None:
        """Queue a message for the writer (runs on the paho network thread)."""
        self._queue.put(self._gate.receipt(message))

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="telemetry-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                receipt = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            delay = self._config.retry_min_s
            while not self._stopping.is_set():
                try:
                    self.handle(receipt)
                    break
                except _PERMANENT as exc:  # this message can never be stored: drop it, keep going
                    metrics.MESSAGES_REJECTED.labels(receipt.message.topic, "unstorable").inc()
                    log.error("dropping %s message the database refuses: %s", receipt.message.topic, exc,
                              extra={"payload": bytes(receipt.message.payload[:200])})
                    self._gate.ack(receipt)
                    break
                except Exception as exc:  # the database is away: keep the message, try again
                    metrics.RULE_ERRORS.labels("events").inc()
                    log.warning("alert consumer failed, retrying in %.1fs: %s", delay, exc)
                    self._stopping.wait(delay)
                    delay = min(delay * 2, self._config.retry_max_s)

    def handle(self, receipt: Receipt) -> None:
        """Handle one message; ack it when its effect is durable."""
        topic = receipt.message.topic
        try:
            message = (DeviceState if topic == Internal.DEVICE_STATE else DeviceEvent).model_validate_json(
                receipt.message.payload)
        except ValidationError as exc:
            metrics.MESSAGES_REJECTED.labels(topic, "unparseable").inc()
            log.warning("dropping %s message: %s", topic, exc.errors()[0]["msg"],
                        extra={"payload": bytes(receipt.message.payload[:200])})
            self._gate.ack(receipt)
            return
        request = None
        now = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            if isinstance(message, DeviceState):
                event_rules.on_device_state(conn, message, self._limits_of(conn, message.resident_id), now)
            elif event_type_of(topic) == FALL_EVENT:
                if self._config.falls_open_requests:
                    request = open_request_for(message, self._config.fall_min_confidence)
                event_rules.on_fall(conn, message, request is not None)
            elif event_type_of(topic) == "battery.low":
                event_rules.on_battery_low(conn, message)
            else:
                event_rules.on_bed_event(conn, message, self._limits_of(conn, message.resident_id), now)
        metrics.ALERT_MESSAGES.labels(topic, "handled").inc()
        if request is None:
            self._gate.ack(receipt)
            return

        def forwarded() -> None:
            metrics.FALLS_FORWARDED.inc()
            log.info("suspected fall forwarded to dispatch",
                     extra={"device_id": message.device_id, "event_id": message.event_id})
            self._gate.ack(receipt)

        self._link.publish(Internal.OPEN_REQUEST, request.dumps(), qos=1, on_done=forwarded)
