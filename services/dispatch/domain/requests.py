"""The service request lifecycle: states, guarded transitions, timeline entries, coalescing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from homecare.contract.models import Service
from homecare.errors import Conflict, Forbidden

from .matching import Location
from .policy import ServicePolicy

MAX_URGENCY = 5


class Status(StrEnum):
    OPEN = "open"  # waiting for a provider
    OFFERED = "offered"  # one provider has a pending offer
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"  # needs a dispatcher


class Source(StrEnum):
    BUTTON = "button"
    PHONE = "phone"
    ALERT = "alert"
    PLAN = "plan"  # a care plan's visit, released onto its provider's route (domain/plans.py)


TERMINAL = frozenset({Status.COMPLETED, Status.CANCELLED})
ACTIVE = frozenset(Status) - TERMINAL
WITH_PROVIDER = frozenset({Status.ASSIGNED, Status.EN_ROUTE, Status.ARRIVED})
WAITING = frozenset({Status.OPEN, Status.OFFERED})

# Offered -> offered is an offer to the next provider, assigned -> assigned a reassignment,
# assigned / en route -> open a job handed back (its provider was pre-empted by an emergency),
# escalated -> escalated an offer made while the dispatchers are told (the request stays flagged
# escalated until it is assigned); everything not listed is refused.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset({Status.OFFERED, Status.ASSIGNED, Status.CANCELLED, Status.ESCALATED}),
    Status.OFFERED: frozenset(
        {Status.OPEN, Status.OFFERED, Status.ASSIGNED, Status.CANCELLED, Status.ESCALATED}
    ),
    Status.ASSIGNED: frozenset(
        {Status.OPEN, Status.ASSIGNED, Status.EN_ROUTE, Status.ARRIVED, Status.COMPLETED, Status.CANCELLED}
    ),
    Status.EN_ROUTE: frozenset(
        {Status.OPEN, Status.ASSIGNED, Status.ARRIVED, Status.COMPLETED, Status.CANCELLED}
    ),
    Status.ARRIVED: frozenset({Status.COMPLETED}),
    Status.ESCALATED: frozenset({Status.ESCALATED, Status.ASSIGNED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
}

# The timestamp column each state stamps when entered.
STAMPS: dict[Status, str] = {
    Status.OFFERED: "offered_at",
    Status.ASSIGNED: "assigned_at",
    Status.EN_ROUTE: "en_route_at",
    Status.ARRIVED: "arrived_at",
    Status.COMPLETED: "completed_at",
    Status.CANCELLED: "cancelled_at",
    Status.ESCALATED: "escalated_at",
}


class TransitionRefused(Conflict):
    """A transition the lifecycle forbids (completing a cancelled request): a Conflict."""


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a request's history."""

    at: datetime
    actor: str  # "device:btn-1", "dispatcher:ann", "provider:p-1", "system"
    kind: str  # "created", "pressed_again", "offer.made", "assigned", ...
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceRequest:
    """A resident's request for a service, as the lifecycle sees it."""

    id: str
    resident_id: str
    service: Service
    priority: int
    status: Status
    created_at: datetime
    assign_due_at: datetime
    sla_due_at: datetime
    urgency: int = 1
    provider_id: str | None = None
    device_id: str | None = None
    source: Source = Source.BUTTON
    eta_minutes: int | None = None
    assigned_at: datetime | None = None
    assign_warn_at: datetime | None = None  # rung 1 of the ladder: at risk from then on
    location: Location | None = None  # the resident's home
    district: str | None = None
    handed_back: int = 0  # times a provider gave it back to the queue
    # A planned visit (source plan): its identity, window (UTC), planned start and length, place on the route.
    plan_visit_key: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    planned_start: datetime | None = None
    planned_minutes: int | None = None
    route_seq: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def planned(self) -> bool:
        """A care plan's visit (it has a window on its provider's route)."""
        return self.source is Source.PLAN

    def can(self, to: Status) -> bool:
        """Whether the lifecycle allows moving to `to` now."""
        return to in TRANSITIONS[self.status]


@dataclass(frozen=True)
class Change:
    """The outcome of a transition: the request after it, the state it left, the history line."""

    request: ServiceRequest
    from_status: Status
    entry: TimelineEntry

    @property
    def stamp(self) -> str | None:
        """The timestamp column to set, when the status changed."""
        if self.request.status == self.from_status:
            return None
        return STAMPS.get(self.request.status)


def open_request(
    request_id: str,
    resident_id: str,
    service: Service | str,
    policy: ServicePolicy,
    at: datetime,
    actor: str,
    source: Source = Source.BUTTON,
    device_id: str | None = None,
    location: Location | None = None,
    district: str | None = None,
    **detail: Any,
) -> tuple[ServiceRequest, TimelineEntry]:
    """A new open request with its SLA clocks started, and its first timeline entry."""
    request = ServiceRequest(
        id=request_id,
        resident_id=resident_id,
        service=Service(service),
        priority=policy.priority,
        status=Status.OPEN,
        created_at=at,
        assign_due_at=at + policy.assign_within,
        sla_due_at=at + policy.arrive_within,
        device_id=device_id,
        source=source,
        assign_warn_at=at + policy.assign_within - policy.warn_before_assign_due,
        location=location,
        district=district,
    )
    entry = TimelineEntry(
        at, actor, "created", {"source": source.value, "service": request.service.value, **detail}
    )
    return request, entry


def transition(
    request: ServiceRequest,
    to: Status,
    at: datetime,
    actor: str,
    kind: str | None = None,
    **detail: Any,
) -> Change:
    """Move a request to `to`, or raise TransitionRefused saying why not."""
    if not request.can(to):
        raise TransitionRefused(
            f"request {request.id} is {request.status.value}; it cannot become {to.value}"
        )
    changes: dict[str, Any] = {"status": to}
    if to in (Status.OPEN, Status.ESCALATED, Status.CANCELLED) and request.status in WITH_PROVIDER:
        changes["provider_id"] = None
    updated = replace(request, **changes)
    entry = TimelineEntry(at, actor, kind or to.value, {"from": request.status.value, **detail})
    return Change(updated, request.status, entry)


def assign(
    request: ServiceRequest, provider_id: str, eta_minutes: int, at: datetime, actor: str, **detail: Any
) -> Change:
    """Give the request to a provider (an accepted offer, or a dispatcher's choice)."""
    if request.status in WITH_PROVIDER and request.provider_id == provider_id:
        raise TransitionRefused(f"request {request.id} is already assigned to {provider_id}")
    kind = "reassigned" if request.status in WITH_PROVIDER else "assigned"
    if request.provider_id:
        detail["previous_provider_id"] = request.provider_id
    change = transition(
        request, Status.ASSIGNED, at, actor, kind, provider_id=provider_id, eta_minutes=eta_minutes, **detail
    )
    updated = replace(change.request, provider_id=provider_id, eta_minutes=eta_minutes, assigned_at=at)
    return Change(updated, change.from_status, change.entry)


def hand_back(
    request: ServiceRequest, policy: ServicePolicy, at: datetime, actor: str, reason: str, **detail: Any
) -> Change:
    """A provider gives a job it has not started back to the queue (pre-empted by an emergency).

    The arrival target stays as it was, so the report shows the cost honestly; the assignment
    target starts again, so the request is not escalated for a delay it did not cause."""
    if request.status not in (Status.ASSIGNED, Status.EN_ROUTE):
        raise TransitionRefused(
            f"request {request.id} is {request.status.value}; only a job not started is handed back"
        )
    change = transition(
        request, Status.OPEN, at, actor, "handed_back", reason=reason, previous_provider_id=request.provider_id,
        **detail,
    )
    due = max(request.assign_due_at, at + policy.assign_within)
    updated = replace(
        change.request, eta_minutes=None, assigned_at=None, assign_due_at=due,
        assign_warn_at=due - policy.warn_before_assign_due, handed_back=request.handed_back + 1,
    )
    return Change(updated, change.from_status, change.entry)


def queue_key(request: ServiceRequest) -> tuple[int, int, datetime, str]:
    """Order in which waiting requests get providers: priority, then urgency, then age."""
    return (request.priority, -request.urgency, request.created_at, request.id)


def press_again(
    request: ServiceRequest, at: datetime, actor: str, kind: str = "pressed_again", **detail: Any
) -> Change:
    """A second press (or call, or alert) for a request still open: record it, raise its urgency."""
    if not request.active:
        raise TransitionRefused(f"request {request.id} is {request.status.value}; a press cannot join it")
    urgency = min(request.urgency + 1, MAX_URGENCY)
    entry = TimelineEntry(at, actor, kind, {"urgency": urgency, **detail})
    return Change(replace(request, urgency=urgency), request.status, entry)


def stuck_press(request: ServiceRequest, at: datetime, actor: str, undo: int, **detail: Any) -> Change:
    """The press at which the request's button was judged stuck (homecare/buttons.py): the urgency
    the stuck run's earlier presses added (`undo`) is taken back, and the timeline says so."""
    if not request.active:
        raise TransitionRefused(f"request {request.id} is {request.status.value}; a press cannot join it")
    urgency = max(1, request.urgency - undo)
    entry = TimelineEntry(at, actor, "button_stuck", {"urgency": urgency, "urgency_undone": request.urgency - urgency,
                                                      **detail})
    return Change(replace(request, urgency=urgency), request.status, entry)


def check_actor_is_provider(request: ServiceRequest, provider_id: str) -> None:
    """A provider may report progress only on a request assigned to it (HTTP 403)."""
    if request.provider_id != provider_id:
        raise Forbidden(f"request {request.id} is not assigned to provider {provider_id}")
