"""The resident view: `GET /residents/{id}`."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from homecare.auth import Role
from homecare.errors import NotFound

from .resident_data import resident_view
from .web import ConsoleContext, ConsoleRoute, Session, page_guard


def resident_router(ctx: ConsoleContext) -> APIRouter:
    """The resident page (dispatchers and admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]

    @router.get("/residents/{resident_id}", response_class=HTMLResponse)
    def resident_page(request: Request, resident_id: str, session: Page) -> Response:
        """Profile, devices, 24-hour and 7-day vitals, alert and request history."""
        try:
            with ctx.pool.connection() as conn:
                view = resident_view(conn, resident_id, districts=session.user.scope.districts)
        except NotFound as exc:
            return ctx.render(request, "not_found.html", {"message": str(exc)}, 404, session)
        return ctx.render(request, "resident.html", view, session=session)

    return router
