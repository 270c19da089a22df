"""Builds the telemetry service: settings, pool and the internal log in, a runnable Component out."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter
from psycopg_pool import ConnectionPool

from homecare import log as internal_log
from homecare.api.health import ReadinessCheck, database_check
from homecare.buttons import StuckRule
from homecare.log import Consumer
from homecare.notify.settings import NotifySettings
from homecare.settings import Settings
from services.telemetry.alerts_api import alerts_router
from services.telemetry.api import vitals_router
from services.telemetry.domain.rules.selftest import SelftestPolicy
from services.telemetry.settings import TelemetrySettings
from services.telemetry.store.alert_settings import defaults_from
from services.telemetry.usecases.context import Alerting
from services.telemetry.workers import alert_consumer as alert_inputs
from services.telemetry.workers.analysis import AnalysisWorker
from services.telemetry.workers.ingest import TelemetryIngest, consumer_spec
from services.telemetry.workers.maintenance import JobWatch, PartitionKeeper
from services.telemetry.workers.notices import sender as notice_sender

log = logging.getLogger(__name__)


class TelemetryComponent:
    """Ingest of bed samples, rollups, partition upkeep, alert rules, vitals and alerts APIs."""

    name = "telemetry"

    def __init__(
        self, settings: Settings, pool: ConnectionPool, config: TelemetrySettings, notify: NotifySettings | None = None,
    ):
        notify = notify or NotifySettings()
        self.settings = settings
        self.config = config
        self.pool = pool
        self.defaults = defaults_from(config)
        self.log = internal_log.connect(settings, self.name)
        self.alerting = Alerting(
            selftests=SelftestPolicy(interval_h=dict(config.selftest_interval_h),
                                     grace=timedelta(hours=config.selftest_grace_h)),
            never_connected_after=timedelta(hours=config.never_connected_after_h),
            reannounce=notify.reannounce(),
            stuck=StuckRule.from_settings(settings),
        )
        self.notices = notice_sender(pool, notify)
        self.analysis = AnalysisWorker(pool, config, self.defaults, self.alerting)
        self.ingest = TelemetryIngest(pool, on_stored=self.analysis.poke)
        self.alerts = alert_inputs.AlertConsumer(pool, self.log, config, self.analysis.limits_of, self.alerting)
        # Samples, and the alert inputs apart: a fall never waits behind a backlog of samples.
        self.consumers = [
            Consumer(self.log, alert_inputs.EVENTS, self.alerts),
            Consumer(self.log, alert_inputs.STATES, self.alerts),
            Consumer(self.log, consumer_spec(config), self.ingest),
        ]
        self.partitions = PartitionKeeper(pool, config)
        self.jobs = JobWatch(pool, config)

    def start(self) -> None:
        """Start upkeep and analysis, then connect to the log and consume."""
        self.partitions.start()
        self.jobs.start()
        self.analysis.start()
        self.notices.start()
        started: list[Consumer] = []
        try:
            self.log.start()
            for consumer in self.consumers:
                consumer.start()
                started.append(consumer)
        except Exception:
            for consumer in started:
                consumer.stop()
            self.log.stop()
            self.analysis.stop()
            self.notices.stop()
            self.partitions.stop()
            self.jobs.stop()
            raise
        log.info("telemetry started", extra={"consumers": [c.name for c in self.consumers]})

    def stop(self) -> None:
        """Finish the batches in hand, hand back the rest, then disconnect."""
        for consumer in self.consumers:
            consumer.stop()
        self.log.stop()
        self.analysis.stop()
        self.notices.stop()
        self.partitions.stop()
        self.jobs.stop()

    def routers(self) -> list[APIRouter]:
        return [vitals_router(self.config.max_points, self.config.fhir_max_hours),
                alerts_router(self.defaults, self.alerting)]

    def checks(self) -> dict[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {"database": database_check(self.pool), "log": lambda: self.log.connected,
                                             "timescaledb_jobs": self.jobs.readiness}
        for consumer in self.consumers:  # not ready while a consumer's oldest message waits too long
            checks[consumer.spec.durable] = consumer.ready
        return checks


def build(
    settings: Settings, pool: ConnectionPool, config: TelemetrySettings | None = None,
    notify: NotifySettings | None = None,
) -> TelemetryComponent:
    """The telemetry component; its own settings are read from HOMECARE_TELEMETRY_* (and
    notifications' from HOMECARE_NOTIFY_*) when not given."""
    return TelemetryComponent(settings, pool, config or TelemetrySettings(), notify)
