"""Bed samples as ingest stores them: parsed from an internal message into database rows."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import NamedTuple

from pydantic import ValidationError

from homecare.internal import TelemetryBatches

COLUMNS = ("ts", "device_id", "resident_id", "occupied", "heart_rate", "respiration_rate", "movement")
_SMALLINT = (-32768, 32767)
_REAL_MAX = 3.4e38


class BadMessage(ValueError):
    """A message that can never be stored: not TelemetryBatches, or values no column can hold."""


class SampleRow(NamedTuple):
    """One row of telemetry.bed_samples, in COLUMNS order."""

    ts: datetime
    device_id: str
    resident_id: str
    occupied: bool
    heart_rate: int | None
    respiration_rate: int | None
    movement: float


def parse_batches(payload: bytes | str) -> list[SampleRow]:
    """The rows of one Internal.TELEMETRY message, or BadMessage saying what is wrong."""
    try:
        message = TelemetryBatches.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadMessage(f"not TelemetryBatches: {where}: {first['msg']}") from None
    rows: list[SampleRow] = []
    for b, batch in enumerate(message.batches):
        for field in ("device_id", "resident_id"):
            value = getattr(batch, field)
            if not value or "\x00" in value:  # PostgreSQL text cannot hold NUL
                raise BadMessage(f"batches[{b}].{field}: must be a non-empty string without NUL")
        for s, sample in enumerate(batch.samples):
            where = f"batches[{b}].samples[{s}]"
            for field in ("heart_rate", "respiration_rate"):
                value = getattr(sample, field)
                if value is not None and not _SMALLINT[0] <= value <= _SMALLINT[1]:
                    raise BadMessage(f"{where}.{field}: {value} does not fit a smallint")
            if not math.isfinite(sample.movement) or abs(sample.movement) > _REAL_MAX:
                raise BadMessage(f"{where}.movement: {sample.movement} is not a finite real")
            rows.append(
                SampleRow(
                    _utc(sample.ts), batch.device_id, batch.resident_id, sample.occupied,
                    sample.heart_rate, sample.respiration_rate, sample.movement,
                )
            )
    return rows


def _utc(ts: datetime) -> datetime:
    # The gateway sends UTC; a naive time is taken as UTC rather than the session's time zone.
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
