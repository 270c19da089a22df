"""The rule limits in force: the service defaults, overridden by a resident's own settings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.night import clock
from services.telemetry.settings import TelemetrySettings


def defaults_from(settings: TelemetrySettings) -> RuleLimits:
    """The service-wide limits from HOMECARE_TELEMETRY_ALERT_* settings."""
    return RuleLimits(
        timezone=settings.alert_timezone,
        night_start=clock(settings.alert_night_start),
        night_end=clock(settings.alert_night_end),
        hr_low=settings.alert_hr_low, hr_high=settings.alert_hr_high,
        rr_low=settings.alert_rr_low, rr_high=settings.alert_rr_high,
        sustain_s=settings.alert_sustain_s, max_gap_s=settings.alert_max_gap_s,
        bed_exit_minutes=settings.alert_bed_exit_minutes,
        still_minutes=settings.alert_still_minutes, still_movement_below=settings.alert_still_movement_below,
        baseline_nights=settings.alert_baseline_nights, baseline_min_nights=settings.alert_baseline_min_nights,
        baseline_sigmas=settings.alert_baseline_sigmas, baseline_min_change=settings.alert_baseline_min_change,
        baseline_min_minutes=settings.alert_baseline_min_minutes,
        baseline_settle_minutes=settings.alert_baseline_settle_minutes,
        offline_grace_s=settings.alert_offline_grace_s,
        battery_low_below=settings.alert_battery_low_below, battery_ok_above=settings.alert_battery_ok_above,
        button_stuck_clear_s=settings.alert_button_stuck_clear_s,
    )


class ResidentAlertSettings(BaseModel):
    """A resident's own limits; a field left out (or null) keeps the service default."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = None
    night_start: time | None = None
    night_end: time | None = None
    hr_low: int | None = Field(default=None, ge=20, le=250)
    hr_high: int | None = Field(default=None, ge=20, le=250)
    rr_low: int | None = Field(default=None, ge=4, le=60)
    rr_high: int | None = Field(default=None, ge=4, le=60)
    sustain_s: int | None = Field(default=None, ge=10, le=3600)
    bed_exit_minutes: int | None = Field(default=None, ge=1, le=720)
    still_minutes: int | None = Field(default=None, ge=10, le=1440)
    still_movement_below: float | None = Field(default=None, gt=0, le=1)
    baseline_sigmas: float | None = Field(default=None, gt=0, le=10)
    baseline_min_change: float | None = Field(default=None, ge=0, le=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def stored_settings(conn: psycopg.Connection, resident_id: str) -> ResidentAlertSettings:
    """A resident's own settings (empty when none were made)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT settings FROM telemetry.alert_settings WHERE resident_id = %s", (resident_id,)
        ).fetchone()
    return ResidentAlertSettings.model_validate(row["settings"] if row else {})


def save_settings(conn: psycopg.Connection, resident_id: str, settings: ResidentAlertSettings, by: str) -> None:
    """Replace a resident's own settings."""
    conn.execute(
        "INSERT INTO telemetry.alert_settings (resident_id, settings, updated_by) VALUES (%s, %s, %s)"
        " ON CONFLICT (resident_id) DO UPDATE SET settings = EXCLUDED.settings, updated_by = EXCLUDED.updated_by,"
        " updated_at = now()",
        (resident_id, Jsonb(settings.model_dump(mode="json", exclude_none=True)), by),
    )


def limits_for(conn: psycopg.Connection, resident_ids: Iterable[str], defaults: RuleLimits) -> dict[str, RuleLimits]:
    """The limits in force for each resident (the defaults for those without settings)."""
    ids = sorted(set(resident_ids))
    out = dict.fromkeys(ids, defaults)
    if not ids:
        return out
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT resident_id, settings FROM telemetry.alert_settings WHERE resident_id = ANY(%s)", (ids,)
        ).fetchall()
    for row in rows:
        out[row["resident_id"]] = defaults.override(ResidentAlertSettings.model_validate(row["settings"]).overrides())
    return out
