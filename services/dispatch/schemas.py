"""Request and response bodies of the dispatch API (http-v1)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from homecare.api.types import District, Flag, Identifier, Latitude, Line, Longitude, Name, Note, Timestamp
from homecare.contract.models import Service


class LocationIn(BaseModel):
    lat: Latitude
    lon: Longitude


Skill = Identifier  # "bath_lift", "wheelchair", "halal": what a plan asks for and a provider can do
Skills = Annotated[list[Skill], Field(max_length=16)]


class NewProvider(BaseModel):
    name: Name
    services: list[Service] = Field(min_length=1, max_length=len(Service))
    location: LocationIn
    capacity: Annotated[int, Strict(), Field(ge=1, le=1000)]
    on_shift: Flag = True
    districts: list[District] = Field(default_factory=list, max_length=50, description=(
        "The districts it serves (residents' district names); none: not yet placed, it serves every"
        " district and every dispatcher sees it."))
    skills: Skills = Field(default_factory=list)


class ProviderDistricts(BaseModel):
    districts: list[District] = Field(max_length=50, description="Replaces where the provider serves; [] unplaces it")


class SkillsIn(BaseModel):
    """What the provider can do beyond its services; care plans ask for skills."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"skills": ["bath_lift", "halal"]}]})

    skills: Skills


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
    skills: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, row: dict) -> ProviderOut:
        return cls(
            id=row["id"], name=row["name"], services=row["services"],
            location=LocationIn(lat=row["lat"], lon=row["lon"]), capacity=row["capacity"],
            on_shift=row["on_shift"], active=row.get("active", 0), created_at=row["created_at"],
            location_at=row.get("location_at"), last_seen_at=row.get("last_seen_at"),
            presence=row.get("presence", "off"), districts=row.get("districts") or [],
            skills=row.get("skills") or [],
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


class LateVisit(BaseModel):
    request_id: str = Field(description="The planned visit's request")
    minutes: float = Field(description="How late it would start, past its window")


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
    late: list[LateVisit] = Field(default_factory=list, description=(
        "Planned visits on the provider's route this request would make late: for a trade-off, or who"
        " becomes late when an emergency goes first."))
    tradeoff: bool = Field(False, description=(
        "Faster, but held back because it would make planned visits late (`late`); the dispatcher may"
        " still assign it."))
    tradeoff_eta_minutes: int | None = Field(None, description="Its ETA if chosen anyway (a trade-off only).")


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
    plan_visit_key: str | None = Field(
        None, description="A care plan's visit (source plan): \"plan_id:YYYY-MM-DD\". Null for presses and calls.")
    window_start: datetime | None = Field(None, description="A planned visit's window: start between these.")
    window_end: datetime | None = Field(None, description="Also its arrival target (sla_due_at).")
    planned_start: datetime | None = Field(None, description="When its route plans the start.")
    route_seq: int | None = Field(None, description="Its place on its provider's route when planned, 0 first.")
    plan_missed_at: datetime | None = Field(
        None, description="When the window ended with its provider not set off (it was escalated).")


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


# -- care plans and routes --------------------------------------------------------------------

def _text_only(value: object) -> object:
    """A date or time of day is ISO 8601 text ("2026-12-01", "11:30"), never a number."""
    if not isinstance(value, (str, date, time)):
        raise ValueError("must be ISO 8601 text, e.g. 2026-12-01 or 11:30")
    return value


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a time of day is local to the service centre: no offset")
    return value


Day = Annotated[date, BeforeValidator(_text_only)]
TimeOfDay = Annotated[time, BeforeValidator(_text_only), AfterValidator(_local)]
Weekday = Annotated[int, Strict(), Field(ge=0, le=6)]  # 0 Monday .. 6 Sunday
PlanService = Literal["meal", "bathing", "escort", "mobility"]  # emergencies are never planned
RepeatIn = Literal["daily", "weekdays", "every_n_weeks", "once"]
Minutes = Annotated[int, Strict(), Field(ge=1, le=480)]
EveryWeeks = Annotated[int, Strict(), Field(ge=1, le=52)]

_PLAN_EXAMPLE = {
    "service": "meal", "repeat": "daily", "starts_on": "2026-12-01", "window_start": "11:30",
    "window_end": "12:30", "duration_minutes": 20, "skills": ["halal"], "note": "soft food",
}
_BATH_EXAMPLE = {
    "service": "bathing", "repeat": "every_n_weeks", "starts_on": "2026-12-01", "weekdays": [1, 4],
    "every_weeks": 2, "window_start": "14:00", "window_end": "16:00", "duration_minutes": 45,
    "skills": ["bath_lift"], "preferred_provider_id": "p-3f9a1c2b7d4e",
}


class CarePlanIn(BaseModel):
    """A resident's recurring visit. Times of day are the service centre's
    (`HOMECARE_DISPATCH_PLAN_TIMEZONE`); the window is when the visit should start."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_PLAN_EXAMPLE, _BATH_EXAMPLE]})

    service: PlanService
    repeat: RepeatIn
    starts_on: Day
    ends_on: Day | None = None  # inclusive; none: until ended
    weekdays: list[Weekday] = Field(default_factory=list, max_length=7)
    every_weeks: EveryWeeks = 1
    window_start: TimeOfDay
    window_end: TimeOfDay
    duration_minutes: Minutes
    skills: Skills = Field(default_factory=list)
    preferred_provider_id: Identifier | None = None
    note: Note | None = None


class CarePlanPatch(BaseModel):
    """The fields to change; the others stay."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"window_start": "12:00", "window_end": "13:00"}, {"ends_on": "2027-01-31"}]})

    service: PlanService | None = None
    repeat: RepeatIn | None = None
    starts_on: Day | None = None
    ends_on: Day | None = None
    weekdays: list[Weekday] | None = Field(default=None, max_length=7)
    every_weeks: EveryWeeks | None = None
    window_start: TimeOfDay | None = None
    window_end: TimeOfDay | None = None
    duration_minutes: Minutes | None = None
    skills: Skills | None = None
    preferred_provider_id: Identifier | None = None
    note: Note | None = None


class PauseIn(BaseModel):
    """Days (both included) on which the plan asks for no visit, and why."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"from_day": "2026-12-07", "to_day": "2026-12-13", "reason": "in Ruijin Hospital after a fall"}]})

    from_day: Day
    to_day: Day
    reason: Line


class PauseOut(BaseModel):
    id: str
    from_day: date
    to_day: date
    reason: str
    actor: str


class PausedOut(PauseOut):
    """The pause, and the requests of visits on its days already released (their window opens
    within the release lead): they go on unless a dispatcher cancels them."""

    released_requests: list[str]


class CarePlanOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id": "cp-1a2b3c4d5e6f", "resident_id": "res-1",
                                                              "active": True, **_PLAN_EXAMPLE, "ends_on": None,
                                                              "weekdays": [], "every_weeks": 1,
                                                              "preferred_provider_id": None}]})

    id: str
    resident_id: str
    service: str
    repeat: str
    starts_on: date
    ends_on: date | None
    weekdays: list[int]
    every_weeks: int
    window_start: time
    window_end: time
    duration_minutes: int
    skills: list[str]
    preferred_provider_id: str | None
    note: str | None
    active: bool
    pauses: list[PauseOut] = Field(description="Days it asks for no visit, by first day; past ones are dropped.")


class PlanRunOut(BaseModel):
    """One planning run of a day: what the solver found."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "pr-1a2b3c4d5e6f", "day": "2026-12-02", "ran_at": "2026-12-01T10:00:00Z", "actor": "dispatcher:ann",
        "solver": "ortools", "visits": 120, "planned": 118, "unplanned": 2, "kept": 0, "workers": 12,
        "travel_minutes": 431.5, "bound_minutes": 380.2, "seconds": 10.4}]})

    id: str
    day: date
    ran_at: datetime
    actor: str
    solver: str
    visits: int  # asked for by the plans that day
    planned: int  # on a route (kept ones included)
    unplanned: int
    kept: int  # released before this run: left as they were
    workers: int  # providers with shifts that day
    travel_minutes: float
    bound_minutes: float | None  # a lower bound on travel, when the planner gives one
    seconds: float


class RouteStopOut(BaseModel):
    """A planned visit: on a route (provider, seq, planned arrival and start) or unplanned (the
    reason); once released, the request that carries it and its status."""

    model_config = ConfigDict(extra="ignore")

    key: str  # "plan_id:YYYY-MM-DD"
    plan_id: str
    day: date
    resident_id: str
    resident_name: str | None = None
    district: str | None = None
    service: str
    provider_id: str | None  # who has it now: its request's provider once released, else the planned one
    provider_name: str | None = None
    planned_provider_id: str | None = None  # whose route the planner put it on
    seq: int | None
    planned_arrival: datetime | None
    planned_start: datetime | None
    window_start: datetime
    window_end: datetime
    duration_minutes: int
    travel_minutes: float | None
    request_id: str | None
    status: str | None  # the request's, once released
    en_route_at: datetime | None = None
    arrived_at: datetime | None = None
    completed_at: datetime | None = None
    late_flagged_at: datetime | None = None
    plan_missed_at: datetime | None = None
    released_at: datetime | None
    unplanned_reason: str | None


class RouteOut(BaseModel):
    """A provider's route of a day: its stops in order."""

    day: date
    provider_id: str
    provider_name: str | None = None
    stops: list[RouteStopOut]


class ProviderRoute(BaseModel):
    provider_id: str
    provider_name: str | None = None
    stops: list[RouteStopOut]


class DayRoutesOut(BaseModel):
    """Every route of a day, the visits nobody could take (with why), and the latest run."""

    day: date
    routes: list[ProviderRoute]
    unplanned: list[RouteStopOut]
    run: PlanRunOut | None
