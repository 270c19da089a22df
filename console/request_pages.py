"""The request view and the dispatcher's actions on it; phone intake."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from homecare.auth import Role
from homecare.errors import HomecareError, NotFound
from homecare.residents import store as residents
from services.dispatch import interface as dispatch
from services.dispatch.interface import actor_of

from . import requests_data as data
from .board import SERVICE_LABELS, SERVICES
from .web import ConsoleContext, ConsoleRoute, Session, form_guard, page_guard

SEARCH_LIMIT = 25


def request_router(ctx: ConsoleContext) -> APIRouter:
    """`/requests/{id}` with assign, cancel and note; `/intake` for phone calls."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    page = page_guard(ctx, Role.DISPATCHER)
    action = form_guard(ctx, Role.DISPATCHER)
    Page = Annotated[Session, Depends(page)]
    Action = Annotated[Session, Depends(action)]

    @router.get("/requests/{request_id}", response_class=HTMLResponse)
    def request_view(request: Request, request_id: str, session: Page) -> Response:
        """Timeline, resident and contacts, candidates; assign, cancel, note."""
        try:
            with ctx.pool.connection() as conn:
                view = data.request_view(conn, ctx.dispatch, request_id, session.user.scope.districts)
        except NotFound as exc:
            return ctx.render(request, "not_found.html", {"message": str(exc)}, 404, session)
        return ctx.render(request, "request.html", {**view, "sla_warn_s": _warn_s(ctx)}, session=session)

    @router.post("/requests/{request_id}/assign")
    async def assign(
        request_id: str, session: Action, provider_id: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        """Assign or reassign to the chosen provider."""
        back = f"/requests/{request_id}"
        try:
            name = await run_in_threadpool(ctx.act, data.assign, request_id, provider_id, session.user)
        except HomecareError as exc:
            return ctx.done(back, f"Not assigned: {exc}", ok=False)
        return ctx.done(back, f"Assigned to {name}.")

    @router.post("/requests/{request_id}/cancel")
    async def cancel(
        request_id: str, session: Action, reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        """Cancel with a reason."""
        back = f"/requests/{request_id}"
        try:
            await run_in_threadpool(ctx.act, data.cancel, request_id, reason, session.user)
        except HomecareError as exc:
            return ctx.done(back, f"Not cancelled: {exc}", ok=False)
        return ctx.done(back, "Request cancelled; the resident's button is told.")

    @router.post("/requests/{request_id}/notes")
    async def note(
        request_id: str, session: Action, text: Annotated[str, Form(max_length=data.NOTE_MAX)] = "",
    ) -> Response:
        """Add a note to the timeline."""
        back = f"/requests/{request_id}"
        try:
            await run_in_threadpool(ctx.act, data.add_note, request_id, text, session.user)
        except HomecareError as exc:
            return ctx.done(back, f"Note not saved: {exc}", ok=False)
        return ctx.done(back + "#timeline", "Note added.")

    @router.get("/intake", response_class=HTMLResponse)
    def intake_page(request: Request, session: Page, q: str = "", resident: str = "") -> Response:
        """Find the caller, then choose the service."""
        q = q.strip()[:100]
        within = session.user.scope.districts
        with ctx.pool.connection() as conn:
            found = residents.search(conn, q, SEARCH_LIMIT, within) if q else []
            chosen, open_now = None, []
            if resident:
                try:
                    chosen = residents.get(conn, resident, within)
                    open_now = dispatch.open_requests_for(conn, resident)
                except NotFound:
                    chosen = None
        return ctx.render(request, "intake.html", {
            "q": q, "found": found, "chosen": chosen, "open_now": open_now,
            "services": [(s, SERVICE_LABELS[s]) for s in SERVICES], "search_limit": SEARCH_LIMIT,
        }, session=session)

    @router.post("/intake")
    async def intake(
        session: Action,
        resident_id: Annotated[str, Form(max_length=64)] = "",
        service: Annotated[str, Form(max_length=20)] = "",
        note: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        """Open the request (or join the one already open) and show it."""
        try:
            result = await run_in_threadpool(
                ctx.act, data.open_by_phone, resident_id, service, note, actor_of(session.user),
                session.user.scope.districts)
        except HomecareError as exc:
            return ctx.done(f"/intake?resident={quote(resident_id)}", f"No request opened: {exc}", ok=False)
        label = SERVICE_LABELS.get(service, service)
        if result.outcome == "created":
            return ctx.done(f"/requests/{result.request_id}", f"{label} request opened.")
        return ctx.done(f"/requests/{result.request_id}",
                        f"A {label.lower()} request was already open: the call is added to it.")

    return router


def _warn_s(ctx: ConsoleContext) -> int:
    return int(ctx.settings.sla_warn_minutes * 60)
