"""Dispatch's intake from the internal log: button events, requests other services ask it to
open (a suspected fall), devices' acks of the commands it sent, and devices' states (where each
connects, and whether it ever did). Each message is handled in its own transaction and
acknowledged by the consumer runtime only after the commit; a redelivery is harmless: intake
records the event id in that same transaction (processed_events), and acks and states are
idempotent updates.

One consumer worker per replica fetches the batches, so one device's press and the cancel after
it are handled in order; within a batch, different devices' messages are handled side by side
(`workers` threads), so a stuck button pressing ten times a second delays only itself (with one
thread for all, such a flood put every press of the city behind it: p50 0.9 s at 10,000 devices)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

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


def consumer_specs(log_: Log) -> list[ConsumerSpec]:
    """The durable consumers every dispatch replica pulls from."""
    return [
        ConsumerSpec(durable="dispatch-buttons", stream=streams.EVENTS,
                     filter_subject=log_.subjects.events_of("button"), batch=20, title="Button presses"),
        ConsumerSpec(durable="dispatch-requests", stream=streams.REQUESTS, batch=20,
                     title="Emergencies opened by fall alerts"),
        ConsumerSpec(durable="dispatch-commands", stream=streams.ACKS, batch=100,
                     title="Devices' acknowledgements of commands"),
        ConsumerSpec(durable="dispatch-devices", stream=streams.STATE, batch=200,
                     title="Devices' connections (where their commands go)"),
    ]


# Tells a device that its ack names a command it was not sent (the `errors` reply of mqtt-v1).
RejectAck = Callable[[DeviceAck], None]


class Intake:
    """The consumer runtime's handler for dispatch's consumers."""

    def __init__(self, pool: ConnectionPool, ctx: Dispatch, workers: int = 4, reject_ack: RejectAck | None = None,
                 opened: Callable[[], None] | None = None):
        self.pool = pool
        self.ctx = ctx
        self.reject_ack = reject_ack
        self.opened = opened  # a press opened a request, committed unoffered: the timer loop offers it
        self._size = max(1, workers)
        self._workers: ThreadPoolExecutor | None = None  # made on first use, again after close()

    def __call__(self, batch: Sequence[Delivery]) -> None:
        """Each device's messages in order, each committed before the next; devices side by side.
        Raises the first failure once every device's part is done (the runtime then tries the
        batch message by message: what was applied already is a no-op the second time)."""
        by_device: dict[str, list[Delivery]] = {}
        for message in batch:  # the device id is the last token of every subject
            by_device.setdefault(message.subject.rsplit(".", 1)[-1], []).append(message)
        if len(by_device) == 1:
            return self._in_order(batch)
        if self._workers is None:
            self._workers = ThreadPoolExecutor(self._size, thread_name_prefix="dispatch-intake")
        done = [self._workers.submit(self._in_order, part) for part in by_device.values()]
        failures = [f.exception() for f in done]  # waits for every part
        for failure in failures:
            if failure is not None:
                raise failure

    def _in_order(self, messages: Sequence[Delivery]) -> None:
        for message in messages:
            self.handle(message)

    def close(self) -> None:
        """Stop the threads (after the consumers stopped)."""
        workers, self._workers = self._workers, None
        if workers is not None:
            workers.shutdown(wait=True)

    def handle(self, message: Delivery) -> str:
        """Apply one message; returns the outcome, raises when it must be tried again."""
        parts = message.subject.split(".")  # <ns>.<stream>.<...>
        stream = parts[1]
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
