"""Shared helpers of the telemetry tests: samples, batches and direct reads of stored rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from homecare.internal import DeviceBatch, SampleRow, TelemetryBatches
from services.telemetry.usecases.context import Alerting


def sample(ts: datetime, rng: random.Random | None = None, occupied: bool | None = None) -> SampleRow:
    """A plausible bed sample at ts (values with few digits, as beds send them)."""
    rng = rng or random.Random()
    occupied = rng.random() < 0.8 if occupied is None else occupied
    return SampleRow(
        ts=ts,
        occupied=occupied,
        heart_rate=rng.randint(45, 110) if occupied and rng.random() < 0.9 else None,
        respiration_rate=rng.randint(8, 24) if occupied and rng.random() < 0.9 else None,
        movement=round(rng.random(), 3) if occupied else 0.0,
    )


def series(start: datetime, count: int, step: timedelta = timedelta(seconds=1), seed: int = 1):
    """count samples every step from start."""
    rng = random.Random(seed)
    return [sample(start + i * step, rng) for i in range(count)]


def message(*batches: tuple[str, str, list[SampleRow]]) -> TelemetryBatches:
    """A TelemetryBatches of (device_id, resident_id, samples) batches."""
    return TelemetryBatches(
        batches=[DeviceBatch(device_id=d, resident_id=r, samples=s) for d, r, s in batches]
    )


def stored_rows(pool, device_id: str) -> list[tuple]:
    """(ts, occupied, heart_rate, respiration_rate, movement) of a device, oldest first."""
    with pool.connection() as conn:
        cur = conn.execute(
            "SELECT ts, occupied, heart_rate, respiration_rate, movement"
            " FROM telemetry.bed_samples WHERE device_id = %s ORDER BY ts",
            (device_id,),
        )
        return [
            (r["ts"].astimezone(UTC), r["occupied"], r["heart_rate"], r["respiration_rate"], r["movement"])
            for r in cur.fetchall()
        ]


def as_tuples(samples: list[SampleRow]) -> list[tuple]:
    return [
        (s.ts.astimezone(UTC), s.occupied, s.heart_rate, s.respiration_rate, s.movement)
        for s in sorted(samples, key=lambda s: s.ts)
    ]


def base_time(days_ago: int = 1) -> datetime:
    """A whole minute some days ago, plus an odd offset so buckets get partial edges."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(days=days_ago) + timedelta(seconds=17, milliseconds=250)


def analyse(pool, config=None) -> int:
    """Run the analysis worker once (rollups of touched minutes, sample rules), as the service does
    after each ingest commit, and on TimescaleDB the aggregates' refresh; how many touched minutes
    it handled."""
    from services.telemetry.settings import TelemetrySettings
    from services.telemetry.store.alert_settings import defaults_from
    from services.telemetry.workers.analysis import AnalysisWorker

    config = config or TelemetrySettings()
    handled = AnalysisWorker(pool, config, defaults_from(config), Alerting()).analyse_once()
    refresh_aggregates(pool)
    return handled


def refresh_aggregates(pool) -> None:
    """On TimescaleDB, what its refresh policy does every minute in a deployment: the aggregates
    materialized over the last 8 days. Their real-time part shows only rows newer than the last
    refresh, so once any refresh ran (the server's own jobs may, in the middle of a test) late rows
    show only after the next. Nothing on plain PostgreSQL, whose rollups the analysis rebuilds."""
    import psycopg

    from homecare.db.migrate import Flavour, current_flavour

    with psycopg.connect(pool.conninfo, autocommit=True) as conn:
        if current_flavour(conn) is not Flavour.TIMESCALE:
            return
        for view in ("telemetry.vitals_1m", "telemetry.vitals_1h"):  # the hour is built on the minute
            conn.execute(f"CALL refresh_continuous_aggregate('{view}', now() - INTERVAL '8 days', NULL)")


def jobs_by_hand_only(pool) -> None:
    """TimescaleDB: the policies with their default values, their background runs turned off (what
    an operator does on a server whose background workers fail, as CI's do), so that only the
    runs of `jobs.run_due` count."""
    from services.telemetry.settings import TelemetrySettings
    from services.telemetry.store import timescale

    with pool.connection() as conn, conn.transaction():
        timescale.apply_policies(conn, TelemetrySettings())
        conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
                     " WHERE hypertable_schema = 'telemetry'")


def run_jobs_while_samples_are_locked(url: str):
    """Every job run by hand while someone holds the raw hypertable: its retention (and whatever
    reads its rows) cannot take its lock in time and fails with a lock timeout; the runs."""
    import psycopg

    from services.telemetry.store import jobs

    impatient = psycopg.conninfo.make_conninfo(url, options="-c lock_timeout=200ms")
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE telemetry.bed_samples IN ACCESS EXCLUSIVE MODE")
        return jobs.run_due(impatient, every=True)
