"""The provider's own page (phone-sized): offers to accept or decline, jobs to move on, the
shift switch; and its event stream, which says `refresh` when one of its requests changes."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from homecare.api.app import status_of
from homecare.api.deps import ProviderUser
from homecare.auth import Role
from homecare.errors import HomecareError
from services.dispatch.interface import actor_of, today_of_plans

from . import provider_data as data
from . import routes_data
from .board import SERVICE_LABELS
from .board_pages import _token_of
from .changes import ALERT, CLOSED, RESYNC
from .stream import RETRY_MS, sse
from .web import ConsoleContext, ConsoleRoute, PageResponse, Session, form_guard, page_guard, token_alive

log = logging.getLogger(__name__)
PAGE = "/provider"


def provider_router(ctx: ConsoleContext) -> APIRouter:
    """`/provider` and its actions; for provider accounts linked to a provider only."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

    def linked(session: Session, request: Request) -> str:
        if not session.user.provider_id:
            raise PageResponse(ctx.forbidden(
                request, session, "This page is for provider accounts; yours is not linked to a provider."))
        return session.user.provider_id

    page, action = page_guard(ctx, Role.PROVIDER), form_guard(ctx, Role.PROVIDER)

    def own_page(request: Request, session: Annotated[Session, Depends(page)]) -> tuple[Session, str]:
        return session, linked(session, request)

    async def own_action(request: Request, session: Annotated[Session, Depends(action)]) -> tuple[Session, str]:
        return session, linked(session, request)

    Mine = Annotated[tuple[Session, str], Depends(own_page)]
    MineAction = Annotated[tuple[Session, str], Depends(own_action)]

    @router.get(PAGE, response_class=HTMLResponse)
    def provider_page(request: Request, mine: Mine, day: Annotated[str, Query(max_length=40)] = "") -> Response:
        """Offers first (they expire), then the jobs in hand, then today's route (`?day=`:
        another day's, e.g. tomorrow's; one that is no date shows today's)."""
        session, provider_id = mine
        today = today_of_plans(ctx.dispatch)
        try:
            chosen = routes_data.chosen_day(ctx.dispatch, day)
        except HomecareError:
            chosen = today
        with ctx.pool.connection() as conn:
            view = data.provider_view(conn, provider_id)
            route = routes_data.provider_route(conn, ctx.dispatch, provider_id, chosen)
        route |= {"today": chosen == today, "tomorrow": (today + timedelta(days=1)).isoformat(),
                  "today_iso": today.isoformat()}
        return ctx.render(request, "provider.html", {**view, "route": route, "labels": SERVICE_LABELS},
                          session=session)

    async def run(fn, *args, ok: str) -> Response:
        try:
            await run_in_threadpool(ctx.act, fn, *args)
        except HomecareError as exc:
            return ctx.done(PAGE, str(exc), ok=False)
        return ctx.done(PAGE, ok)

    @router.post(PAGE + "/offers/{offer_id}/accept")
    async def accept(offer_id: str, mine: MineAction) -> Response:
        """Take the request."""
        session, provider_id = mine
        return await run(data.accept, offer_id, provider_id, actor_of(session.user),
                         ok="Accepted. The resident is told you are coming.")

    @router.post(PAGE + "/offers/{offer_id}/decline")
    async def decline(offer_id: str, mine: MineAction, reason: Annotated[str, Form(max_length=500)] = "") -> Response:
        """Say no; the next provider is asked."""
        session, provider_id = mine
        return await run(data.decline, offer_id, provider_id, actor_of(session.user), reason, ok="Declined.")

    @router.post(PAGE + "/requests/{request_id}/{step}")
    async def advance(request_id: str, step: str, mine: MineAction) -> Response:
        """On the way, arrived, completed."""
        session, provider_id = mine
        if step not in data.STEPS:
            return ctx.done(PAGE, f"Unknown step {step}.", ok=False)
        said = {"en-route": "On your way.", "arrived": "Arrival noted.", "complete": "Completed. Thank you."}
        return await run(data.step, request_id, step, provider_id, actor_of(session.user), ok=said[step])

    @router.post(PAGE + "/shift")
    async def shift(mine: MineAction, on_shift: Annotated[str, Form(max_length=5)] = "") -> Response:
        """Start or end the shift."""
        _, provider_id = mine
        on = on_shift == "true"
        return await run(data.set_shift, provider_id, on, ok="Shift started." if on else "Shift ended.")

    @router.post(PAGE + "/heartbeat")
    async def heartbeat(mine: MineAction) -> Response:
        """The page is open on the provider's phone (its script posts this every 30 s): dispatch
        counts the provider as reachable. 204, nothing to show."""
        _, provider_id = mine
        try:
            await run_in_threadpool(ctx.act, data.heartbeat, provider_id)
        except HomecareError as exc:
            return Response(str(exc), status_code=status_of(exc), media_type="text/plain")
        return Response(status_code=204)

    @router.get("/events/provider")
    async def events(request: Request, user: ProviderUser) -> StreamingResponse:
        """`refresh` whenever a request of this provider (or offered to it) changes."""
        if not user.provider_id:
            return Response("not linked to a provider", status_code=403)
        return StreamingResponse(
            _provider_events(ctx, user.provider_id, _token_of(request)), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        )

    return router


async def _provider_events(ctx: ConsoleContext, provider_id: str, token: str) -> AsyncIterator[str]:
    sub = ctx.hub.subscribe()
    try:
        yield f"retry: {RETRY_MS}\n\n"
        yield sse("snapshot", {"provider_id": provider_id})
        while True:
            items = await sub.next_batch(ctx.settings.heartbeat_s, ctx.settings.coalesce_s)
            if not items:
                if not await run_in_threadpool(token_alive, ctx.pool, token):
                    yield sse("signed-out", {"reason": "session ended"})
                    return
                yield ": ping\n\n"
                continue
            if CLOSED in items:
                return
            ids = [i for i in items if i != RESYNC and not i.startswith(ALERT)]
            if RESYNC in items or await run_in_threadpool(_concerns, ctx, provider_id, ids):
                yield sse("refresh", {})
    except Exception:
        log.exception("provider stream failed")
    finally:
        ctx.hub.unsubscribe(sub)


def _concerns(ctx: ConsoleContext, provider_id: str, ids: list[str]) -> bool:
    with ctx.pool.connection() as conn:
        return data.concerns(conn, provider_id, ids)
