"""Builds the dispatch component: settings -> use-case context -> log and MQTT link -> workers -> routes."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter
from psycopg_pool import ConnectionPool

from homecare import log as internal_log
from homecare.api.health import ReadinessCheck, database_check
from homecare.log import Consumer
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.settings import Settings

from .api import build_router
from .settings import DispatchSettings
from .usecases.context import Dispatch
from .workers.consumer import Intake, consumer_specs
from .workers.publisher import OutboxPublisher
from .workers.timers import TimerLoop

log = logging.getLogger(__name__)


class DispatchComponent:
    """Requests, matching, offers, timers and the outbox; see homecare.runtime.Component."""

    name = "dispatch"

    def __init__(self, settings: Settings, dispatch: DispatchSettings, pool: ConnectionPool, ctx: Dispatch):
        self.settings = settings
        self.dispatch_settings = dispatch
        self.pool = pool
        self.ctx = ctx
        self.log = internal_log.connect(settings, self.name)
        self.intake = Intake(pool, ctx, workers=dispatch.intake_workers)
        self.consumers = [Consumer(self.log, spec, self.intake) for spec in consumer_specs(self.log)]
        # The outbox's commands still go to the gateway over the broker (Internal.COMMANDS).
        self.link = MqttLink(_broker(settings), settings.client_id("dispatch"), clean_session=True)
        self.publisher = OutboxPublisher(
            pool, self.link, poll_s=dispatch.outbox_poll_s, puback_timeout_s=dispatch.puback_timeout_s,
            batch_size=dispatch.batch_size,
        )
        self.timers = TimerLoop(pool, ctx, interval_s=dispatch.timer_interval_s, batch_size=dispatch.batch_size)
        self._router = build_router(ctx)

    def start(self) -> None:
        """Connect to the log and the broker and start consuming, publishing and the timers."""
        self.log.start()
        self.link.start()
        for consumer in self.consumers:
            consumer.start()
        self.publisher.start()
        self.timers.start()
        log.info("dispatch started", extra={"client_id": self.link.client_id})

    def stop(self) -> None:
        """Stop the workers, then disconnect; unacknowledged messages are redelivered later."""
        self.timers.stop()
        for consumer in self.consumers:
            consumer.stop()
        self.intake.close()
        self.publisher.stop()
        self.link.stop()
        self.log.stop()
        log.info("dispatch stopped")

    def routers(self) -> list[APIRouter]:
        return [self._router]

    def checks(self) -> dict[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {
            "database": database_check(self.pool), "broker": lambda: self.link.connected,
            "log": lambda: self.log.connected,
        }
        for consumer in self.consumers:  # not ready while a consumer's oldest message waits too long
            checks[consumer.spec.durable] = consumer.ready
        return checks


def _broker(settings: Settings) -> BrokerAddress:
    if not settings.mqtt_url:
        raise ValueError("HOMECARE_MQTT_URL is not set: dispatch needs a broker")
    address = BrokerAddress.parse(settings.mqtt_url)
    if settings.mqtt_service_username:
        address = address.with_credentials(settings.mqtt_service_username, settings.mqtt_service_password)
    return address


def context(dispatch: DispatchSettings) -> Dispatch:
    """The use-case configuration from settings."""
    return Dispatch(
        policy=dispatch.dispatch_policy(),
        weights=dispatch.match_weights(),
        fairness_window=timedelta(hours=dispatch.fairness_window_h),
        requeue=timedelta(seconds=dispatch.requeue_s),
    )


def build(settings: Settings, pool: ConnectionPool, dispatch: DispatchSettings | None = None) -> DispatchComponent:
    """The dispatch component; nothing connects until start()."""
    dispatch = dispatch or DispatchSettings()
    return DispatchComponent(settings, dispatch, pool, context(dispatch))
