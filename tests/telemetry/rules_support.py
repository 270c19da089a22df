"""Builders for the pure rule tests: samples, minutes and times in the resident's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.telemetry.domain.rules.model import Minute, Sample

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # 02:00 in Shanghai, at night


def at_shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """A time given in Shanghai local time (November 2026), as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def steady(start: datetime, seconds: int, heart_rate: int | None = 70, respiration_rate: int | None = 14,
           step: int = 1, movement: float = 0.05, occupied: bool = True) -> list[Sample]:
    """Samples every `step` s for `seconds` s (the last one at start + seconds - step)."""
    return [
        Sample(start + timedelta(seconds=i), occupied, heart_rate, respiration_rate, movement)
        for i in range(0, seconds, step)
    ]


def minutes(start: datetime, count: int, movement_max: float = 0.05, occupied: bool = True,
            samples: int = 60) -> list[Minute]:
    """`count` consecutive minute rollups from start."""
    return [
        Minute(start + timedelta(minutes=i), samples, samples if occupied else 0, movement_max)
        for i in range(count)
    ]
