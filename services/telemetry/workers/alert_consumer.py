"""Turns the events and device states the alert rules need into alerts: each event in its own
transaction, a batch of states in one, acknowledged by the consumer runtime after the commit (a fall: after dispatch's
request to open an emergency is stored in the log). Messages the database refuses for their
content, and unreadable ones, are dead-lettered by the runtime with the reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import psycopg
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from homecare.internal import DeviceEvent, DeviceState
from homecare.log import ConsumerSpec, Delivery, Log, PermanentError, streams
from services.telemetry import metrics
from services.telemetry.domain.falls import FALL_EVENT, open_request_for
from services.telemetry.settings import TelemetrySettings
from services.telemetry.usecases import event_rules
from services.telemetry.usecases.context import Alerting

SELFTEST_EVENT = "device.selftest"
# The consumer reads the whole EVENTS stream (no subject filter): presses included, for the
# stuck-button rule; every other button event is dispatch's alone.
EVENT_TYPES = ("bed.exit", "bed.entry", FALL_EVENT, "battery.low", SELFTEST_EVENT, "button.pressed")

# A fall must not wait behind a backlog of samples: alert inputs have consumers of their own.
EVENTS = ConsumerSpec(durable="telemetry-events", stream=streams.EVENTS, batch=50,
                      title="Fall, bed-exit, battery, self-test and button-press events")
STATES = ConsumerSpec(durable="telemetry-states", stream=streams.STATE, batch=200,
                      title="Devices' online and offline changes")


class AlertConsumer:
    """Handler of both alert-input consumers: at least once, each effect once."""

    def __init__(self, pool: ConnectionPool, log_: Log, config: TelemetrySettings, limits_of: Callable,
                 alerting: Alerting, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._pool = pool
        self._alerting = alerting
        self._log = log_
        self._config = config
        self._limits_of = limits_of
        self._clock = clock

    def __call__(self, batch: Sequence[Delivery]) -> None:
        if len(batch) > 1 and all(_is_state(d) for d in batch):
            return self._states(batch)
        for delivery in batch:  # in order: a bed's exit and entry must not swap
            self.handle(delivery)

    def _states(self, batch: Sequence[Delivery]) -> None:
        """A batch of states (a connect storm brings thousands) in one transaction, in order: one
        commit instead of one each. A failure undoes the batch; the runtime then tries it one
        message at a time, and dead-letters the one at fault."""
        try:
            states = [DeviceState.model_validate_json(d.data) for d in batch]
        except ValidationError:  # counted and dead-lettered when tried alone
            raise PermanentError("a state in the batch is unreadable") from None
        now = self._clock()
        try:
            with self._pool.connection() as conn, conn.transaction():
                for message in states:
                    limits = self._limits_of(conn, message.resident_id)
                    event_rules.on_device_state(conn, self._alerting, message, limits, now)
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            raise PermanentError(f"the database refuses it: {exc}") from None
        metrics.ALERT_MESSAGES.labels("state", "handled").inc(len(states))

    @staticmethod
    def _parse(delivery: Delivery) -> DeviceState | DeviceEvent:
        try:
            return (DeviceState if _is_state(delivery) else DeviceEvent).model_validate_json(delivery.data)
        except ValidationError as exc:
            metrics.MESSAGES_REJECTED.labels("alert-input", "unparseable").inc()
            raise PermanentError(f"unreadable: {exc.errors()[0]['msg']}") from None

    def handle(self, delivery: Delivery) -> None:
        """Apply one message; raises when it must be tried again (or dead-lettered)."""
        is_state = _is_state(delivery)
        message = self._parse(delivery)
        if isinstance(message, DeviceEvent) and message.type not in EVENT_TYPES:
            return  # another button event: dispatch's alone
        request = None
        now = self._clock()
        try:
            with self._pool.connection() as conn, conn.transaction():
                if isinstance(message, DeviceState):
                    limits = self._limits_of(conn, message.resident_id)
                    event_rules.on_device_state(conn, self._alerting, message, limits, now)
                elif message.type == FALL_EVENT:
                    if self._config.falls_open_requests:
                        request = open_request_for(message, self._config.fall_min_confidence)
                    event_rules.on_fall(conn, self._alerting, message, request is not None)
                elif message.type == "battery.low":
                    event_rules.on_battery_low(conn, self._alerting, message)
                elif message.type == "button.pressed":
                    limits = self._limits_of(conn, message.resident_id)
                    event_rules.on_button_pressed(conn, self._alerting, message, limits, now)
                elif message.type == SELFTEST_EVENT:
                    event_rules.on_selftest(conn, self._alerting, message)
                else:
                    limits = self._limits_of(conn, message.resident_id)
                    event_rules.on_bed_event(conn, self._alerting, message, limits, now)
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            metrics.MESSAGES_REJECTED.labels("alert-input", "unstorable").inc()
            raise PermanentError(f"the database refuses it: {exc}") from None
        metrics.ALERT_MESSAGES.labels("state" if is_state else message.type, "handled").inc()
        if request is not None:
            # Stored before this event is acknowledged; a repeat opens nothing twice (its key).
            self._log.publish_wait(self._log.subjects.request(request.source), request.dumps())
            metrics.FALLS_FORWARDED.inc()


def _is_state(delivery: Delivery) -> bool:
    return delivery.subject.split(".", 2)[1] == streams.STATE.token
