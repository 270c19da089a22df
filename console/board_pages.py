"""The dispatchers' live board: `GET /` and its event stream `GET /events/requests`."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from homecare.api.deps import SESSION_COOKIE, DispatcherUser
from homecare.auth import Role

from .board import STATUS_LABELS
from .stream import BoardFeed, now_iso
from .web import ConsoleContext, ConsoleRoute, Session, page_guard


def board_router(ctx: ConsoleContext, feed: BoardFeed) -> APIRouter:
    """The board page and its stream (dispatchers and admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    dispatcher_page = page_guard(ctx, Role.DISPATCHER)

    @router.get("/", response_class=HTMLResponse)
    def board(
        request: Request, session: Annotated[Session, Depends(dispatcher_page)]
    ) -> HTMLResponse:
        """The board, rendered whole; its script then keeps it live."""
        return ctx.render(request, "board.html", {
            "board": feed.board(session.user.scope.districts),
            "alerts": feed.alerts(session.user.scope.districts),
            "server_time": now_iso(),
            "sla_warn_s": int(ctx.settings.sla_warn_minutes * 60),
            "recent_limit": ctx.settings.recent_limit,
            "status_labels": STATUS_LABELS,
        }, session=session)

    @router.get("/events/requests")
    async def events(request: Request, user: DispatcherUser) -> StreamingResponse:
        """Server-sent events: a snapshot of the board, then its changes as they commit, of the
        user's districts only."""
        return StreamingResponse(
            feed.events(_token_of(request), user.scope.districts),
            media_type="text/event-stream",
            # no-transform and X-Accel-Buffering keep proxies from holding events back.
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        )

    return router


def _token_of(request: Request) -> str:
    # The same precedence as homecare.api.deps.current_user: bearer first, then the cookie.
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.cookies.get(SESSION_COOKIE, "")
