"""The candidates of a request: providers from the database, turned into what matching scores."""

from __future__ import annotations

from datetime import datetime

from ..domain.matching import Candidate, Job, Location, Upcoming
from ..domain.presence import reachable
from ..domain.requests import ServiceRequest, Status
from ..domain.routes import upcoming
from ..domain.workload import ActiveJob, workload
from ..store.providers import ActiveJobRow, ProviderState
from .context import Dispatch
from .ports import Tx


def active_job(ctx: Dispatch, row: ActiveJobRow) -> ActiveJob:
    """A held request as the workload sees it."""
    return ActiveJob(
        request_id=row.request_id, status=Status(row.status), priority=row.priority,
        location=Location(row.lat, row.lon) if row.lat is not None and row.lon is not None else None,
        assigned_at=row.assigned_at, eta_minutes=row.eta_minutes, arrived_at=row.arrived_at,
        service_time=ctx.policy.for_service(row.service).expected_service, held=row.held,
    )


def candidate(
    ctx: Dispatch, state: ProviderState, priority: int, now: datetime, request_id: str | None = None
) -> Candidate:
    """A provider with its load, as matching sees it for a job of `priority` (the offer of
    `request_id` itself, if pending, is not counted as work ahead of it)."""
    row = state.row
    # Its route's planned visits not yet started are no work in hand: matching keeps them in
    # their windows instead (Candidate.route, in planned order).
    route = sorted((j for j in state.jobs if j.on_route and j.request_id != request_id),
                   key=lambda j: (j.planned_start or j.window_start or now, j.request_id))
    jobs = [active_job(ctx, j) for j in state.jobs
            if not j.on_route and (j.held or j.request_id != request_id)]
    load = workload(jobs, now, priority)
    left = (state.shift_ends_at - now).total_seconds() / 60 if state.shift_ends_at else None
    return Candidate(
        provider_id=row["id"], name=row["name"], services=frozenset(row["services"]),
        location=Location(row["lat"], row["lon"]), capacity=row["capacity"], on_shift=row["on_shift"],
        active=sum(j.held and not j.on_route for j in state.jobs), pending_offers=state.pending_offers,
        visits_with_resident=state.visits_with_resident, recent_assignments=state.recent_assignments,
        busy_minutes=load.busy_minutes, serving_minutes=load.serving_minutes, free_location=load.free_location,
        preemptible=load.preemptible, minutes_left_on_shift=left,
        reachable=reachable(row.get("last_seen_at"), now, ctx.presence_timeout),
        route=tuple(_upcoming(ctx, j, now) for j in route),
    )


def _upcoming(ctx: Dispatch, row: ActiveJobRow, now: datetime) -> Upcoming:
    """A planned visit on the route, as matching sees it (its window, its planned length)."""
    minutes = row.planned_minutes or ctx.policy.for_service(row.service).expected_service.total_seconds() / 60
    location = Location(row.lat, row.lon) if row.lat is not None and row.lon is not None else None
    start = row.window_start or now
    return upcoming(row.request_id, location, start, row.window_end or start, minutes, now,
                    label=f"{row.service} for {row.resident_id}" if row.resident_id else row.service)


def job_of(conn: Tx, ctx: Dispatch, request: ServiceRequest, excluded: frozenset[str]) -> Job:
    """What the request needs, for matching."""
    policy = ctx.policy.for_service(request.service)
    return Job(
        service=request.service.value, priority=request.priority, urgency=request.urgency,
        location=request.location or ctx.repos.residents.home(conn, request.resident_id)[0], excluded=excluded,
        service_minutes=policy.expected_service.total_seconds() / 60, may_preempt=policy.may_preempt,
    )


def candidates(
    conn: Tx, ctx: Dispatch, request: ServiceRequest, now: datetime, *, on_shift_only: bool = True,
    every_service: bool = False, provider_ids: list[str] | None = None,
) -> list[Candidate]:
    """Providers for the request (on shift and of its service, unless told otherwise)."""
    states = ctx.repos.providers.states(
        conn, None if every_service else request.service.value, request.resident_id, now - ctx.fairness_window, now,
        on_shift_only=on_shift_only, provider_ids=provider_ids,
    )
    return [candidate(ctx, s, request.priority, now, request.id) for s in states]
