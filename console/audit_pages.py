"""`GET /audit`: the audit log for admins, newest first, a page at a time."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from homecare.api.guard import INT64
from homecare.auth import Role, audit

from .web import ConsoleContext, ConsoleRoute, Session, page_guard

PAGE_SIZE = 100


def audit_router(ctx: ConsoleContext) -> APIRouter:
    """The audit page (admins only)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.ADMIN))]

    @router.get("/audit", response_class=HTMLResponse)
    def audit_page(
        request: Request, session: Page, before: Annotated[int | None, Query(ge=1, le=INT64)] = None,
    ) -> Response:
        """Who did what to which account, device or provider, and when; and every lockout."""
        with ctx.pool.connection() as conn:
            entries = audit.entries(conn, PAGE_SIZE + 1, before)
        older = entries[PAGE_SIZE - 1]["id"] if len(entries) > PAGE_SIZE else None
        return ctx.render(request, "audit.html", {
            "entries": entries[:PAGE_SIZE], "before": before, "older": older}, session=session)

    return router
