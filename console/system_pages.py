"""`GET /system`: whether the services keep up (every consumer of the internal log, at the latest
check) and each time one got stuck, newest first; dispatchers and admins."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from homecare.api.guard import INT64
from homecare.auth import Role
from homecare.errors import HomecareError
from homecare.notify.settings import NotifySettings

from .consumer_watch import ConsumerWatch, duration_text
from .system_api import consumers_out, recent_incidents
from .web import ConsoleContext, ConsoleRoute, Session, page_guard

PAGE_SIZE = 50


def system_page_router(ctx: ConsoleContext, watch: ConsumerWatch) -> APIRouter:
    """The system page."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]
    # The notification rules in force (HOMECARE_NOTIFY_*), shown read-only; secrets never are.
    notify = NotifySettings()

    @router.get("/system", response_class=HTMLResponse)
    def system_page(
        request: Request, session: Page, before: Annotated[int | None, Query(ge=1, le=INT64)] = None,
    ) -> Response:
        """Consumers now; incidents a page at a time (`before`: the last id of the previous page)."""
        error, consumers = None, None
        try:
            consumers = consumers_out(watch.current())
        except HomecareError as exc:
            error = str(exc)
        rows = recent_incidents(watch, PAGE_SIZE + 1, before)
        older = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
        return ctx.render(request, "system.html", {
            "consumers": consumers, "error": error, "incidents": rows[:PAGE_SIZE], "before": before,
            "older": older, "duration": duration_text, "notify": notify,
            "channels": sorted(notify.channels()),
        }, 503 if error else 200, session)

    return router
