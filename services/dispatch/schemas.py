"""Request and response bodies of the dispatch API (http-v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from homecare.api.types import District, Flag, Identifier, Latitude, Line, Longitude, Name, Note, Timestamp
from homecare.contract.models import Service


class LocationIn(BaseModel):
    lat: Latitude
    lon: Longitude


class NewProvider(BaseModel):
    name: Name
    services: list[Service] = Field(min_length=1, max_length=len(Service))
    location: LocationIn
    capacity: Annotated[int, Strict(), Field(ge=1, le=1000)]
    on_shift: Flag = True
    districts: list[District] = Field(default_factory=list, max_length=50, description=(
        "The districts it serves (residents' district names); none: not yet placed, it serves every"
        " district and every dispatcher sees it."))


class ProviderDistricts(BaseModel):
    districts: list[District] = Field(max_length=50, description="Replaces where the provider serves; [] unplaces it")


class ProviderOut(BaseModel):
    id: str
    name: str
    services: list[Service]
    location: LocationIn
    capacity: int
    on_shift: bool
    active: int = 0
    created_at: datetime
    location_at: datetime | None = None
    # Presence (domain/presence.py): when its app or the provider was last heard from, and
    # `off` / `reachable` / `unreachable` (on shift, quiet for longer than the presence time-out).
    last_seen_at: datetime | None = None
    presence: Literal["off", "reachable", "unreachable"] = "off"
    districts: list[str] = Field(default_factory=list, description="Where it serves; [] not yet placed: everywhere")

    @classmethod
    def of(cls, row: dict) -> ProviderOut:
        return cls(
            id=row["id"], name=row["name"], services=row["services"],
            location=LocationIn(lat=row["lat"], lon=row["lon"]), capacity=row["capacity"],
            on_shift=row["on_shift"], active=row.get("active", 0), created_at=row["created_at"],
            location_at=row.get("location_at"), last_seen_at=row.get("last_seen_at"),
            presence=row.get("presence", "off"), districts=row.get("districts") or [],
        )


class Heartbeat(BaseModel):
    """The body of a heartbeat: nothing, or an empty object (room for later fields)."""

    model_config = ConfigDict(extra="forbid")


class Shift(BaseModel):
    on_shift: Flag


class NewRequest(BaseModel):
    resident_id: Identifier
    service: Service
    note: Note | None = None


class AssignBody(BaseModel):
    provider_id: Identifier
    override_shift: Flag = False  # send a provider who is off shift anyway


class ShiftPlan(BaseModel):
    starts_at: Timestamp
    ends_at: Timestamp


class ShiftOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    provider_id: str
    starts_at: datetime
    ends_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None


class CandidateOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    provider_id: str
    name: str
    rank: int | None
    eta_minutes: int
    travel_minutes: float
    wait_minutes: float
    score: float | None
    components: dict[str, float] | None
    eligible: bool
    reason: str | None
    qualified: bool
    on_shift: bool
    load: int
    pending_offers: int
    capacity: int
    free_capacity: int
    preempts: bool
    visits_with_resident: int
    recent_assignments: int
    minutes_left_on_shift: float | None
    reachable: bool = True  # its app was heard from within the presence time-out
    location: LocationIn
    offered_now: bool
    assigned: bool
    cross_district: bool = Field(False, description=(
        "The provider serves other districts, not the request's: help from another district, offered"
        " only when no provider of the request's district was eligible (services/dispatch/README.md)."))


class CancelBody(BaseModel):
    reason: Line


class DeclineBody(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


class RequestOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    resident_id: str
    service: Service
    priority: int
    urgency: int
    status: str
    source: str
    device_id: str | None = None
    provider_id: str | None = None
    provider_name: str | None = None
    note: str | None = None
    created_at: datetime
    acknowledged_at: datetime | None = None
    assigned_at: datetime | None = None
    arrived_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    escalated_at: datetime | None = None
    assign_due_at: datetime
    sla_due_at: datetime
    sla_at_risk_at: datetime | None = Field(
        None, description="When the request was first flagged as likely to miss its targets.")
    eta_minutes: int | None = None
    expected_arrival: datetime | None = Field(
        None, description="When someone is expected at the door: from the assigned provider's ETA, or the pending"
                          " offer's; compare with sla_due_at.")
    escalation_reason: str | None = Field(
        None, description="Why an escalated request is with the dispatchers; automatic offers go on meanwhile.")
    district: str | None = None
    ack_shown_at: datetime | None = None
    handed_back: int = 0
    stuck_presses: int | None = Field(
        None, description="Set when a stuck button's presses joined the request (homecare/buttons.py): the stuck"
                          " run's presses; they did not raise its urgency. Null otherwise.")
    stuck_from: datetime | None = Field(None, description="The stuck run's first press (the device's clock).")
    stuck_to: datetime | None = Field(None, description="Its latest press so far.")
    cross_district: bool = Field(False, description=(
        "The provider serves other districts, not the request's: help from another district, offered"
        " only when no provider of the request's district was eligible (services/dispatch/README.md)."))


class TimelineOut(BaseModel):
    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]


class OfferOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    request_id: str | None = None
    provider_id: str
    provider_name: str | None = None
    status: str
    eta_minutes: int | None = None
    created_at: datetime
    deadline_at: datetime
    answered_at: datetime | None = None
    score: float | None = None
    score_parts: dict[str, float] | None = None
    preempts_request_id: str | None = None
    resident_id: str | None = None
    service: Service | None = None
    priority: int | None = None
    urgency: int | None = None
    request_status: str | None = None
    cross_district: bool = Field(False, description=(
        "The provider serves other districts, not the request's: help from another district, offered"
        " only when no provider of the request's district was eligible (services/dispatch/README.md)."))


class CommandOut(BaseModel):
    model_config = ConfigDict(extra="ignore")

    command_id: str | None = None
    type: str
    device_id: str | None = None
    created_at: datetime
    sent_at: datetime | None = None  # the broker took it from dispatch
    delivery: str | None = None  # sent / acknowledged (the button showed it) / expired
    delivery_at: datetime | None = None


class DeviceCommand(BaseModel):
    """A command sent (or to be sent) to a device, and what became of it."""

    command_id: str
    type: str
    state: Literal["queued", "sent", "acknowledged", "expired"]
    held: bool = Field(description="Waiting for the device's first connection (it has no broker session yet).")
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None = Field(description="When the device says it showed the command.")
    deadline_at: datetime


class RequestDetail(RequestOut):
    timeline: list[TimelineOut]
    offers: list[OfferOut]
    commands: list[CommandOut] = []
