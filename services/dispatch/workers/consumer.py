"""Dispatch's intake from the internal log: button events, requests other services ask it to
open (a suspected fall), devices' acks of the commands it sent, and devices' states (where each
connects, and whether it ever did). Each message is handled in its own transaction and
acknowledged by the consumer runtime only once that commit is on disk; a redelivery is harmless:
intake records the event id in that same transaction (processed_events), and acks and states are
idempotent updates.

The transactions commit without waiting for the disk (`synchronous_commit = off`): what they
wrote is visible at once, so the press's `request.acknowledged` goes out while the commit's WAL
is still being flushed (0.3-1.4 s, a few times a minute, on the machine of bench.load). The
message itself stays unacknowledged in the log until the flush (`homecare.db.wal`): a database
crash in between costs a second handling, not the press.

Each consumer runs in lanes (the consumer runtime's `lanes`): one thread fetches, `lanes` threads
handle one message at a time, a device's messages always on the same lane, so one device's press
and the cancel after it are handled in order, and a stuck button pressing every second delays
only its own lane. With one thread for all, such a flood put every press of the city behind it
(p50 0.9 s at 10,000 devices); with a batch's devices side by side, every press still waited for
the slowest transaction of the batch before it and for the fetch after it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from homecare.db.wal import Flushed, WalWatch, commit_without_waiting
from homecare.errors import Conflict, HomecareError
from homecare.internal import DeviceAck, DeviceEvent, DeviceState, OpenRequest
from homecare.log import ConsumerSpec, Delivery, Log, PermanentError, streams

from .. import metrics
from ..usecases import delivery, intake
from ..usecases.context import Dispatch

log = logging.getLogger(__name__)

_CONFLICT_ATTEMPTS = 3  # a concurrent change won a race: the next attempt sees it


def consumer_specs(log_: Log, lanes: int = 4) -> list[ConsumerSpec]:
    """The durable consumers every dispatch replica pulls from, each on `lanes` threads."""
    return [
        ConsumerSpec(durable="dispatch-buttons", stream=streams.EVENTS, lanes=lanes,
                     filter_subject=log_.subjects.events_of("button"), batch=20, title="Button presses"),
        ConsumerSpec(durable="dispatch-requests", stream=streams.REQUESTS, batch=20, lanes=lanes,
                     title="Emergencies opened by fall alerts"),
        ConsumerSpec(durable="dispatch-commands", stream=streams.ACKS, batch=100, lanes=lanes,
                     title="Devices' acknowledgements of commands"),
        # Batches, not lanes: a connect storm's thousands of states go in one statement a batch.
        ConsumerSpec(durable="dispatch-devices", stream=streams.STATE, batch=200,
                     title="Devices' connections (where their commands go)"),
    ]


# Tells a device that its ack names a command it was not sent (the `errors` reply of mqtt-v1).
RejectAck = Callable[[DeviceAck], None]


class Intake:
    """The consumer runtime's handler for dispatch's consumers."""

    def __init__(self, pool: ConnectionPool, ctx: Dispatch, reject_ack: RejectAck | None = None,
                 opened: Callable[[], None] | None = None, wal: WalWatch | None = None):
        self.pool = pool
        self.ctx = ctx
        self.reject_ack = reject_ack
        self.opened = opened  # a press opened a request, committed unoffered: the timer loop offers it
        self.wal = wal  # None: each commit waits for the disk, and the message is done with it

    def __call__(self, batch: Sequence[Delivery]) -> Flushed | None:
        """The messages in order, each committed before the next (one, in lanes); a batch of
        device states in one transaction. A failure is raised at once (the runtime then tries the
        batch message by message: what was applied already is a no-op the second time). Returns
        where the last commit must reach the disk: the earlier ones are before it in the WAL."""
        if len(batch) > 1 and all(_stream_of(m) == streams.STATE.token for m in batch):
            return self._states(batch)
        last = None
        for message in batch:
            _, flushed = self._handle(message)
            last = flushed or last  # a message with nothing to commit ("ignored") moves nothing
        return last

    def _states(self, batch: Sequence[Delivery]) -> Flushed | None:
        try:
            states = [DeviceState.model_validate_json(m.data) for m in batch]
        except ValidationError as exc:  # one at a time, the bad one is dead-lettered
            raise PermanentError(f"rejected: {exc}") from None
        with self._transaction() as tx:
            first = delivery.device_states(tx.conn, self.ctx, states)
        metrics.EVENTS.labels("device-state", "first_seen").inc(first)
        metrics.EVENTS.labels("device-state", "recorded").inc(len(states) - first)
        return tx.flushed

    @contextmanager
    def _transaction(self) -> Iterator[_Committed]:
        """A transaction that commits without waiting for the disk (when there is a WalWatch);
        `.flushed` says, after it, where its commit must reach the disk."""
        committed = _Committed()
        with self.pool.connection() as conn:
            with conn.transaction():
                if self.wal is not None:
                    commit_without_waiting(conn)
                committed.conn = conn
                yield committed
            if self.wal is not None:
                committed.flushed = self.wal.mark(conn)

    def handle(self, message: Delivery) -> str:
        """Apply one message; returns the outcome, raises when it must be tried again."""
        return self._handle(message)[0]

    def _handle(self, message: Delivery) -> tuple[str, Flushed | None]:
        parts = message.subject.split(".")  # <ns>.<stream>.<...>
        stream = _stream_of(message)
        kind = {streams.REQUESTS.token: "open-request", streams.ACKS.token: "command-ack",
                streams.STATE.token: "device-state"}.get(
            stream, ".".join(parts[2:-1]))  # an event's type: <ns>.events.<type>.<device>
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome, flushed = self._apply(stream, message)
            except Conflict as exc:
                log.warning("conflict handling %s (attempt %d): %s", message.subject, attempt, exc)
                if attempt < _CONFLICT_ATTEMPTS:
                    time.sleep(0.1 * attempt)
                    continue
                raise
            except (ValidationError, HomecareError, ValueError) as exc:
                metrics.EVENTS.labels(kind, "rejected").inc()
                raise PermanentError(f"rejected: {exc}") from None
            metrics.EVENTS.labels(kind, outcome).inc()
            return outcome, flushed

    def _apply(self, stream: str, message: Delivery) -> tuple[str, Flushed | None]:
        if stream == streams.ACKS.token:
            return self._ack(DeviceAck.model_validate_json(message.data))
        if stream == streams.STATE.token:
            state = DeviceState.model_validate_json(message.data)
            with self._transaction() as tx:
                outcome = delivery.device_state(tx.conn, self.ctx, state)
            return outcome, tx.flushed
        use_case: Callable
        if stream == streams.REQUESTS.token:
            body = OpenRequest.model_validate_json(message.data)
            use_case = intake.alert_opened
        else:
            body = DeviceEvent.model_validate_json(message.data)
            if body.type == "button.pressed":
                use_case = intake.button_pressed
            elif body.type == "button.cancelled":
                use_case = intake.button_cancelled
            else:
                return "ignored", None  # a button event dispatch has no use for
        started = time.monotonic()
        with self._transaction() as tx:
            result = use_case(tx.conn, self.ctx, body)
        log.info(
            "%s -> %s", message.subject, result.outcome,
            extra={"request_id": result.request_id, "ms": round((time.monotonic() - started) * 1000, 1)},
        )
        if result.outcome == "created" and use_case is intake.button_pressed and self.opened is not None:
            self.opened()
        return result.outcome, tx.flushed

    def _ack(self, ack: DeviceAck) -> tuple[str, Flushed | None]:
        with self._transaction() as tx:
            outcome = delivery.acknowledged(tx.conn, self.ctx, ack)
        if outcome == "unknown":
            metrics.ACKS_REJECTED.inc()
            log.warning("device %s acknowledged command %r, which it was not sent", ack.device_id, ack.command_id,
                        extra={"device_id": ack.device_id, "command_id": ack.command_id})
            if self.reject_ack is not None:
                self.reject_ack(ack)
        return outcome, tx.flushed


class _Committed:
    """An Intake transaction: its connection inside, where its commit must reach the disk after."""

    conn: psycopg.Connection
    flushed: Flushed | None = None


def _stream_of(message: Delivery) -> str:
    return message.subject.split(".", 2)[1]  # <ns>.<stream>.<...>
