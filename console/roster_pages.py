"""The providers roster: `GET /providers` (dispatchers and admins) with the day's routes, a
dispatcher's "plan this day now", and an admin's shift switch for a provider (http-v1 gives
dispatchers only read access to providers)."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from homecare.auth import Role
from homecare.auth.audit import actor_of
from homecare.errors import HomecareError

from . import roster_data as data
from . import routes_data
from .board import SERVICE_LABELS
from .web import ConsoleContext, ConsoleRoute, Session, form_guard, page_guard


def roster_router(ctx: ConsoleContext) -> APIRouter:
    """The roster page (dispatchers and admins) and its shift action (admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]
    Action = Annotated[Session, Depends(form_guard(ctx, Role.ADMIN))]
    # A day is planned for the whole city at once (providers serve several districts).
    City = Annotated[Session, Depends(form_guard(ctx, Role.CITY))]

    @router.get("/providers", response_class=HTMLResponse)
    def roster_page(request: Request, session: Page, day: Annotated[str, Query(max_length=40)] = "") -> Response:
        """Who is on shift, their load and jobs, where everyone is, and the day's routes (`?day=`,
        today by default) on the map and listed."""
        try:
            chosen = routes_data.chosen_day(ctx.dispatch, day)
            problem = None
        except HomecareError as exc:
            chosen, problem = routes_data.chosen_day(ctx.dispatch, None), str(exc)
        with ctx.pool.connection() as conn:
            routes = routes_data.day_routes(conn, ctx.dispatch, chosen, session.user.scope.districts)
            view = data.roster(conn, ctx.dispatch, session.user.scope.districts, routes["routes"])
        routes = routes_data.with_presses(routes, view["providers"])
        return ctx.render(request, "roster.html", {**view, "labels": SERVICE_LABELS, "plan": routes,
                                                   "day_problem": problem}, session=session)

    @router.post("/providers/plan")
    async def plan_day(session: City, day: Annotated[str, Form(max_length=40)] = "") -> Response:
        """Plan (or replan) a day's routes now with the day planner (the city bureau and admins:
        it plans every district's routes)."""
        back = f"/providers?day={quote(day[:10])}" if day else "/providers"
        try:
            said = await run_in_threadpool(ctx.act, routes_data.plan_now, day, actor_of(session.user))
        except HomecareError as exc:
            return ctx.done(back, f"Not planned: {exc}", ok=False)
        return ctx.done(back + "#routes", said)

    @router.post("/providers/{provider_id}/shift")
    async def shift(provider_id: str, session: Action, on_shift: Annotated[str, Form(max_length=5)] = "") -> Response:
        """Start or end a provider's shift (admins only)."""
        on = on_shift == "true"
        try:
            name = await run_in_threadpool(ctx.act, data.set_shift, provider_id, on, actor_of(session.user))
        except HomecareError as exc:
            return ctx.done("/providers", str(exc), ok=False)
        return ctx.done("/providers", f"{name} is {'on' if on else 'off'} shift.")

    return router
