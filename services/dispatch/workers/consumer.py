"""Dispatch's intake from the internal log: button events, requests other services ask it to
open (a suspected fall), devices' acks of the commands it sent, and devices' states (where each
connects, and whether it ever did). Each message is handled in its own transaction and
acknowledged by the consumer runtime only after the commit; a redelivery is harmless: intake
records the event id in that same transaction (processed_events), and acks and states are
idempotent updates.

Each consumer runs in lanes (the consumer runtime's `lanes`): one thread fetches, `lanes` threads
handle one message at a time, a device's messages always on the same lane, so one device's press
and the cancel after it are handled in order, and a stuck button pressing every second delays
only its own lane. With one thread for all, such a flood put every press of the city behind it
(p50 0.9 s at 10,000 devices); with a batch's devices side by side, every press still waited for
the slowest transaction of the batch before it and for the fetch after it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from psycopg_pool import ConnectionPool
from pydantic import ValidationError

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
                 opened: Callable[[], None] | None = None):
        self.pool = pool
        self.ctx = ctx
        self.reject_ack = reject_ack
        self.opened = opened  # a press opened a request, committed unoffered: the timer loop offers it

    def __call__(self, batch: Sequence[Delivery]) -> None:
        """The messages in order, each committed before the next (one, in lanes); a batch of
        device states in one transaction. A failure is raised at once (the runtime then tries the
        batch message by message: what was applied already is a no-op the second time)."""
        if len(batch) > 1 and all(_stream_of(m) == streams.STATE.token for m in batch):
            return self._states(batch)
        for message in batch:
            self.handle(message)

    def _states(self, batch: Sequence[Delivery]) -> None:
        try:
            states = [DeviceState.model_validate_json(m.data) for m in batch]
        except ValidationError as exc:  # one at a time, the bad one is dead-lettered
            raise PermanentError(f"rejected: {exc}") from None
        with self.pool.connection() as conn, conn.transaction():
            first = delivery.device_states(conn, states)
        metrics.EVENTS.labels("device-state", "first_seen").inc(first)
        metrics.EVENTS.labels("device-state", "recorded").inc(len(states) - first)

    def handle(self, message: Delivery) -> str:
        """Apply one message; returns the outcome, raises when it must be tried again."""
        parts = message.subject.split(".")  # <ns>.<stream>.<...>
        stream = _stream_of(message)
        kind = {streams.REQUESTS.token: "open-request", streams.ACKS.token: "command-ack",
                streams.STATE.token: "device-state"}.get(
            stream, ".".join(parts[2:-1]))  # an event's type: <ns>.events.<type>.<device>
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = self._apply(stream, message)
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
            return outcome

    def _apply(self, stream: str, message: Delivery) -> str:
        if stream == streams.ACKS.token:
            return self._ack(DeviceAck.model_validate_json(message.data))
        if stream == streams.STATE.token:
            state = DeviceState.model_validate_json(message.data)
            with self.pool.connection() as conn, conn.transaction():
                return delivery.device_state(conn, state)
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
                return "ignored"  # a button event dispatch has no use for
        started = time.monotonic()
        with self.pool.connection() as conn, conn.transaction():
            result = use_case(conn, self.ctx, body)
        log.info(
            "%s -> %s", message.subject, result.outcome,
            extra={"request_id": result.request_id, "ms": round((time.monotonic() - started) * 1000, 1)},
        )
        if result.outcome == "created" and use_case is intake.button_pressed and self.opened is not None:
            self.opened()
        return result.outcome

    def _ack(self, ack: DeviceAck) -> str:
        with self.pool.connection() as conn, conn.transaction():
            outcome = delivery.acknowledged(conn, self.ctx, ack)
        if outcome == "unknown":
            metrics.ACKS_REJECTED.inc()
            log.warning("device %s acknowledged command %r, which it was not sent", ack.device_id, ack.command_id,
                        extra={"device_id": ack.device_id, "command_id": ack.command_id})
            if self.reject_ack is not None:
                self.reject_ack(ack)
        return outcome


def _stream_of(message: Delivery) -> str:
    return message.subject.split(".", 2)[1]  # <ns>.<stream>.<...>
