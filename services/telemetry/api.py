"""HTTP routes of the telemetry service: vitals of a bed for charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from homecare.api.deps import DbConn, DispatcherUser

from .queries import DEFAULT_MAX_POINTS, resolve_resolution, vitals

DEFAULT_SPAN = timedelta(hours=24)


class RawPoint(BaseModel):
    ts: datetime
    occupied: bool
    heart_rate: int | None
    respiration_rate: int | None
    movement: float


class BucketPoint(BaseModel):
    ts: datetime  # start of the bucket
    samples: int
    occupancy: float  # fraction of samples with the bed occupied
    heart_rate: float | None  # averages, so charts plot the same keys at every resolution
    heart_rate_min: int | None
    heart_rate_max: int | None
    respiration_rate: float | None
    respiration_rate_min: int | None
    respiration_rate_max: int | None
    movement: float
    movement_max: float


class Vitals(BaseModel):
    device_id: str
    resolution: Literal["raw", "1m", "1h"]
    start: datetime
    end: datetime
    points: list[RawPoint] | list[BucketPoint]


def vitals_router(max_points: int = DEFAULT_MAX_POINTS) -> APIRouter:
    """`GET /api/v1/devices/{id}/vitals` for dispatchers and admins."""
    router = APIRouter(prefix="/api/v1", tags=["telemetry"])

    @router.get("/devices/{device_id}/vitals", response_model=Vitals)
    def device_vitals(
        device_id: str,
        conn: DbConn,
        _: DispatcherUser,
        start: datetime | None = None,
        end: datetime | None = None,
        resolution: Literal["raw", "1m", "1h", "auto"] = Query("auto"),
    ) -> Vitals:
        """Samples of a bed over [start, end) (default: the last 24 hours), or their aggregates."""
        end = end or (start + DEFAULT_SPAN if start else datetime.now(UTC))
        start = start or end - DEFAULT_SPAN
        used = resolve_resolution(start, end, resolution, max_points)
        points = vitals(conn, device_id, start, end, used, max_points)
        return Vitals(device_id=device_id, resolution=used, start=start, end=end, points=points)

    return router
