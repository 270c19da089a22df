"""The district beds overview: `GET /beds?district=...` (dispatchers and admins)."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from homecare.auth import Role
from homecare.errors import NotFound

from . import beds_data as data
from .web import ConsoleContext, ConsoleRoute, Session, page_guard

SHOWN = 100  # characters of an unknown district the page repeats
REFRESH_S = 60  # the page reloads itself this often: its sparklines are minutes


def beds_router(ctx: ConsoleContext) -> APIRouter:
    """The beds page (dispatchers and admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]

    @router.get("/beds", response_class=HTMLResponse)
    def beds_page(request: Request, session: Page, district: str = "") -> Response:
        """One district's beds, those needing a look first; without a known district, the
        districts to choose from (404 for an unknown one, so a stale bookmark says so)."""
        with ctx.pool.connection() as conn:
            within = session.user.scope.districts
            try:
                view = data.district_beds(conn, district, within=within) if district else None
            except NotFound:
                view = None
            choices = data.districts(conn, within)
        context = {"districts": choices, "view": view, "unknown": district[:SHOWN] if district and not view else None,
                   "refresh_s": REFRESH_S}
        return ctx.render(request, "beds.html", context, 404 if context["unknown"] else 200, session)

    return router
