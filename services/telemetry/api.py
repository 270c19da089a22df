"""HTTP routes of the telemetry service: vitals of a bed for charts, its latest state, and a
resident's vitals as FHIR R4 Observations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from homecare.api.deps import DbConn, DispatcherUser
from homecare.api.types import Timestamp
from homecare.auth import User
from homecare.residents import store as residents
from services.telemetry.queries import DEFAULT_MAX_POINTS, latest_state, resolve_resolution, vitals
from services.telemetry.usecases.exports import resident_observations

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


class LatestState(BaseModel):
    device_id: str
    resident_id: str
    ts: datetime
    occupied: bool
    heart_rate: int | None
    respiration_rate: int | None
    movement: float


FHIR_JSON = "application/fhir+json"


def in_scope(conn: DbConn, device_id: str, user: User) -> None:
    """NotFound for a device of a resident of another district than a dispatcher's own."""
    if not user.scope.everywhere:  # unscoped, a bed's data answers as before, registered or not
        from services.dispatch.interface import device_in_scope

        device_in_scope(conn, device_id, user)


def vitals_router(max_points: int = DEFAULT_MAX_POINTS, fhir_max_hours: int = 24 * 7) -> APIRouter:
    """Vitals, latest state and the FHIR export, for dispatchers and admins."""
    router = APIRouter(prefix="/api/v1", tags=["telemetry"])

    @router.get("/devices/{device_id}/vitals", response_model=Vitals)
    def device_vitals(
        device_id: str,
        conn: DbConn,
        user: DispatcherUser,
        start: Timestamp | None = None,
        end: Timestamp | None = None,
        resolution: Literal["raw", "1m", "1h", "auto"] = Query("auto"),
    ) -> Vitals:
        """Samples of a bed over [start, end) (default: the last 24 hours), or their aggregates."""
        in_scope(conn, device_id, user)
        end = end or (start + DEFAULT_SPAN if start else datetime.now(UTC))
        start = start or end - DEFAULT_SPAN
        used = resolve_resolution(start, end, resolution, max_points)
        points = vitals(conn, device_id, start, end, used, max_points)
        return Vitals(device_id=device_id, resolution=used, start=start, end=end, points=points)

    @router.get("/devices/{device_id}/latest", response_model=LatestState)
    def device_latest(device_id: str, conn: DbConn, user: DispatcherUser) -> LatestState:
        """The newest sample of a bed (404 when it has sent none)."""
        in_scope(conn, device_id, user)
        return LatestState(**latest_state(conn, device_id))

    @router.get("/residents/{resident_id}/observations", response_class=JSONResponse, responses={200: {
        "description": "A FHIR R4 searchset Bundle of vital-signs Observations",
        "content": {FHIR_JSON: {"schema": {"type": "object"}}}}})
    def observations(
        resident_id: str, request: Request, conn: DbConn, user: DispatcherUser,
        start: Timestamp | None = None, end: Timestamp | None = None,
    ) -> JSONResponse:
        """The resident's heart and respiratory rate per minute over [start, end) (default: the
        last 24 hours) as a FHIR R4 searchset Bundle of vital-signs Observations."""
        if not user.scope.everywhere:
            residents.get(conn, resident_id, user.scope.districts)
        end = end or (start + DEFAULT_SPAN if start else datetime.now(UTC))
        start = start or end - DEFAULT_SPAN
        bundle = resident_observations(conn, resident_id, start, end, fhir_max_hours, str(request.url))
        return JSONResponse(bundle, media_type=FHIR_JSON)

    return router
