"""Builds the telemetry service: settings, pool and MQTT link in, a runnable Component out."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from psycopg_pool import ConnectionPool

from homecare.api.health import ReadinessCheck, database_check
from homecare.mqtt import BrokerAddress, MqttLink
from homecare.settings import Settings
from homecare.topics import Internal

from .acks import AckGate
from .alerts.config import defaults_from
from .alerts.consumer import TOPICS as ALERT_TOPICS
from .alerts.consumer import AlertConsumer
from .alerts_api import alerts_router
from .analysis import AnalysisWorker
from .api import vitals_router
from .ingest import TelemetryIngest
from .maintenance import PartitionKeeper
from .settings import TelemetrySettings

log = logging.getLogger(__name__)

GROUP = "telemetry"


class TelemetryComponent:
    """Ingest of bed samples, rollups, partition upkeep, alert rules, vitals and alerts APIs."""

    name = "telemetry"

    def __init__(self, settings: Settings, pool: ConnectionPool, config: TelemetrySettings):
        self.settings = settings
        self.config = config
        self.pool = pool
        self.defaults = defaults_from(config)
        address = BrokerAddress.parse(settings.mqtt_url)
        if settings.mqtt_service_username:
            address = address.with_credentials(
                settings.mqtt_service_username, settings.mqtt_service_password
            )
        # Handlers are bound after the link exists, so the link gets forwarding lambdas.
        subscriptions = {settings.share(GROUP, Internal.TELEMETRY): self._on_telemetry}
        for topic in ALERT_TOPICS:
            subscriptions[settings.share(GROUP, topic)] = self._on_alert_input
        self.link = MqttLink(
            address, settings.client_id(self.name), subscriptions=subscriptions, manual_ack=True
        )
        self.gate = AckGate(self.link)
        self.analysis = AnalysisWorker(pool, config, self.defaults)
        self.ingest = TelemetryIngest(pool, self.gate, config, on_stored=self.analysis.poke)
        self.alerts = AlertConsumer(pool, self.link, self.gate, config, self.analysis.limits_of)
        self.partitions = PartitionKeeper(pool, config)

    def _on_telemetry(self, client, message) -> None:
        self.ingest.on_message(client, message)

    def _on_alert_input(self, client, message) -> None:
        self.alerts.on_message(client, message)

    def start(self) -> None:
        """Start upkeep, analysis and the writers, then connect and consume."""
        self.partitions.start()
        self.analysis.start()
        self.ingest.start()
        self.alerts.start()
        try:
            self.link.start()
            # Consuming only once the broker has our subscriptions (first start of a session).
            if not self.link.wait_subscribed(15):
                raise TimeoutError(f"{self.link.client_id}: subscriptions not acknowledged")
        except Exception:
            self._stop_workers()
            raise
        log.info("telemetry started", extra={"client_id": self.link.client_id})

    def stop(self) -> None:
        """Flush and ack what arrived, then disconnect; un-acked messages are redelivered later."""
        self.ingest.stop()
        self.alerts.stop()
        self.link.stop()
        self._stop_workers()

    def _stop_workers(self) -> None:
        self.ingest.stop()
        self.alerts.stop()
        self.analysis.stop()
        self.partitions.stop()

    def routers(self) -> list[APIRouter]:
        return [vitals_router(self.config.max_points, self.config.fhir_max_hours), alerts_router(self.defaults)]

    def checks(self) -> dict[str, ReadinessCheck]:
        return {"database": database_check(self.pool), "broker": lambda: self.link.connected}


def build(
    settings: Settings, pool: ConnectionPool, config: TelemetrySettings | None = None
) -> TelemetryComponent:
    """The telemetry component; its own settings are read from HOMECARE_TELEMETRY_* when not given."""
    return TelemetryComponent(settings, pool, config or TelemetrySettings())
