"""Settings of the telemetry service (environment prefix ``HOMECARE_TELEMETRY_``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelemetrySettings(BaseSettings):
    """How ingest batches, how rollups, retention and alert rules run, and their defaults."""

    model_config = SettingsConfigDict(env_prefix="HOMECARE_TELEMETRY_", extra="ignore")

    # Device batches fetched from the log at once and written in one transaction: fewer,
    # larger commits instead of one per device message (a bed's message holds ~10 samples).
    fetch_batch: int = Field(default=500, ge=1, le=10_000)
    # Writer threads, each fetching and writing on its own connection: while one waits for the
    # database (COPY, commit), another parses the next batch.
    writers: int = Field(default=2, ge=1, le=8)
    # Readiness fails when the oldest message a consumer has not acknowledged is older.
    stuck_after_s: float = Field(default=60.0, gt=0)

    # Plain PostgreSQL: daily partitions from `partitions_behind_days` ago to
    # `partitions_ahead_days` ahead, re-checked every `partition_check_s`.
    partitions_behind_days: int = Field(default=7, ge=0)
    partitions_ahead_days: int = Field(default=3, ge=1)
    partition_check_s: float = Field(default=3600.0, gt=0)

    # Retention (0 keeps forever). Plain: old daily partitions are dropped and old rollup rows
    # deleted by the service; TimescaleDB: retention policies with these values.
    raw_retention_days: int = Field(default=90, ge=0)
    rollup_1m_retention_days: int = Field(default=730, ge=0)
    rollup_1h_retention_days: int = Field(default=3650, ge=0)
    # TimescaleDB only: compress raw chunks older than this (0: no compression policy).
    compress_after_days: int = Field(default=7, ge=0)
    # TimescaleDB only: the policy jobs' runs are read this often (metrics, and /readyz reports
    # degraded while one failed or has not succeeded for twice its interval).
    job_check_s: float = Field(default=60.0, gt=0)

    # The analysis worker: recomputes touched rollup buckets (plain) and runs the sample rules,
    # after each ingest commit or at least every `analysis_interval_s`.
    analysis_interval_s: float = Field(default=1.0, gt=0)
    # ...but no sooner than this after the previous pass: the rules re-read a few minutes of raw
    # samples around each touched minute, so a pass per ingest commit would read the same
    # samples many times over while ingest is busy. Pokes in between are coalesced.
    analysis_min_interval_s: float = Field(default=1.0, ge=0)
    analysis_batch: int = Field(default=5000, ge=1)
    # Due timers (bed exits, offline devices) are looked at this often.
    timer_interval_s: float = Field(default=5.0, gt=0)
    # Completed nights are compared with the baseline, and never-connected devices looked for, this often.
    baseline_check_s: float = Field(default=600.0, gt=0)

    # A chart never gets more points than this; "auto" resolution picks accordingly.
    max_points: int = Field(default=5000, ge=10)
    # The FHIR export covers at most this many hours per call.
    fhir_max_hours: int = Field(default=24 * 7, ge=1)

    # Device self-tests (mqtt-v1.1): how often each kind of device is expected to test itself
    # (JSON, e.g. HOMECARE_TELEMETRY_SELFTEST_INTERVAL_H='{"button": 24, "bed": 168}'; the devices'
    # own default is 24), and how late one may come before it counts as missed.
    selftest_interval_h: dict[Literal["button", "bed"], Annotated[int, Field(ge=1, le=744)]] = Field(
        default_factory=lambda: {"button": 24, "bed": 24})
    selftest_grace_h: float = Field(default=2.0, ge=0, le=168)
    # A device provisioned this long ago that never connected is a device fault (looked for every
    # `baseline_check_s`).
    never_connected_after_h: float = Field(default=24.0, gt=0, le=24 * 90)

    # A suspected fall opens an emergency request in dispatch when its confidence reaches this.
    falls_open_requests: bool = True
    fall_min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)

    # Defaults of the alert rules; a resident's own settings override the person rules.
    alert_timezone: str = "Asia/Shanghai"
    alert_night_start: str = Field(default="22:00", pattern=r"^\d{2}:\d{2}$")
    alert_night_end: str = Field(default="06:00", pattern=r"^\d{2}:\d{2}$")
    alert_hr_low: int = Field(default=40, ge=0)
    alert_hr_high: int = Field(default=120, ge=0)
    alert_rr_low: int = Field(default=8, ge=0)
    alert_rr_high: int = Field(default=30, ge=0)
    alert_sustain_s: int = Field(default=120, ge=1)
    alert_max_gap_s: int = Field(default=30, ge=1)
    alert_bed_exit_minutes: int = Field(default=30, ge=1)
    alert_still_minutes: int = Field(default=120, ge=1)
    alert_still_movement_below: float = Field(default=0.2, gt=0, le=1)
    alert_baseline_nights: int = Field(default=7, ge=2)
    alert_baseline_min_nights: int = Field(default=5, ge=2)
    alert_baseline_sigmas: float = Field(default=3.0, gt=0)
    alert_baseline_min_change: float = Field(default=0.15, ge=0)
    alert_baseline_min_minutes: int = Field(default=120, ge=1)
    alert_baseline_settle_minutes: int = Field(default=60, ge=0)
    # Device alerts (not per resident).
    alert_offline_grace_s: int = Field(default=300, ge=0)
    alert_battery_low_below: float = Field(default=0.2, ge=0, le=1)
    alert_battery_ok_above: float = Field(default=0.3, ge=0, le=1)
    # A stuck button's alert clears after this long without a stuck press (the thresholds of
    # "stuck" are shared with dispatch: HOMECARE_BUTTON_STUCK_*, homecare/buttons.py).
    alert_button_stuck_clear_s: int = Field(default=60, ge=1)
