"""Routes in the product: a day's plan as stored stops, a planned visit released as a request into
the one lifecycle, a planned visit late or missed, and a provider's route as matching sees it.

Pure: the use cases (usecases/plans.py) read and write; this decides."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .matching import Location, Upcoming
from .plans import CarePlan, DayPlan, PlannedVisit
from .policy import ServicePolicy
from .requests import Change, ServiceRequest, Source, Status, TimelineEntry, assign, open_request

UNPLANNED_NO_WORKER = "nobody on shift that day can do it"
WINDOW_OVER = "its window was over when it was due to be released"


@dataclass(frozen=True)
class RouteStop:
    """A stored planned visit (`dispatch.planned_visits`): on a provider's route (provider_id,
    seq, planned times), or unplanned with the reason; once released, the request carrying it."""

    key: str
    plan_id: str
    day: date
    resident_id: str
    service: str
    earliest: datetime
    latest: datetime
    duration: int
    provider_id: str | None = None
    seq: int | None = None
    planned_arrival: datetime | None = None
    planned_start: datetime | None = None
    travel_minutes: float | None = None
    request_id: str | None = None
    released_at: datetime | None = None
    unplanned_reason: str | None = None
    district: str | None = None
    lat: float | None = None  # the resident's home, when planned
    lon: float | None = None

    @property
    def released(self) -> bool:
        return self.released_at is not None


def plan_fields(plan: CarePlan) -> dict[str, object]:
    """A care plan's editable fields, flat (what creating one takes; the store's columns)."""
    r = plan.recurrence
    return {
        "service": plan.service, "repeat": r.repeat.value, "starts_on": r.starts_on, "ends_on": r.ends_on,
        "weekdays": sorted(r.weekdays), "every_weeks": r.every_weeks, "window_start": plan.window_start,
        "window_end": plan.window_end, "duration_minutes": plan.duration_minutes, "skills": sorted(plan.skills),
        "preferred_provider_id": plan.preferred_provider_id, "note": plan.note,
    }


def stops_of(plan: DayPlan, visits: Iterable[PlannedVisit]) -> list[RouteStop]:
    """The planner's answer as rows: every visit asked for, on a route or unplanned with why."""
    out: list[RouteStop] = []
    placed: set[str] = set()
    for provider_id, stops in plan.routes.items():
        for seq, stop in enumerate(stops):
            v = stop.visit
            placed.add(v.key)
            out.append(replace(
                unplanned_stop(v, None), provider_id=provider_id, seq=seq, planned_arrival=stop.arrive,
                planned_start=stop.start, travel_minutes=round(stop.travel_minutes, 2),
            ))
    out += [unplanned_stop(v, plan.unplanned.get(v.key, UNPLANNED_NO_WORKER)) for v in visits if v.key not in placed]
    return out


def unplanned_stop(v: PlannedVisit, reason: str | None) -> RouteStop:
    """A visit as a stored row on no route (yet), with why."""
    return RouteStop(
        key=v.key, plan_id=v.plan_id, day=v.day, resident_id=v.resident_id, service=v.service,
        earliest=v.earliest, latest=v.latest, duration=v.duration_minutes, unplanned_reason=reason,
        district=v.district, lat=_lat(v), lon=_lon(v),
    )


def _lat(visit: PlannedVisit) -> float | None:
    return visit.location.lat if visit.location else None


def _lon(visit: PlannedVisit) -> float | None:
    return visit.location.lon if visit.location else None


def due_for_release(stop: RouteStop, now: datetime, lead: timedelta) -> bool:
    """A routed visit becomes a request `lead` before its window opens."""
    return not stop.released and stop.provider_id is not None and stop.earliest - lead <= now


def released_request(
    request_id: str, stop: RouteStop, policy: ServicePolicy, now: datetime,
    location: Location | None, district: str | None,
) -> tuple[ServiceRequest, TimelineEntry, Change]:
    """A routed visit as a request: created and assigned at once to its route's provider.

    Its SLA: assigned at release (the assignment target is now, met), arrival by the window's
    end. The ETA is until the planned arrival, so a route already planned to arrive after the
    window is flagged late by the timer at once."""
    if stop.provider_id is None:
        raise ValueError(f"planned visit {stop.key} is on no route")
    request, created = open_request(
        request_id, stop.resident_id, stop.service, policy, now, f"plan:{stop.plan_id}", source=Source.PLAN,
        location=location, district=district, plan_id=stop.plan_id, visit=stop.key,
        window_start=stop.earliest.isoformat(), window_end=stop.latest.isoformat(),
    )
    request = replace(
        request, assign_due_at=now, assign_warn_at=now, sla_due_at=stop.latest, plan_visit_key=stop.key,
        window_start=stop.earliest, window_end=stop.latest, planned_start=stop.planned_start,
        planned_minutes=stop.duration, route_seq=stop.seq,
    )
    arrival = stop.planned_arrival or stop.planned_start or stop.earliest
    eta = max(1, math.ceil((arrival - now).total_seconds() / 60))
    change = assign(
        request, stop.provider_id, eta, now, "system", route_seq=stop.seq,
        planned_start=stop.planned_start.isoformat() if stop.planned_start else None,
    )
    return request, created, change


def local_clock(at: datetime, zone: ZoneInfo) -> str:
    """A time as the centre's dispatchers read it: "12:30"."""
    return at.astimezone(zone).strftime("%H:%M")


def missed(request: ServiceRequest, now: datetime) -> bool:
    """A planned visit whose window is over and whose provider has not even set off."""
    return (request.planned and request.window_end is not None and request.status is Status.ASSIGNED
            and now >= request.window_end)


def missed_reason(request: ServiceRequest, zone: ZoneInfo, provider: str | None) -> str:
    who = provider or request.provider_id or "its provider"
    end = local_clock(request.window_end or request.sla_due_at, zone)
    return f"planned visit missed: window ended {end} and {who} had not set off"


def late_reason(request: ServiceRequest, now: datetime, zone: ZoneInfo) -> str:
    """Why a planned visit arrives late: its window is over, or its planned arrival is after it."""
    end = request.window_end or request.sla_due_at
    if now >= end:
        return f"planned visit late: window ended {local_clock(end, zone)}"
    expected = (request.assigned_at + timedelta(minutes=request.eta_minutes)
                if request.assigned_at and request.eta_minutes is not None else None)
    when = f" (expected {local_clock(expected, zone)})" if expected else ""
    return f"planned visit late: window ends {local_clock(end, zone)}{when}"


def upcoming(
    request_id: str, location: Location | None, window_start: datetime, window_end: datetime,
    planned_minutes: float, now: datetime, label: str = "",
) -> Upcoming:
    """A planned visit not yet started, as matching sees it on its provider's route."""
    return Upcoming(
        request_id=request_id, location=location,
        earliest_minutes=(window_start - now).total_seconds() / 60,
        latest_minutes=(window_end - now).total_seconds() / 60,
        service_minutes=float(planned_minutes), label=label,
    )


def not_started(request: ServiceRequest) -> bool:
    """A planned visit on its provider's route that the provider has not set off for: it holds no
    capacity (it is the route, not work in hand) until it is started."""
    return request.planned and request.status is Status.ASSIGNED


def keep_on_replan(stop: RouteStop) -> bool:
    """Replanning a day keeps the visits already released (their requests run the lifecycle)."""
    return stop.released


def route_order(stops: Sequence[RouteStop]) -> list[RouteStop]:
    """A provider's stops in route order."""
    return sorted(stops, key=lambda s: (s.seq if s.seq is not None else 1 << 30, s.earliest, s.key))



@dataclass(frozen=True)
class PlanRun:
    """One planning run of a day (`dispatch.plan_runs`)."""

    id: str
    day: date
    ran_at: datetime
    actor: str
    solver: str
    visits: int  # asked for that day
    planned: int  # on a route (kept ones included)
    unplanned: int
    kept: int  # already released: left as they were
    workers: int
    travel_minutes: float
    bound_minutes: float | None
    seconds: float
