"""Bed data made through the gateway's registry and telemetry's own store and rollups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from gateway import registry
from homecare.db.migrate import Flavour, current_flavour
from services.telemetry.domain.samples import SampleRow
from services.telemetry.store import rollups
from services.telemetry.store.samples import write_samples
from tests.telemetry.helpers import refresh_aggregates


def provision(pool, resident_id: str, kind: str = "bed") -> str:
    device_id = f"{kind}-{uuid.uuid4().hex[:10]}"
    with pool.connection() as conn:
        registry.provision(conn, device_id, kind, resident_id)
    return device_id


def night_and_day(device_id: str, resident_id: str, now: datetime, every: timedelta, span: timedelta):
    """Samples over [now - span, now): in bed from 22:00 to 07:00 UTC, HR 60-70, RR 14-16."""
    rows, t = [], now - span
    while t < now:
        in_bed = t.hour >= 22 or t.hour < 7
        wave = (t.minute % 10)
        rows.append(SampleRow(t, device_id, resident_id, in_bed, 60 + wave if in_bed else None,
                              14 + wave % 3 if in_bed else None, 0.1 if in_bed else 0.0))
        t += every
    return rows


def fill(pool, device_id: str, resident_id: str, now: datetime | None = None) -> int:
    """A week of samples (every 10 min, every minute in the last day), rolled up; how many."""
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    week = night_and_day(device_id, resident_id, now - timedelta(days=1), timedelta(minutes=10), timedelta(days=6))
    day = night_and_day(device_id, resident_id, now, timedelta(minutes=1), timedelta(days=1))
    with pool.connection() as conn:
        write_samples(conn, week + day)
    roll_up(pool)
    return len(week) + len(day)


def store(pool, rows: list[SampleRow]) -> None:
    """Store samples and roll them up, as ingest and the analysis worker would."""
    with pool.connection() as conn:
        write_samples(conn, rows)
    roll_up(pool)


def roll_up(pool) -> None:
    """Bring the minute and hour rollups up to date with the stored samples."""
    with pool.connection() as conn:
        plain = current_flavour(conn) is Flavour.PLAIN  # TimescaleDB's are real-time aggregates
        while touched := rollups.claim_touched(conn, 5000):
            if plain:
                rollups.recompute(conn, touched)
    refresh_aggregates(pool)
