"""The device-health page: `GET /devices/health?district=...` (dispatchers and admins), and asking a
device for a self-test from it."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from homecare.auth import Role
from homecare.errors import HomecareError, NotFound
from services.dispatch.interface import ask_device_selftest

from . import device_health_data as data
from .beds_pages import SHOWN
from .web import ConsoleContext, ConsoleRoute, Session, form_guard, page_guard

REFRESH_S = 60  # a screen left open on a shift stays current


def device_health_router(ctx: ConsoleContext) -> APIRouter:
    """The device-health page and its self-test action (dispatchers and admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]
    Action = Annotated[Session, Depends(form_guard(ctx, Role.DISPATCHER))]

    @router.get("/devices/health", response_class=HTMLResponse)
    def device_health_page(request: Request, session: Page, district: str = "", faults: str = "") -> Response:
        """One district's devices, faults first; without a known district, the districts to
        choose from (404 for an unknown one, so a stale bookmark says so)."""
        with ctx.pool.connection() as conn:
            within = session.user.scope.districts
            try:
                view = data.district_devices(conn, district, faults_only=faults == "1", within=within) \
                    if district else None
            except NotFound:
                view = None
            choices = data.districts(conn, within)
        unknown = district[:SHOWN] if district and not view else None
        context = {"districts": choices, "view": view, "unknown": unknown, "refresh_s": REFRESH_S,
                   "labels": data.SELFTEST_LABELS}
        return ctx.render(request, "device_health.html", context, 404 if unknown else 200, session)

    @router.post("/devices/{device_id}/selftest")
    async def ask_for_selftest(
        device_id: str, session: Action, back: Annotated[str, Form(max_length=300)] = "",
    ) -> Response:
        """Ask the device to test itself now; its answer shows here when it comes."""
        target = back if back.startswith("/devices/health") else "/devices/health"
        try:
            command_id = await run_in_threadpool(ctx.act, ask_device_selftest, device_id, session.user)
        except HomecareError as exc:
            return ctx.done(target, str(exc), ok=False)
        return ctx.done(target, f"Asked {device_id} for a self-test ({command_id}). Its answer shows here when it"
                                " comes; a device that is offline gets it if it reconnects within 10 minutes.")

    return router
