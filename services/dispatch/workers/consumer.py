"""Consumes button events, open-request messages and command delivery states. Each message is handled in its own
transaction on a worker thread (never on paho's network thread) and acknowledged to the broker
only after that transaction committed; a redelivery is harmless because intake is idempotent."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import psycopg
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from homecare.errors import Conflict, HomecareError
from homecare.internal import CommandState, DeviceEvent, OpenRequest
from homecare.mqtt import MessageHandler, MqttLink
from homecare.topics import Internal, event_type_of, internal_event_topic

from .. import metrics
from ..usecases import delivery, intake
from ..usecases.context import Dispatch

log = logging.getLogger(__name__)

PRESSED = internal_event_topic("button.pressed")
CANCELLED = internal_event_topic("button.cancelled")
_KINDS = {Internal.OPEN_REQUEST: "open-request", Internal.COMMAND_STATE: "command-state"}
_STOP = object()
_MAX_ATTEMPTS = 3  # for unexpected errors; a database outage is waited out instead


class EventConsumer:
    """Queue fed by paho's thread, drained by one worker thread in arrival order."""

    def __init__(self, pool: ConnectionPool, ctx: Dispatch):
        self.pool = pool
        self.ctx = ctx
        self.link: MqttLink | None = None
        self._queue: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled = 0  # messages this replica finished (for tests and logs)

    def subscriptions(self, share: Callable[[str], str]) -> dict[str, MessageHandler]:
        """Topic filters (made shared by `share`, e.g. Settings.share) and their handler."""
        topics = (PRESSED, CANCELLED, Internal.OPEN_REQUEST, Internal.COMMAND_STATE)
        return {share(topic): self._enqueue for topic in topics}

    def _enqueue(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        self._queue.put(message)

    def start(self, link: MqttLink) -> None:
        """Start the worker thread; messages are acknowledged through `link`."""
        self.link = link
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="dispatch-consumer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the message in hand and stop; queued messages stay unacknowledged (redelivered)."""
        self._stopping.set()
        self._queue.put(_STOP)
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            message = self._queue.get()
            if message is _STOP or self._stopping.is_set():
                return
            if self.process(message) and self.link is not None:
                self.link.ack(message)  # paho queues the PUBACK; safe from this thread

    def process(self, message: mqtt.MQTTMessage) -> bool:
        """Handle one message; True when it may be acknowledged (done, or rejected for good)."""
        kind = _KINDS.get(message.topic) or event_type_of(message.topic)
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = self._handle(message)
            except Conflict as exc:  # a concurrent change won a race: the next attempt sees it
                log.warning("conflict handling %s (attempt %d): %s", message.topic, attempt, exc)
                if attempt < _MAX_ATTEMPTS and not self._stopping.wait(0.1 * attempt):
                    continue
                outcome = "failed"
            except (ValidationError, HomecareError, ValueError) as exc:
                log.warning("rejected %s: %s", message.topic, exc, extra={"payload": bytes(message.payload[:200])})
                outcome = "rejected"
            except psycopg.OperationalError as exc:  # database away: wait, keep the message unacked
                log.warning("database unavailable while handling %s: %s", message.topic, exc)
                if self._stopping.wait(min(30.0, 0.5 * 2**attempt)):
                    return False
                continue
            except Exception:
                log.exception("handling %s failed (attempt %d)", message.topic, attempt)
                if attempt < _MAX_ATTEMPTS and not self._stopping.wait(0.5 * attempt):
                    continue
                outcome = "failed"
            metrics.EVENTS.labels(kind, outcome).inc()
            self.handled += 1
            return True

    def _handle(self, message: mqtt.MQTTMessage) -> str:
        use_case: Callable
        if message.topic == Internal.COMMAND_STATE:
            state = CommandState.model_validate_json(message.payload)
            with self.pool.connection() as conn, conn.transaction():
                return delivery.command_state(conn, self.ctx, state)
        if message.topic == Internal.OPEN_REQUEST:
            body = OpenRequest.model_validate_json(message.payload)
            use_case = intake.alert_opened
        else:
            body = DeviceEvent.model_validate_json(message.payload)
            if body.type != event_type_of(message.topic):
                raise ValueError(f"event type {body.type!r} arrived on {message.topic}")
            use_case = intake.button_pressed if body.type == "button.pressed" else intake.button_cancelled
        started = time.monotonic()
        with self.pool.connection() as conn, conn.transaction():
            result = use_case(conn, self.ctx, body)
        log.info(
            "%s -> %s", message.topic, result.outcome,
            extra={"request_id": result.request_id, "ms": round((time.monotonic() - started) * 1000, 1)},
        )
        return result.outcome
