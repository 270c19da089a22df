"""Consumes button events, open-request messages and command delivery states. Each message is
handled in its own transaction on a worker thread (never on paho's network thread) and
acknowledged to the broker only after that transaction committed; a redelivery is harmless
because intake is idempotent. Several workers run side by side; the messages of one resident
always go to the same worker, so a press and the long press after it keep their order, and
acknowledgements leave in the order the messages arrived."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import zlib
from collections import deque
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


def shard_key(payload: bytes) -> str:
    """The resident a message is about (the command a delivery state is about), to pick its worker."""
    try:
        body = json.loads(payload)
        return str(body.get("resident_id") or body.get("command_id") or "")
    except (ValueError, AttributeError):
        return ""  # malformed: any worker rejects it


class AckInOrder:
    """Releases acknowledgements in the order the messages arrived, whichever worker finished first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: deque[list] = deque()  # [message, state]: None while in work, True ack, False skip

    def arrived(self, message: mqtt.MQTTMessage) -> list:
        entry = [message, None]
        with self._lock:
            self._waiting.append(entry)
        return entry

    def finished(self, entry: list, ack: bool, send: Callable[[mqtt.MQTTMessage], None]) -> None:
        with self._lock:
            entry[1] = ack
            while self._waiting and self._waiting[0][1] is not None:
                message, state = self._waiting.popleft()
                if state:
                    send(message)  # paho queues the PUBACK; safe from any thread


class EventConsumer:
    """Queues fed by paho's thread, each drained by one worker thread in arrival order."""

    def __init__(self, pool: ConnectionPool, ctx: Dispatch, workers: int = 1):
        self.pool = pool
        self.ctx = ctx
        self.link: MqttLink | None = None
        self._queues: list[queue.Queue] = [queue.Queue() for _ in range(max(1, workers))]
        self._acks = AckInOrder()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._count = threading.Lock()
        self.handled = 0  # messages this replica finished (for tests and logs)

    def subscriptions(self, share: Callable[[str], str]) -> dict[str, MessageHandler]:
        """Topic filters (made shared by `share`, e.g. Settings.share) and their handler."""
        topics = (PRESSED, CANCELLED, Internal.OPEN_REQUEST, Internal.COMMAND_STATE)
        return {share(topic): self._enqueue for topic in topics}

    def _enqueue(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        entry = self._acks.arrived(message)
        shard = zlib.crc32(shard_key(message.payload).encode()) % len(self._queues)
        self._queues[shard].put(entry)

    def start(self, link: MqttLink) -> None:
        """Start the worker threads; messages are acknowledged through `link`."""
        self.link = link
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._run, args=(q,), name=f"dispatch-consumer-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the messages in hand and stop; queued messages stay unacknowledged (redelivered)."""
        self._stopping.set()
        for q in self._queues:
            q.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, work: queue.Queue) -> None:
        while True:
            entry = work.get()
            if entry is _STOP or self._stopping.is_set():
                return
            done = self.process(entry[0])
            self._acks.finished(entry, done and self.link is not None, self._ack)

    def _ack(self, message: mqtt.MQTTMessage) -> None:
        if self.link is not None:
            self.link.ack(message)

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
            with self._count:
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
