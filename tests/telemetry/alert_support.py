"""Helpers of the alert tests on the real database: samples with given vitals, alerts read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from homecare.internal import DeviceEvent, SampleRow
from services.telemetry import alert_queries
from services.telemetry.domain.samples import parse_batches
from services.telemetry.settings import TelemetrySettings
from services.telemetry.store.alert_settings import defaults_from
from services.telemetry.store.samples import write_samples
from services.telemetry.usecases.context import Alerting
from services.telemetry.workers.analysis import AnalysisWorker
from tests.support import unique

from .helpers import message


def vitals_samples(start: datetime, seconds: int, heart_rate: int | None = 70, respiration_rate: int | None = 14,
                   step: int = 1, movement: float = 0.4, occupied: bool = True) -> list[SampleRow]:
    """Samples every `step` s for `seconds` s with the given values."""
    return [
        SampleRow(ts=start + timedelta(seconds=i), occupied=occupied, heart_rate=heart_rate,
                  respiration_rate=respiration_rate, movement=movement)
        for i in range(0, seconds, step)
    ]


def store(pool, bed: str, resident: str, samples: list[SampleRow], batch: int | None = None) -> None:
    """Write samples as ingest does, in batches of `batch` samples (one transaction each)."""
    batch = batch or len(samples)
    for i in range(0, len(samples), batch):
        with pool.connection() as conn, conn.transaction():
            write_samples(conn, parse_batches(message((bed, resident, samples[i:i + batch])).dumps()))


def worker(pool, **settings) -> AnalysisWorker:
    config = TelemetrySettings(**settings)
    return AnalysisWorker(pool, config, defaults_from(config), Alerting())


def alerts_of(pool, resident: str, states: list[str] | None = None) -> list[dict]:
    with pool.connection() as conn:
        return alert_queries.list_alerts(conn, states=states, resident_id=resident)


def alert(pool, alert_id: str) -> dict:
    with pool.connection() as conn:
        return alert_queries.get_alert(conn, alert_id)


def recent_start(minutes_ago: int = 30) -> datetime:
    """A whole second some minutes ago (samples must be recent enough to be plausible)."""
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(microsecond=0)


def bed_event(bed: str, resident: str, type_: str, ts: datetime, **extra) -> DeviceEvent:
    kind = extra.pop("device_kind", "bed")
    return DeviceEvent(device_id=bed, device_kind=kind, resident_id=resident, event_id=unique("ev"), ts=ts,
                       type=type_, received_at=datetime.now(UTC), **extra)
