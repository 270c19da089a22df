"""The alerts page and one alert's page: acknowledge, assign, resolve with a note."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from homecare.auth import Role
from homecare.errors import HomecareError, NotFound
from services.dispatch.interface import actor_of

from . import alerts_data as data
from .alerts import STATES, UNRESOLVED, ordered
from .web import ConsoleContext, ConsoleRoute, Session, form_guard, page_guard

VIEWS = {"unresolved": list(UNRESOLVED), "open": ["open"], "acknowledged": ["acknowledged"],
         "resolved": ["resolved"], "all": list(STATES)}


def alert_router(ctx: ConsoleContext) -> APIRouter:
    """`/alerts`, `/alerts/{id}` and the three actions (dispatchers and admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]
    Action = Annotated[Session, Depends(form_guard(ctx, Role.DISPATCHER))]

    @router.get("/alerts", response_class=HTMLResponse)
    def alerts_page(request: Request, session: Page, view: str = "unresolved") -> Response:
        """Alerts by state, most pressing first while unresolved, newest first once resolved."""
        view = view if view in VIEWS else "unresolved"
        with ctx.pool.connection() as conn:
            rows = data.listing(conn, VIEWS[view], limit=300, districts=session.user.scope.districts)
        if view != "resolved":
            rows = ordered(rows)
        return ctx.render(request, "alerts.html", {"alerts": rows, "view": view, "views": list(VIEWS)},
                          session=session)

    @router.get("/alerts/{alert_id}", response_class=HTMLResponse)
    def alert_page(request: Request, alert_id: str, session: Page) -> Response:
        """Evidence, timeline and the actions."""
        try:
            with ctx.pool.connection() as conn:
                alert = data.detail(conn, alert_id, session.user.scope.districts)
        except NotFound as exc:
            return ctx.render(request, "not_found.html", {"message": str(exc)}, 404, session)
        return ctx.render(request, "alert.html", {"alert": alert, "a": alert["row"]}, session=session)

    async def run(alert_id: str, back: str, fn, session: Session, *args, ok: str) -> Response:
        target = back if back.startswith("/alerts") else f"/alerts/{alert_id}"
        try:
            await run_in_threadpool(ctx.run, fn, alert_id, session.user.scope.districts, *args)
        except HomecareError as exc:
            return ctx.done(target, str(exc), ok=False)
        return ctx.done(target, ok)

    @router.post("/alerts/{alert_id}/acknowledge")
    async def acknowledge(alert_id: str, session: Action, back: Annotated[str, Form(max_length=200)] = "") -> Response:
        """I have seen it."""
        return await run(alert_id, back, data.acknowledge, session, actor_of(session.user), ok="Alert acknowledged.")

    @router.post("/alerts/{alert_id}/assign")
    async def assign(
        alert_id: str, session: Action, assignee: Annotated[str, Form(max_length=200)] = "",
        back: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        """Give it to someone."""
        name = assignee.strip() or session.user.username
        return await run(alert_id, back, data.assign, session, name, actor_of(session.user),
                         ok=f"Alert assigned to {name}.")

    @router.post("/alerts/{alert_id}/resolve")
    async def resolve(
        alert_id: str, session: Action, note: Annotated[str, Form(max_length=data.NOTE_MAX)] = "",
        back: Annotated[str, Form(max_length=200)] = "",
    ) -> Response:
        """Close it, saying what was done."""
        return await run(alert_id, back, data.resolve, session, note, actor_of(session.user), ok="Alert resolved.")

    return router
