"""Settings of the telemetry service (environment prefix ``HOMECARE_TELEMETRY_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelemetrySettings(BaseSettings):
    """How ingest batches its writes, how far ahead partitions exist, how vitals are served."""

    model_config = SettingsConfigDict(env_prefix="HOMECARE_TELEMETRY_", extra="ignore")

    # Messages are accumulated for this long (or up to batch_max_rows samples) and written in
    # one transaction: fewer, larger commits instead of one per message.
    batch_window_ms: int = Field(default=100, ge=0, le=10_000)
    batch_max_rows: int = Field(default=20_000, ge=1)
    # Backoff between retries of a failed write (the messages stay un-acked meanwhile).
    retry_min_s: float = Field(default=0.5, gt=0)
    retry_max_s: float = Field(default=10.0, gt=0)

    # Plain PostgreSQL: daily partitions from `partitions_behind_days` ago to
    # `partitions_ahead_days` ahead, re-checked every `partition_check_s`.
    partitions_behind_days: int = Field(default=7, ge=0)
    partitions_ahead_days: int = Field(default=3, ge=1)
    partition_check_s: float = Field(default=3600.0, gt=0)

    # A chart never gets more points than this; "auto" resolution picks accordingly.
    max_points: int = Field(default=5000, ge=10)

    # A suspected fall opens an emergency request in dispatch when its confidence reaches this.
    falls_open_requests: bool = True
    fall_min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
