"""HTTP routes of dispatch: parse, check the role, run one use case in one transaction."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import PlainTextResponse

from homecare.api.deps import AdminUser, CityUser, CurrentUser, DbConn, DispatcherUser, StaffUser, require
from homecare.api.types import Timestamp
from homecare.auth import Role, User, audit
from homecare.errors import Conflict, Forbidden, Invalid, NotFound
from homecare.residents import store as residents

from . import queries, route_queries
from .domain.matching import Location
from .domain.requests import Status
from .schemas import (
    AssignBody,
    CancelBody,
    CandidateOut,
    CarePlanIn,
    CarePlanOut,
    CarePlanPatch,
    Day,
    DayRoutesOut,
    DeclineBody,
    DeviceCommand,
    Heartbeat,
    LocationIn,
    NewProvider,
    NewRequest,
    OfferOut,
    PausedOut,
    PauseIn,
    PlanRunOut,
    ProviderDistricts,
    ProviderOut,
    RequestDetail,
    RequestOut,
    RouteOut,
    Shift,
    ShiftOut,
    ShiftPlan,
    SkillsIn,
)
from .store import new_id, offers, outbox, providers, shifts
from .store.transactions import ConnectionTransactions
from .usecases import device_commands as device_command_cases
from .usecases import intake, offering, plans, progress
from .usecases import providers as provider_cases
from .usecases.context import Dispatch

ProviderRole = Annotated[User, Depends(require(Role.PROVIDER))]


def actor_of(user: User) -> str:
    """How a user appears in a timeline."""
    if user.role is Role.PROVIDER:
        return f"provider:{user.provider_id}"
    return f"{user.role.value}:{user.username}"


def device_in_scope(conn: DbConn, device_id: str, user: User):
    """The device, NotFound for none or one of a resident of another district than the user's."""
    from gateway import interface as registry  # the gateway owns devices: NotFound for one it does not know

    return registry.get_device(conn, device_id, user.scope.districts)


def request_in_scope(conn: DbConn, request_id: str, user: User) -> None:
    """NotFound for no such request, or one of another district than the user's (a provider is
    held to its own by its role)."""
    scope = user.scope
    if not scope.everywhere:
        scope.check(queries.district_of(conn, request_id), f"request {request_id}")


def provider_in_scope(conn: DbConn, provider_id: str, user: User) -> dict:
    """The provider, NotFound for none or one serving none of the user's districts (one not yet
    placed serves every district)."""
    row = providers.get(conn, provider_id)
    scope = user.scope
    if scope.nowhere or (row["districts"] and not scope.allows_any(row["districts"])):
        raise NotFound(f"provider {provider_id} not found")
    return row


def ask_device_selftest(conn: DbConn, ctx: Dispatch, device_id: str, user: User) -> str:
    """A person asks a device to test itself (the API and the console's device-health page): the
    device must exist, be of the user's districts and be in service; the request is audited. The
    command's id."""
    device = device_in_scope(conn, device_id, user)
    if device.revoked_at is not None:
        raise Conflict(f"device {device_id} is decommissioned")
    command_id = device_command_cases.ask_selftest(conn, ctx, device_id, actor_of(user), ctx.clock())
    audit.record(conn, audit.actor_of(user), "device.selftest_requested", f"device:{device_id}",
                 {"command_id": command_id})
    return command_id


def own_provider(user: User) -> str | None:
    """The provider a provider-role user acts as; None for admins and dispatchers (any provider)."""
    if user.role is not Role.PROVIDER:
        return None
    if not user.provider_id:
        raise Forbidden(f"account {user.username} is not linked to a provider")
    return user.provider_id


def _statuses(status: str | None) -> list[str] | None:
    if not status:
        return None
    wanted = [s.strip() for s in status.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in {x.value for x in Status}]
    if unknown:
        raise Invalid(f"status: unknown value {', '.join(unknown)}; one of {', '.join(s.value for s in Status)}")
    return wanted


def build_router(ctx: Dispatch) -> APIRouter:
    """The dispatch routes, bound to the use-case configuration."""
    router = APIRouter(prefix="/api/v1", tags=["dispatch"])

    # -- commands to devices -----------------------------------------------------------------

    @router.get("/devices/{device_id}/commands", response_model=list[DeviceCommand], tags=["devices"])
    def device_commands(
        device_id: str, conn: DbConn, user: DispatcherUser,
        state: Literal["queued", "sent", "acknowledged", "expired"] | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[DeviceCommand]:
        """The device's commands, newest first; `expired` ones were never acknowledged in time."""
        device_in_scope(conn, device_id, user)
        return [DeviceCommand(**row) for row in outbox.for_device(conn, device_id, state, limit)]

    @router.post("/devices/{device_id}/selftest", response_model=DeviceCommand, status_code=202, tags=["devices"],
                 responses={404: {"description": "No such device"}, 409: {"description": "Decommissioned"}})
    def ask_selftest(device_id: str, conn: DbConn, user: DispatcherUser) -> DeviceCommand:
        """Ask the device to test itself now (mqtt-v1.1 `selftest.request`); the command waits for
        a device that is offline until its deadline. The device's `device.selftest` answer, with
        this command id, shows on the device-health page and clears or raises its faults."""
        command_id = ask_device_selftest(conn, ctx, device_id, user)
        [row] = [r for r in outbox.for_device(conn, device_id, None, 10) if r["command_id"] == command_id]
        return DeviceCommand(**row)

    # -- providers ---------------------------------------------------------------------------

    @router.post("/providers", response_model=ProviderOut, status_code=201)
    def register_provider(body: NewProvider, conn: DbConn, admin: AdminUser) -> ProviderOut:
        """Register a provider (a caregiver or a team)."""
        with conn.transaction():
            row = providers.insert(
                conn, new_id("p"), body.name, [s.value for s in body.services],
                Location(body.location.lat, body.location.lon), body.capacity, body.on_shift, body.districts,
            )
            if body.skills:
                row = providers.set_skills(conn, row["id"], body.skills)
            audit.record(conn, audit.actor_of(admin), "provider.created", f"provider:{row['id']}", {
                "name": body.name, "services": [s.value for s in body.services], "capacity": body.capacity,
                "districts": row["districts"]})
        return ProviderOut.of(row)

    @router.get("/providers", response_model=list[ProviderOut])
    def list_providers(conn: DbConn, user: DispatcherUser) -> list[ProviderOut]:
        """Every provider serving your districts (and those not yet placed, who serve every
        district) with its current load and presence (`reachable`, `unreachable`, `off`)."""
        return [ProviderOut.of(r) for r in queries.list_providers(conn, ctx, user.scope.districts)]

    @router.put("/providers/{provider_id}/districts", response_model=ProviderOut,
                responses={404: {"description": "No such provider"}})
    def place_provider(provider_id: str, body: ProviderDistricts, conn: DbConn, admin: AdminUser) -> ProviderOut:
        """Place a provider in the districts it serves (admins): matching offers it its districts'
        requests first, and others' only as cross-district help; `[]`: not placed, it serves every
        district."""
        with conn.transaction():
            row = provider_cases.place(conn, ctx, provider_id, body.districts)
            audit.record(conn, audit.actor_of(admin), "provider.placed", f"provider:{provider_id}",
                         {"districts": row["districts"]})
        return _provider_out(conn, provider_id)

    @router.post("/providers/{provider_id}/shift", response_model=ProviderOut)
    def set_shift(provider_id: str, body: Shift, conn: DbConn, user: ProviderRole) -> ProviderOut:
        """Start or end a shift: the provider itself, or an admin. Dispatchers only read providers
        (http-v1 Access)."""
        _own_or_staff(user, provider_id, "shift")
        with conn.transaction():
            provider_cases.set_shift(conn, ctx, provider_id, body.on_shift)
            _audit_admin(conn, user, "provider.shift_set", provider_id, {"on_shift": body.on_shift})
        return _provider_out(conn, provider_id)

    def _provider_out(conn, provider_id: str) -> ProviderOut:
        return ProviderOut.of(next(r for r in queries.list_providers(conn, ctx) if r["id"] == provider_id))

    def _audit_admin(conn, user: User, action: str, provider_id: str, detail: dict) -> None:
        # An admin's change to a provider is audited; a provider's own shift or place is its work.
        if user.role is Role.ADMIN:
            audit.record(conn, audit.actor_of(user), action, f"provider:{provider_id}", detail)

    def _own_or_staff(user: User, provider_id: str, what: str) -> None:
        mine = own_provider(user)
        if mine is not None and mine != provider_id:
            raise Forbidden(f"a provider may change only its own {what}")

    @router.post("/providers/{provider_id}/location", response_model=ProviderOut)
    def move(provider_id: str, body: LocationIn, conn: DbConn, user: ProviderRole) -> ProviderOut:
        """Where the provider is now (its app reports it as it moves): the provider itself, or an
        admin. Dispatchers only read providers (http-v1 Access)."""
        _own_or_staff(user, provider_id, "location")
        with conn.transaction():
            provider_cases.move(
                conn, ctx, provider_id, Location(body.lat, body.lon), by_provider=own_provider(user) is not None
            )
            _audit_admin(conn, user, "provider.moved", provider_id, {"lat": body.lat, "lon": body.lon})
        return _provider_out(conn, provider_id)

    @router.post("/providers/{provider_id}/heartbeat", response_model=ProviderOut)
    def heartbeat(provider_id: str, conn: DbConn, user: ProviderRole, body: Heartbeat | None = None) -> ProviderOut:
        """The provider's app is there (every ~30 s): a provider on shift not heard from for the
        presence time-out gets no offers and shows as unreachable. The provider itself only: an
        admin's call says nothing of the app."""
        mine = own_provider(user)
        if mine is None:
            raise Forbidden("only the provider's own app sends its heartbeat")
        if mine != provider_id:
            raise Forbidden("a provider may send only its own heartbeat")
        with conn.transaction():
            provider_cases.heartbeat(conn, ctx, provider_id)
        return _provider_out(conn, provider_id)

    @router.post("/providers/{provider_id}/shifts", response_model=ShiftOut, status_code=201)
    def plan_shift(provider_id: str, body: ShiftPlan, conn: DbConn, admin: AdminUser) -> dict:
        """Plan a shift: the provider goes on shift at its start and off at its end. Admins only:
        dispatchers only read providers (http-v1 Access)."""
        with conn.transaction():
            planned = provider_cases.plan_shift(conn, ctx, provider_id, body.starts_at, body.ends_at)
            _audit_admin(conn, admin, "provider.shift_planned", provider_id, {
                "starts_at": body.starts_at.isoformat(), "ends_at": body.ends_at.isoformat()})
            return planned

    @router.get("/providers/{provider_id}/shifts", response_model=list[ShiftOut])
    def list_shifts(provider_id: str, conn: DbConn, user: StaffUser) -> list[dict]:
        """A provider's shifts not yet over, earliest first."""
        _own_or_staff(user, provider_id, "shifts")
        provider_in_scope(conn, provider_id, user)
        return shifts.of_provider(conn, provider_id, since=ctx.clock())

    @router.put("/providers/{provider_id}/skills", response_model=ProviderOut, tags=["care plans"])
    def set_skills(provider_id: str, body: SkillsIn, conn: DbConn, admin: AdminUser) -> ProviderOut:
        """What the provider can do beyond its services ("bath_lift", "wheelchair"): the day planner
        gives a planned visit only to a provider with every skill its plan asks for. Admins, as
        for the rest of a provider's record."""
        with conn.transaction():
            providers.set_skills(conn, provider_id, body.skills)
            _audit_admin(conn, admin, "provider.skills_set", provider_id, {"skills": body.skills})
        return _provider_out(conn, provider_id)

    @router.get("/providers/{provider_id}/route", response_model=RouteOut, tags=["care plans"])
    def provider_route(provider_id: str, conn: DbConn, user: StaffUser, day: Day | None = None) -> dict:
        """A provider's route of a day (default: today, in the centre's time zone): its planned
        visits in order, with planned arrival and start, window, resident, and the request and its
        status once released. The provider itself, dispatchers and admins."""
        _own_or_staff(user, provider_id, "route")
        if own_provider(user) is None:  # a dispatcher: a provider of its districts, their visits only
            provider_in_scope(conn, provider_id, user)
        return route_queries.route_of(conn, provider_id, day or plans.today(ctx), user.scope.districts)

    # -- care plans and day planning -----------------------------------------------------------

    @router.get("/residents/{resident_id}/care-plans", response_model=list[CarePlanOut], tags=["care plans"])
    def list_care_plans(resident_id: str, conn: DbConn, user: DispatcherUser) -> list[dict]:
        """A resident's care plans, active ones first (ended ones are kept for the record)."""
        residents.get(conn, resident_id, user.scope.districts)  # 404 for another district's
        ctx.repos.residents.check(conn, resident_id)
        return route_queries.care_plans_of(conn, resident_id)

    @router.post("/residents/{resident_id}/care-plans", response_model=CarePlanOut, status_code=201,
                 tags=["care plans"], responses={422: {"description": "A plan that cannot be kept, with why"}})
    def create_care_plan(resident_id: str, body: CarePlanIn, conn: DbConn, user: DispatcherUser) -> dict:
        """Give a resident a recurring visit (daily, on weekdays, every n weeks, or once). It is
        routed from the next planning run of its days on."""
        residents.get(conn, resident_id, user.scope.districts)  # 404 for another district's
        with conn.transaction():
            plan = plans.create_plan(conn, ctx, resident_id, body.model_dump(), actor_of(user))
            audit.record(conn, audit.actor_of(user), "care_plan.created", f"care_plan:{plan.id}",
                         {"resident_id": resident_id, "service": plan.service})
        return route_queries.plan_dict(plan)

    @router.get("/care-plans/{plan_id}", response_model=CarePlanOut, tags=["care plans"])
    def get_care_plan(plan_id: str, conn: DbConn, user: DispatcherUser) -> dict:
        """One care plan (404 for one of another district's resident)."""
        return route_queries.care_plan(conn, plan_id, user.scope.districts)

    @router.patch("/care-plans/{plan_id}", response_model=CarePlanOut, tags=["care plans"],
                  responses={422: {"description": "A plan that cannot be kept, with why"}})
    def change_care_plan(plan_id: str, body: CarePlanPatch, conn: DbConn, user: DispatcherUser) -> dict:
        """Change fields of a plan. Its visits already routed and not yet released leave their
        routes (unplanned: "plan the day again"); released ones go on as they are."""
        changes = body.model_dump(exclude_unset=True)
        route_queries.care_plan(conn, plan_id, user.scope.districts)  # 404 for another district's
        with conn.transaction():
            plan = plans.update_plan(conn, ctx, plan_id, changes, actor_of(user))
            audit.record(conn, audit.actor_of(user), "care_plan.changed", f"care_plan:{plan_id}",
                         {"fields": sorted(changes)})
        return route_queries.plan_dict(plan)

    @router.delete("/care-plans/{plan_id}", response_model=CarePlanOut, tags=["care plans"])
    def end_care_plan(plan_id: str, conn: DbConn, user: DispatcherUser) -> dict:
        """End a plan: no more visits (those routed and not yet released leave their routes). It is
        kept, inactive, for the record."""
        route_queries.care_plan(conn, plan_id, user.scope.districts)  # 404 for another district's
        with conn.transaction():
            plan = plans.end_plan(conn, ctx, plan_id, actor_of(user))
            audit.record(conn, audit.actor_of(user), "care_plan.ended", f"care_plan:{plan_id}", {})
        return route_queries.plan_dict(plan)

    @router.post("/care-plans/{plan_id}/pauses", response_model=PausedOut, status_code=201, tags=["care plans"],
                 responses={422: {"description": "Days that cannot be paused, with why"}})
    def pause_care_plan(plan_id: str, body: PauseIn, conn: DbConn, user: DispatcherUser) -> dict:
        """Pause a plan on some days (the resident in hospital, away with family): no visit is
        planned on them; visits already routed on them leave their routes, unplanned with the
        reason. Visits already released go on: `released_requests` lists them to cancel if need be."""
        route_queries.care_plan(conn, plan_id, user.scope.districts)  # 404 for another district's
        with conn.transaction():
            pause, released = plans.pause_plan(conn, ctx, plan_id, body.from_day, body.to_day, body.reason,
                                               actor_of(user))
            audit.record(conn, audit.actor_of(user), "care_plan.paused", f"care_plan:{plan_id}",
                         {"from_day": pause.from_day.isoformat(), "to_day": pause.to_day.isoformat()})
        return {**asdict(pause), "released_requests": released}

    @router.delete("/care-plans/{plan_id}/pauses/{pause_id}", response_model=CarePlanOut, tags=["care plans"])
    def resume_care_plan(plan_id: str, pause_id: str, conn: DbConn, user: DispatcherUser) -> dict:
        """End a pause: its days' visits are planned again by the next planning run of each day."""
        route_queries.care_plan(conn, plan_id, user.scope.districts)  # 404 for another district's
        with conn.transaction():
            plan = plans.resume_plan(conn, ctx, plan_id, pause_id, actor_of(user))
            audit.record(conn, audit.actor_of(user), "care_plan.resumed", f"care_plan:{plan_id}",
                         {"pause_id": pause_id})
        return route_queries.plan_dict(plan)

    @router.post("/plans/{day}", response_model=PlanRunOut, status_code=201, tags=["care plans"])
    def plan_day(day: date, conn: DbConn, user: CityUser) -> dict:
        """Plan (or replan) that day's routes now with the day planner (OR-Tools, within
        `HOMECARE_DISPATCH_PLAN_TIME_LIMIT_S`): every visit the active plans ask for, over the
        providers with shifts that day. Visits already released keep their place. The run.

        Providers serve several districts, so a day is planned for the whole city at once: the
        city bureau and admins may run it (403 for a district's dispatcher); the evening run plans
        tomorrow by itself."""
        today = plans.today(ctx)
        if not today <= day <= today + timedelta(days=366):
            raise Invalid(f"day: must be today ({today.isoformat()}) or within a year after it")
        run = plans.plan_day(ConnectionTransactions(conn), ctx, day, actor_of(user))
        return route_queries.run_dict(run)

    @router.get("/plans/{day}/routes", response_model=DayRoutesOut, tags=["care plans"])
    def day_routes(day: date, conn: DbConn, user: DispatcherUser) -> dict:
        """Every route of the day (provider, stops in order with planned arrival and start, window,
        resident, service, request id and status), the visits nobody could take with the reason,
        and the latest planning run; of your districts' residents."""
        return route_queries.routes_of_day(conn, day, user.scope.districts)

    # -- requests ----------------------------------------------------------------------------

    @router.get("/requests", response_model=list[RequestOut])
    def list_requests(
        conn: DbConn, user: DispatcherUser, status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict]:
        """Requests of your districts, newest first; `status` takes one value or several separated by commas."""
        return queries.list_requests(conn, _statuses(status), limit, user.scope.districts)

    @router.get("/requests/{request_id}", response_model=RequestDetail)
    def get_request(request_id: str, conn: DbConn, user: StaffUser) -> dict:
        """One request with its whole timeline; a provider sees only requests offered or assigned to
        it, a dispatcher those of its districts (404 otherwise)."""
        request = queries.get_request(conn, request_id, user.scope.districts)
        mine = own_provider(user)
        if mine is not None and request["provider_id"] != mine and not offers.any_for(conn, request_id, mine):
            raise Forbidden(f"request {request_id} is not yours")
        return request

    @router.post("/requests", response_model=RequestDetail, status_code=201, responses={
        200: {"model": RequestDetail, "description": "An open request for that service was joined"}})
    def open_request(body: NewRequest, conn: DbConn, user: DispatcherUser, response: Response) -> dict:
        """Open a request for a caller; a request already open for that service is joined (200).
        The resident must be of your districts (404 otherwise)."""
        residents.get(conn, body.resident_id, user.scope.districts)
        with conn.transaction():
            result = intake.phoned(conn, ctx, body.resident_id, body.service, body.note, actor_of(user))
        if result.outcome != "created":
            response.status_code = 200
        return queries.get_request(conn, result.request_id)

    @router.get("/requests/{request_id}/candidates", response_model=list[CandidateOut])
    def candidates(request_id: str, conn: DbConn, user: DispatcherUser) -> list[dict]:
        """Every provider in view as a candidate for the request: score and its parts, ETA, load,
        shift, why not, and whether it would be help from another district."""
        return queries.candidates(conn, ctx, request_id, user.scope.districts)

    @router.post("/requests/{request_id}/assign", response_model=RequestDetail)
    def assign(request_id: str, body: AssignBody, conn: DbConn, user: DispatcherUser) -> dict:
        """Assign (or reassign) by hand; a provider off shift is refused unless `override_shift`.
        Both must be in your districts' view (404 otherwise)."""
        request_in_scope(conn, request_id, user)
        provider_in_scope(conn, body.provider_id, user)
        with conn.transaction():
            progress.assign_manually(
                conn, ctx, request_id, body.provider_id, actor_of(user), override_shift=body.override_shift
            )
        return queries.get_request(conn, request_id)

    @router.post("/requests/{request_id}/cancel", response_model=RequestDetail)
    def cancel(request_id: str, body: CancelBody, conn: DbConn, user: DispatcherUser) -> dict:
        """Cancel a request; the resident's button is told why."""
        request_in_scope(conn, request_id, user)
        with conn.transaction():
            progress.cancel(conn, ctx, request_id, body.reason, actor_of(user))
        return queries.get_request(conn, request_id)

    def _advance(request_id: str, to: Status, conn, user: User) -> dict:
        request_in_scope(conn, request_id, user)
        with conn.transaction():
            progress.advance(conn, ctx, request_id, to, actor_of(user), own_provider(user))
        return queries.get_request(conn, request_id)

    @router.post("/requests/{request_id}/en-route", response_model=RequestDetail)
    def en_route(request_id: str, conn: DbConn, user: StaffUser) -> dict:
        """The assigned provider is on the way."""
        return _advance(request_id, Status.EN_ROUTE, conn, user)

    @router.post("/requests/{request_id}/arrived", response_model=RequestDetail)
    def arrived(request_id: str, conn: DbConn, user: StaffUser) -> dict:
        """The assigned provider is at the door."""
        return _advance(request_id, Status.ARRIVED, conn, user)

    @router.post("/requests/{request_id}/complete", response_model=RequestDetail)
    def complete(request_id: str, conn: DbConn, user: StaffUser) -> dict:
        """The service is done; the button's light goes off."""
        return _advance(request_id, Status.COMPLETED, conn, user)

    # -- offers ------------------------------------------------------------------------------

    @router.get("/offers", response_model=list[OfferOut])
    def list_offers(
        conn: DbConn, user: CurrentUser, status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict]:
        """A provider's own offers; dispatchers and admins see everyone's."""
        if not user.has_role(Role.DISPATCHER, Role.PROVIDER):
            raise Forbidden(f"role {user.role.value} may not do this")
        if status is not None and status not in ("pending", "accepted", "declined", "expired", "withdrawn"):
            raise Invalid(f"status: unknown offer status {status}")
        return offers.list_offers(conn, own_provider(user), status, limit, user.scope.districts)

    @router.post("/offers/{offer_id}/accept", response_model=RequestDetail)
    def accept(offer_id: str, conn: DbConn, user: ProviderRole) -> dict:
        """Take the request; 409 when the offer expired or was withdrawn."""
        with conn.transaction():
            request = offering.accept_offer(conn, ctx, offer_id, own_provider(user), actor_of(user))
        return queries.get_request(conn, request.id)

    @router.post("/offers/{offer_id}/decline", response_model=RequestDetail)
    def decline(offer_id: str, conn: DbConn, user: ProviderRole, body: DeclineBody | None = None) -> dict:
        """Say no; the next provider is asked."""
        with conn.transaction():
            request = offering.decline_offer(
                conn, ctx, offer_id, own_provider(user), actor_of(user), body.reason if body else None
            )
        return queries.get_request(conn, request.id)

    # -- reports -----------------------------------------------------------------------------

    @router.get("/reports/sla", response_model=None, responses={200: {
        "description": "The report as JSON, or as CSV with `format=csv`",
        "content": {"application/json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}}}}})
    def sla(
        conn: DbConn, user: DispatcherUser, start: Timestamp | None = None, end: Timestamp | None = None,
        service: str | None = None, district: str | None = None, by_day: bool = False,
        format: Literal["json", "csv"] = "json",
    ):
        """Per service type and district (and day): counts, p50/p90/p99 of each step of the SLA
        clock in seconds, and the share of requests that met their targets, of your districts.
        Default: the last 7 days."""
        end = end or ctx.clock()
        start = start or end - timedelta(days=7)
        if service is not None and service not in {s.value for s in ctx.policy.services}:
            raise Invalid(f"service: unknown service {service}")
        if end <= start:
            raise Invalid("end: must be after start")
        rows = queries.sla_report(
            conn, start, end, by_day, service=service, district=district, policy=ctx.policy, now=ctx.clock(),
            districts=user.scope.districts,
        )
        if format == "csv":
            return PlainTextResponse(queries.sla_csv(rows), media_type="text/csv")
        return {"start": start, "end": end, "by_day": by_day, "groups": rows}

    return router
