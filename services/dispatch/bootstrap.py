"""Builds the dispatch component: settings -> use-case context -> log and broker shards -> workers -> routes."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from psycopg_pool import ConnectionPool

from homecare import log as internal_log
from homecare.api.health import ReadinessCheck, database_check
from homecare.buttons import StuckRule
from homecare.contract import ErrorReply
from homecare.db.wal import WalWatch
from homecare.internal import DeviceAck
from homecare.log import Consumer
from homecare.mqtt import MqttLink
from homecare.notify.settings import NotifySettings
from homecare.settings import Settings
from homecare.shards import Shards
from homecare.topics import DeviceChannel, device_topic

from .api import build_router
from .settings import DispatchSettings
from .store import devices
from .store.transactions import PostgresTransactions
from .usecases.context import Dispatch, from_settings
from .workers.consumer import Intake, consumer_specs
from .workers.notices import sender as notice_sender
from .workers.publisher import OutboxPublisher
from .workers.timers import TimerLoop, postgres_gauges

log = logging.getLogger(__name__)


class DispatchComponent:
    """Requests, matching, offers, timers, and commands to devices; see homecare.runtime.Component."""

    name = "dispatch"

    def __init__(
        self, settings: Settings, dispatch: DispatchSettings, pool: ConnectionPool, ctx: Dispatch,
        notify: NotifySettings | None = None,
    ):
        self.settings = settings
        self.dispatch_settings = dispatch
        self.pool = pool
        self.ctx = ctx
        self.log = internal_log.connect(settings, self.name)
        # A connection to every broker shard: commands go straight to the device's `commands`
        # topic on its own shard. Nothing is received on them, so a PUBACK never waits.
        self.links = {
            shard.name: MqttLink(
                shard.address(settings.mqtt_service_username, settings.mqtt_service_password),
                f"{settings.client_id('dispatch')}-{shard.name}"[:64], clean_session=True,
            )
            for shard in Shards.from_settings(settings).all()
        }
        self.timers = TimerLoop(
            PostgresTransactions(pool), ctx, interval_s=dispatch.timer_interval_s, batch_size=dispatch.batch_size,
            gauges=postgres_gauges(pool),
        )
        self.intake = Intake(pool, ctx, reject_ack=self._reject_ack, opened=self.timers.wake, wal=WalWatch(pool))
        self.consumers = [
            Consumer(self.log, spec, self.intake) for spec in consumer_specs(self.log, dispatch.intake_workers)
        ]
        self.publisher = OutboxPublisher(
            pool, ctx, self.links, poll_s=dispatch.outbox_poll_s, puback_timeout_s=dispatch.puback_timeout_s,
            batch_size=dispatch.batch_size,
        )
        self.notices = notice_sender(pool, notify or NotifySettings())
        self._router = build_router(ctx)

    def start(self) -> None:
        """Connect to the log and the brokers and start consuming, publishing and the timers."""
        self.log.start()
        for link in self.links.values():
            link.start()
        for consumer in self.consumers:
            consumer.start()
        self.publisher.start()
        self.notices.start()
        self.timers.start()
        log.info("dispatch started", extra={"shards": sorted(self.links)})

    def stop(self) -> None:
        """Stop the workers, then disconnect; unacknowledged messages are redelivered later."""
        self.timers.stop()
        for consumer in self.consumers:
            consumer.stop()
        self.publisher.stop()
        self.notices.stop()
        for link in self.links.values():
            link.stop()
        self.log.stop()
        log.info("dispatch stopped")

    def _reject_ack(self, ack: DeviceAck) -> None:
        """Tell a device, on `errors`, that its ack names a command it was not sent."""
        link = self._link_of(ack.device_id)
        if link is None:
            return
        topic = device_topic(ack.device_id, DeviceChannel.ACKS)
        reply = ErrorReply(topic=topic, reason=f"command_id: {ack.command_id!r} is not a command sent to"
                                                f" {ack.device_id}")
        link.publish(device_topic(ack.device_id, DeviceChannel.ERRORS), reply.model_dump_json(), qos=0)

    def _link_of(self, device_id: str) -> MqttLink | None:
        """The link to the device's shard; the only one when there is one (its state may not be
        in yet: an ack can overtake it)."""
        if len(self.links) == 1:
            return next(iter(self.links.values()))
        with self.pool.connection() as conn:
            shard = devices.shard_of(conn, device_id)
        return self.links.get(shard) if shard else None

    def routers(self) -> list[APIRouter]:
        return [self._router]

    def checks(self) -> dict[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {
            "database": database_check(self.pool),
            "broker": lambda: all(link.connected for link in self.links.values()),
            "log": lambda: self.log.connected,
        }
        for consumer in self.consumers:  # not ready while a consumer's oldest message waits too long
            checks[consumer.spec.durable] = consumer.ready
        return checks


def build(
    settings: Settings, pool: ConnectionPool, dispatch: DispatchSettings | None = None,
    notify: NotifySettings | None = None,
) -> DispatchComponent:
    """The dispatch component; nothing connects until start()."""
    dispatch = dispatch or DispatchSettings()
    notify = notify or NotifySettings()
    ctx = from_settings(dispatch, notify, StuckRule.from_settings(settings))
    return DispatchComponent(settings, dispatch, pool, ctx, notify)
