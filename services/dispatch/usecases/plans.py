"""Care plans and day planning: edit a resident's plans, plan a day's routes with the day planner,
release each planned visit as a request onto its provider's route a lead time before its window,
and raise the alarm for a planned visit late or missed. See README "Care plans", "Day planning"."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from homecare.errors import Invalid, NotFound

from .. import metrics
from ..domain.matching import Location
from ..domain.plans import (
    CarePlan,
    DayPlan,
    Home,
    Pause,
    PlanError,
    PlannedVisit,
    Recurrence,
    Repeat,
    Worker,
    visits_on,
)
from ..domain.requests import TimelineEntry, hand_back
from ..domain.routes import (
    WINDOW_OVER,
    PlanRun,
    RouteStop,
    late_reason,
    missed,
    missed_reason,
    plan_fields,
    released_request,
    stops_of,
    unplanned_stop,
)
from ..domain.workload import workload
from ..store import new_id
from . import announce
from .context import Dispatch
from .offering import escalate
from .pool import active_job
from .ports import Transactions, Tx

log = logging.getLogger(__name__)

PLAN_FIELDS = frozenset({
    "service", "repeat", "starts_on", "ends_on", "weekdays", "every_weeks", "window_start", "window_end",
    "duration_minutes", "skills", "preferred_provider_id", "note",
})
REQUIRED = frozenset({"service", "repeat", "starts_on", "window_start", "window_end", "duration_minutes"})
CHANGED = "its care plan changed after planning: plan the day again"
ENDED = "its care plan was ended"
WINDOW_PASSED = "its window was over before the day was planned"
PLAN_ATTEMPTS = 3  # solves of a day outside its lock before one under it (plan_day)


class DayPlanner(Protocol):
    """The day planner's signature (domain/planner.py: `plan_day`)."""

    def __call__(
        self, day: date, visits: Sequence[PlannedVisit], workers: Sequence[Worker], *, speed_kmh: float = ...,
        time_limit_s: float = ..., buffer_minutes: float = ..., reserve_share: float = ...,
    ) -> DayPlan: ...


def default_planner() -> DayPlanner:
    """OR-Tools' day planner (domain/planner.py), imported when first needed: loading OR-Tools
    costs a second, which nothing but a planning run should wait for."""
    from ..domain.planner import plan_day

    return plan_day


# -- care plans -------------------------------------------------------------------------------

def _build(ctx: Dispatch, conn: Tx, plan_id: str, resident_id: str, f: dict[str, Any], active: bool,
           pauses: tuple[Pause, ...] = ()) -> CarePlan:
    """A care plan from its fields, checked by the domain (PlanError -> Invalid, 422)."""
    try:
        plan = CarePlan(
            id=plan_id, resident_id=resident_id, service=f["service"],
            recurrence=Recurrence(
                repeat=Repeat(f["repeat"]), starts_on=f["starts_on"], ends_on=f.get("ends_on"),
                weekdays=frozenset(f.get("weekdays") or ()), every_weeks=f.get("every_weeks") or 1,
            ),
            window_start=f["window_start"], window_end=f["window_end"], duration_minutes=f["duration_minutes"],
            skills=frozenset(f.get("skills") or ()), preferred_provider_id=f.get("preferred_provider_id"),
            note=f.get("note"), active=active, pauses=pauses,
        )
    except PlanError as exc:
        raise Invalid(str(exc)) from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise Invalid(f"care plan: {exc}") from exc
    if plan.preferred_provider_id is not None:
        try:
            provider = ctx.repos.providers.get(conn, plan.preferred_provider_id)
        except NotFound as exc:
            raise Invalid(f"preferred_provider_id: provider {plan.preferred_provider_id} not found") from exc
        if plan.service not in provider["services"]:
            raise Invalid(f"preferred_provider_id: provider {plan.preferred_provider_id} does not provide"
                          f" {plan.service}")
    return plan


def create_plan(conn: Tx, ctx: Dispatch, resident_id: str, fields: dict[str, Any], actor: str) -> CarePlan:
    """A new care plan for a resident (NotFound for an unknown resident, Invalid with the reason
    for a plan that cannot be kept). It is routed from the next planning run of its days on."""
    ctx.repos.residents.check(conn, resident_id)
    plan = _build(ctx, conn, new_id("cp"), resident_id, fields, True)
    ctx.repos.plans.add(conn, plan)
    log.info("care plan %s for %s created by %s", plan.id, resident_id, actor)
    return plan


def update_plan(conn: Tx, ctx: Dispatch, plan_id: str, changes: dict[str, Any], actor: str) -> CarePlan:
    """Change some fields of a plan. Its visits already routed and not yet released leave their
    routes (unplanned, "plan the day again") from today on: a route must not carry a visit the
    plan no longer asks for; released ones run on as they are."""
    unknown = set(changes) - PLAN_FIELDS
    if unknown:
        raise Invalid(f"care plan: unknown field {', '.join(sorted(unknown))}")
    emptied = sorted(k for k in REQUIRED if k in changes and changes[k] is None)
    if emptied:
        raise Invalid(f"{emptied[0]}: a care plan must have one; it cannot be removed")
    current = ctx.repos.plans.get(conn, plan_id, lock=True)
    if not current.active:
        raise Invalid(f"care plan {plan_id} has ended; create a new one")
    plan = _build(ctx, conn, plan_id, current.resident_id, {**plan_fields(current), **changes}, True,
                  current.pauses)
    ctx.repos.plans.update(conn, plan)
    ctx.repos.plans.unroute(conn, plan_id, today(ctx), CHANGED)
    log.info("care plan %s changed by %s", plan_id, actor)
    return plan


def end_plan(conn: Tx, ctx: Dispatch, plan_id: str, actor: str) -> CarePlan:
    """End a plan: no more visits; those routed and not yet released leave their routes. Kept for
    the record (the resident's page lists it as ended)."""
    current = ctx.repos.plans.get(conn, plan_id, lock=True)
    plan = replace(current, active=False)
    ctx.repos.plans.update(conn, plan)
    ctx.repos.plans.unroute(conn, plan_id, today(ctx), ENDED)
    log.info("care plan %s ended by %s", plan_id, actor)
    return plan


def pause_plan(conn: Tx, ctx: Dispatch, plan_id: str, from_day: date, to_day: date, reason: str, actor: str
               ) -> tuple[Pause, list[str]]:
    """Pause a plan on some days (the resident in hospital, away with family): no visit is planned
    on them, and its visits already routed on them leave their routes with the reason. Visits
    already released (their window opens within the release lead) keep going: their request ids
    are returned, for the dispatcher to cancel if they should not. Past pauses are dropped."""
    current = ctx.repos.plans.get(conn, plan_id, lock=True)
    if not current.active:
        raise Invalid(f"care plan {plan_id} has ended")
    now_day = today(ctx)
    if from_day < now_day:
        raise Invalid(f"from_day: must be today ({now_day.isoformat()}) or later")
    try:
        pause = Pause(id=new_id("pa"), from_day=from_day, to_day=to_day, reason=reason, actor=actor)
    except PlanError as exc:
        raise Invalid(str(exc)) from exc
    if any(p.from_day <= to_day and from_day <= p.to_day for p in current.pauses):
        raise Invalid("pause: overlaps a pause of this plan; resume that one first")
    kept = tuple(p for p in current.pauses if p.to_day >= now_day)
    try:
        plan = replace(current, pauses=tuple(sorted((*kept, pause), key=lambda p: p.from_day)))
    except PlanError as exc:  # too many pauses ahead
        raise Invalid(str(exc)) from exc
    ctx.repos.plans.update(conn, plan)
    ctx.repos.plans.unroute(conn, plan_id, from_day, pause.says, to_day)
    released = [s.request_id for s in ctx.repos.plans.of_plan(conn, plan_id, from_day, to_day)
                if s.released and s.request_id]
    log.info("care plan %s paused %s to %s by %s (%d visits released already)", plan_id, from_day, to_day,
             actor, len(released))
    return pause, released


def resume_plan(conn: Tx, ctx: Dispatch, plan_id: str, pause_id: str, actor: str) -> CarePlan:
    """End a pause: its days' visits not yet released wait for the next planning run of the day
    ("plan the day again"), as after any change of the plan."""
    current = ctx.repos.plans.get(conn, plan_id, lock=True)
    pause = next((p for p in current.pauses if p.id == pause_id), None)
    if pause is None:
        raise NotFound(f"pause {pause_id} of care plan {plan_id} not found")
    plan = replace(current, pauses=tuple(p for p in current.pauses if p.id != pause_id))
    ctx.repos.plans.update(conn, plan)
    ctx.repos.plans.unroute(conn, plan_id, max(pause.from_day, today(ctx)), CHANGED, pause.to_day)
    log.info("care plan %s resumed (pause %s) by %s", plan_id, pause_id, actor)
    return plan


def today(ctx: Dispatch) -> date:
    """The centre's date now."""
    return ctx.clock().astimezone(ctx.plan_zone).date()


def day_bounds(ctx: Dispatch, day: date) -> tuple[datetime, datetime]:
    """The day in the centre's time zone, as UTC instants [start, end)."""
    start = datetime.combine(day, datetime.min.time(), ctx.plan_zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), ctx.plan_zone)
    return start, end


# -- planning a day ---------------------------------------------------------------------------

def workers_of(conn: Tx, ctx: Dispatch, day: date, kept: Sequence[RouteStop] = ()) -> list[Worker]:
    """The providers planned to work that day: one worker per shift (shifts that overlap or touch
    are one), within the day, starting from where the provider was last reported. A split shift
    is so planned as its parts, and no visit lands in the break. A provider with no shift that day
    is not planned: its `on_shift` switch says nothing of tomorrow. When the day has begun, nobody
    starts before now; a provider with visits already released starts after the last of them,
    from its door, and one that holds requests (a press it took, a visit it is at) starts when it
    is expected to be done with them, from the last one's place."""
    start, end = day_bounds(ctx, day)
    now = ctx.clock()
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for s in sorted(ctx.repos.shifts.overlapping(conn, start, end), key=lambda s: s["starts_at"]):
        a, b = max(s["starts_at"], start), min(s["ends_at"], end)
        parts = spans.setdefault(s["provider_id"], [])
        if parts and a <= parts[-1][1]:
            parts[-1] = (parts[-1][0], max(b, parts[-1][1]))
        else:
            parts.append((a, b))
    busy_until: dict[str, tuple[datetime, Location | None]] = {}  # the end of its latest work, and where

    def later(provider_id: str, done: datetime, where: Location | None) -> None:
        if provider_id not in busy_until or busy_until[provider_id][0] < done:
            busy_until[provider_id] = (done, where)

    for stop in kept:
        if stop.provider_id and stop.planned_start:
            later(stop.provider_id, stop.planned_start + timedelta(minutes=stop.duration),
                  ctx.repos.residents.home(conn, stop.resident_id)[0])
    if start <= now < end:
        for pid, (done, place) in held_work(conn, ctx, list(spans), now).items():
            later(pid, done, place)
    workers = []
    for row in ctx.repos.providers.roster(conn):
        base = Location(row["lat"], row["lon"])
        done, place = busy_until.get(row["id"], (now, None))
        for shift_start, shift_end in spans.get(row["id"], ()):
            where = base
            if shift_start < done:  # a part under way: after its work, from where that is
                shift_start, where = max(shift_start, done), place or base
            if shift_end <= shift_start:
                continue
            workers.append(Worker(
                provider_id=row["id"], start=where, shift_start=shift_start, shift_end=shift_end,
                services=frozenset(row["services"]), skills=frozenset(row.get("skills") or ()),
                districts=frozenset(row.get("districts") or ()),
            ))
    return workers


def held_work(conn: Tx, ctx: Dispatch, provider_ids: list[str], now: datetime
              ) -> dict[str, tuple[datetime, Location | None]]:
    """When each provider is expected to be done with the requests it holds now, and where:
    what the day's routes must start after. Planned visits not yet set off for are its route,
    which the planning run itself places; offers not yet taken are not its work."""
    if not provider_ids:
        return {}
    busy = {}
    for state in ctx.repos.providers.states(conn, None, "", now - ctx.fairness_window, now,
                                            on_shift_only=False, provider_ids=provider_ids):
        jobs = [active_job(ctx, j) for j in state.jobs if j.held and not j.on_route]
        load = workload(jobs, now, priority=0)
        if load.busy_minutes > 0:
            busy[state.row["id"]] = (now + timedelta(minutes=load.busy_minutes), load.free_location)
    return busy


@dataclass(frozen=True)
class _Day:
    """What a planning run reads of a day before it solves: the plans and the released visits
    (`inputs`: what must not change before its routes are written), and what the planner gets."""

    now: datetime
    inputs: tuple[tuple[CarePlan, ...], frozenset[RouteStop]]
    visits: list[PlannedVisit]
    kept: list[RouteStop]
    fresh: list[PlannedVisit]  # not released yet
    paused: dict[str, str]  # of those, the keys of visits on a pause of their plan: why
    open_: list[PlannedVisit]  # of those, not paused, whose window is not over
    workers: list[Worker]


def _read_inputs(conn: Tx, ctx: Dispatch, day: date) -> tuple[tuple[CarePlan, ...], frozenset[RouteStop]]:
    return (tuple(ctx.repos.plans.on_day(conn, day)),
            frozenset(s for s in ctx.repos.plans.stops(conn, day) if s.released))


def _read_day(conn: Tx, ctx: Dispatch, day: date) -> _Day:
    now = ctx.clock()
    inputs = _read_inputs(conn, ctx, day)
    plans, kept = list(inputs[0]), sorted(inputs[1], key=lambda s: s.key)
    homes = {rid: Home(*ctx.repos.residents.home(conn, rid)) for rid in sorted({p.resident_id for p in plans})}
    visits = visits_on(plans, day, ctx.plan_zone, homes)
    kept_keys = {s.key for s in kept}
    fresh = [v for v in visits if v.key not in kept_keys]
    pauses = {p.id: p.paused_on(day) for p in plans}
    paused = {v.key: pause.says for v in fresh if (pause := pauses.get(v.plan_id)) is not None}
    return _Day(now=now, inputs=inputs, visits=visits, kept=kept, fresh=fresh, paused=paused,
                open_=[v for v in fresh if v.latest > now and v.key not in paused],
                workers=workers_of(conn, ctx, day, kept))


def _solve(ctx: Dispatch, day: date, read: _Day, planner: DayPlanner | None) -> DayPlan:
    return (planner or default_planner())(
        day, read.open_, read.workers, speed_kmh=ctx.weights.speed_kmh, time_limit_s=ctx.plan_time_limit_s,
        buffer_minutes=ctx.plan_buffer_minutes, reserve_share=ctx.plan_reserve_share,
    )


def plan_day(
    tx: Transactions, ctx: Dispatch, day: date, actor: str, planner: DayPlanner | None = None,
) -> PlanRun:
    """Plan (or replan) a day: every visit the active plans ask for that day is routed by the day
    planner over the providers working that day, or left unplanned with the reason. Visits already
    released keep their request and place; the rest is planned afresh. Recorded as a run."""
    run = _plan(tx, ctx, day, actor, planner, once=False)
    assert run is not None  # only a run asked to plan a day once gives way to another
    return run


def _plan(
    tx: Transactions, ctx: Dispatch, day: date, actor: str, planner: DayPlanner | None, once: bool,
) -> PlanRun | None:
    """`plan_day`; `once`: only if the day has no run yet (None if it has).

    The solver runs outside any transaction (its seconds would hold a connection, a transaction
    and the day's lock): the day is read, solved, then written under the day's lock if nothing
    it was planned from changed meanwhile (a visit released, a plan edited); else it is read and
    solved again. After `PLAN_ATTEMPTS` such tries it is solved under the lock, which releases
    skip meanwhile (`release`), so a day whose visits keep being released is still planned."""
    began = time.monotonic()

    def given_way(conn: Tx) -> bool:
        """Takes the day's lock; whether a run asked to plan once finds the day planned already."""
        ctx.repos.plans.lock_day(conn, day)
        return once and bool(ctx.repos.plans.runs(conn, day, 1))

    for _ in range(PLAN_ATTEMPTS - 1):
        with tx.begin() as conn:
            read = _read_day(conn, ctx, day)
        plan = _solve(ctx, day, read, planner)
        with tx.begin() as conn:
            if given_way(conn):
                return None
            if _read_inputs(conn, ctx, day) == read.inputs:
                metrics.PLAN_SOLVES.labels("written").inc()
                return _write(conn, ctx, day, actor, read, plan, began)
        metrics.PLAN_SOLVES.labels("stale").inc()
        log.info("day %s changed while it was planned (a visit released or a plan edited): planning it again", day)
    with tx.begin() as conn:
        if given_way(conn):
            return None
        read = _read_day(conn, ctx, day)
        metrics.PLAN_SOLVES.labels("under_lock").inc()
        return _write(conn, ctx, day, actor, read, _solve(ctx, day, read, planner), began)


def _write(conn: Tx, ctx: Dispatch, day: date, actor: str, read: _Day, plan: DayPlan, began: float) -> PlanRun:
    """The day's routes become the plan's (released visits as they are), and the run is recorded."""
    # A provider's new stops follow its released ones (it starts after them), so its route's
    # places stay in order.
    after = {s.provider_id: s.seq + 1 for s in sorted(read.kept, key=lambda s: s.seq or 0)
             if s.provider_id is not None and s.seq is not None}
    routed = [replace(s, seq=s.seq + after.get(s.provider_id, 0)) if s.seq is not None and s.provider_id else s
              for s in stops_of(plan, read.open_)]
    stops = routed + [unplanned_stop(v, read.paused.get(v.key, WINDOW_PASSED)) for v in read.fresh
                      if v.latest <= read.now or v.key in read.paused]
    ctx.repos.plans.replace_day(conn, day, stops)
    on_routes = sum(1 for s in stops if s.provider_id is not None)
    run = PlanRun(
        id=new_id("pr"), day=day, ran_at=read.now, actor=actor, solver=plan.solver or "unknown",
        visits=len(read.visits), planned=on_routes + len(read.kept), unplanned=len(stops) - on_routes,
        kept=len(read.kept),
        workers=len({w.provider_id for w in read.workers}),  # providers: a split shift is two workers
        travel_minutes=round(plan.travel_minutes, 2),
        bound_minutes=round(plan.bound_minutes, 2) if plan.bound_minutes is not None else None,
        seconds=round(time.monotonic() - began, 3),
    )
    ctx.repos.plans.add_run(conn, run)
    metrics.PLAN_SECONDS.observe(run.seconds)
    log.info("day %s planned by %s: %d visits, %d routed, %d unplanned, %d kept, %d workers, %.0f min travel",
             day, actor, run.visits, on_routes, run.unplanned, run.kept, run.workers, run.travel_minutes)
    return run


def evening_day(ctx: Dispatch, now: datetime) -> date | None:
    """The day the evening run plans now (tomorrow, from `plan_evening_hour` local on), or None."""
    if ctx.plan_evening_hour is None:
        return None
    local = now.astimezone(ctx.plan_zone)
    return local.date() + timedelta(days=1) if local.hour >= ctx.plan_evening_hour else None


def plan_evening(tx: Transactions, ctx: Dispatch, now: datetime, planner: DayPlanner | None = None
                 ) -> PlanRun | None:
    """The evening run (timer): plan tomorrow once, unless someone already has."""
    day = evening_day(ctx, now)
    if day is None:
        return None
    with tx.begin() as conn:
        if ctx.repos.plans.runs(conn, day, 1) or not ctx.repos.plans.on_day(conn, day):
            return None
    return _plan(tx, ctx, day, "system:evening", planner, once=True)


# -- planned visits in the request lifecycle --------------------------------------------------

def release(conn: Tx, ctx: Dispatch, stop: RouteStop, now: datetime) -> str | None:
    """A routed visit becomes a request assigned to its route's provider (timer; the visit is
    locked); the request's id. A visit whose resident has an active request of that service (a
    press) joins it: one provider goes, and the timeline says the plan asked for it too."""
    if not ctx.repos.plans.share_day(conn, stop.day):
        return None  # its day's routes are being written: the next tick releases it
    if stop.latest <= now:
        ctx.repos.plans.mark_released(conn, stop.key, None, now, WINDOW_OVER)
        log.warning("planned visit %s not released: %s", stop.key, WINDOW_OVER)
        return None
    location, district = ctx.repos.residents.home(conn, stop.resident_id)
    request, created, assigned = released_request(
        new_id("r"), stop, ctx.policy.for_service(stop.service), now, location, district,
    )
    if ctx.repos.requests.insert(conn, request, created, source_key=f"plan:{stop.key}"):
        request = ctx.repos.requests.save(conn, assigned)
        ctx.repos.requests.set_acknowledged(conn, request.id, now)  # the plan is its acknowledgement
        ctx.repos.plans.mark_released(conn, stop.key, request.id, now)
        metrics.REQUESTS_OPENED.labels(stop.service, "plan").inc()
        return request.id
    existing = (ctx.repos.requests.find_by_source_key(conn, f"plan:{stop.key}")
                or ctx.repos.requests.find_active(conn, stop.resident_id, stop.service, lock=True))
    if existing is None:
        return None  # gone meanwhile: the next tick releases it
    if existing.plan_visit_key != stop.key:
        ctx.repos.timeline.append(conn, existing.id, TimelineEntry(now, f"plan:{stop.plan_id}", "plan_joined", {
            "visit": stop.key, "window_start": stop.earliest.isoformat(), "window_end": stop.latest.isoformat(),
            "planned_provider_id": stop.provider_id,
        }))
    ctx.repos.plans.mark_released(conn, stop.key, existing.id, now, None)
    return existing.id


def flag_missed(conn: Tx, ctx: Dispatch, request_id: str, now: datetime) -> bool:
    """A planned visit whose window is over and whose provider has not set off is missed (timer;
    request locked): it is handed back and escalated, so the dispatchers are told (board, notice)
    and matching looks for anyone who can still go."""
    request = ctx.repos.requests.load(conn, request_id, lock=True)
    if not missed(request, now):
        return False
    ctx.repos.plans.mark_missed(conn, request.id, now)
    name = None
    if request.provider_id:
        try:
            name = ctx.repos.providers.get(conn, request.provider_id)["name"]
        except NotFound:
            name = None
    reason = missed_reason(request, ctx.plan_zone, name)
    request = ctx.repos.requests.save(conn, hand_back(
        request, ctx.policy.for_service(request.service), now, "system", reason,
    ))
    escalate(conn, ctx, request, reason, now)
    ctx.repos.requests.set_retry(conn, request.id, now)
    log.warning("request %s: %s", request.id, reason, extra={"request_id": request.id})
    return True


def late_alert(conn: Tx, ctx: Dispatch, request_id: str, now: datetime) -> str:
    """The reason a planned visit is late, and its notice to the dispatchers (called by
    progress.flag_if_late once the request is flagged)."""
    request = ctx.repos.requests.load(conn, request_id)
    reason = late_reason(request, now, ctx.plan_zone)
    announce.planned_late(conn, ctx, request, reason)
    return reason


# -- routes -----------------------------------------------------------------------------------

def route_of(conn: Tx, ctx: Dispatch, provider_id: str, day: date) -> list[RouteStop]:
    """A provider's planned visits of a day, in route order (NotFound for an unknown provider)."""
    ctx.repos.providers.get(conn, provider_id)
    return ctx.repos.plans.stops(conn, day, provider_id)


