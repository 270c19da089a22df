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
        # Two sessions: the alert inputs (a suspected fall, device states) must not wait behind a
        # backlog of samples, and a broker delivers one session's messages in order. Each drops
        # the other's filters, which a session of the one-link service had both of.
        samples = [settings.share(GROUP, Internal.TELEMETRY)]
        alert_inputs = [settings.share(GROUP, topic) for topic in ALERT_TOPICS]
        self.link = MqttLink(
            address, settings.client_id(self.name), subscriptions=dict.fromkeys(samples, self._on_telemetry),
            manual_ack=True, unsubscribe=alert_inputs,
        )
        self.alert_link = MqttLink(
            address, f"{settings.client_id(self.name)}-alerts",
            subscriptions=dict.fromkeys(alert_inputs, self._on_alert_input), manual_ack=True, unsubscribe=samples,
        )
        self.gate = AckGate(self.link)
        self.alert_gate = AckGate(self.alert_link)
        self.analysis = AnalysisWorker(pool, config, self.defaults)
        self.ingest = TelemetryIngest(pool, self.gate, config, on_stored=self.analysis.poke)
        self.alerts = AlertConsumer(pool, self.alert_link, self.alert_gate, config, self.analysis.limits_of)
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
            for link in (self.alert_link, self.link):
                link.start()
                # Consuming only once the broker has our subscriptions (first start of a session).
                if not link.wait_subscribed(15):
                    raise TimeoutError(f"{link.client_id}: subscriptions not acknowledged")
        except Exception:
            for link in (self.alert_link, self.link):
                link.stop()
            self._stop_workers()
            raise
        log.info("telemetry started", extra={"client_id": self.link.client_id})

    def stop(self) -> None:
        """Flush and ack what arrived, then disconnect; un-acked messages are redelivered later."""
        self.ingest.stop()
        self.alerts.stop()
        self.link.stop()
        self.alert_link.stop()
        self._stop_workers()

    def _stop_workers(self) -> None:
        self.ingest.stop()
        self.alerts.stop()
        self.analysis.stop()
        self.partitions.stop()

    def routers(self) -> list[APIRouter]:
        return [vitals_router(self.config.max_points, self.config.fhir_max_hours), alerts_router(self.defaults)]

    def checks(self) -> dict[str, ReadinessCheck]:
        return {"database": database_check(self.pool),
                "broker": lambda: self.link.connected and self.alert_link.connected}


def build(
    settings: Settings, pool: ConnectionPool, config: TelemetrySettings | None = None
) -> TelemetryComponent:
    """The telemetry component; its own settings are read from HOMECARE_TELEMETRY_* when not given."""
    return TelemetryComponent(settings, pool, config or TelemetrySettings())
