"""The providers roster: `GET /providers` (dispatchers and admins), and an admin's shift switch
for a provider (http-v1 gives dispatchers only read access to providers)."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from homecare.auth import Role
from homecare.auth.audit import actor_of
from homecare.errors import HomecareError

from . import roster_data as data
from .board import SERVICE_LABELS
from .web import ConsoleContext, ConsoleRoute, Session, form_guard, page_guard


def roster_router(ctx: ConsoleContext) -> APIRouter:
    """The roster page (dispatchers and admins) and its shift action (admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]
    Action = Annotated[Session, Depends(form_guard(ctx, Role.ADMIN))]

    @router.get("/providers", response_class=HTMLResponse)
    def roster_page(request: Request, session: Page) -> Response:
        """Who is on shift, their load and jobs, and where everyone is."""
        with ctx.pool.connection() as conn:
            view = data.roster(conn, ctx.dispatch, session.user.scope.districts)
        return ctx.render(request, "roster.html", {**view, "labels": SERVICE_LABELS}, session=session)

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
