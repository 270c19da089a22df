"""The dead-letters page: what consumers of the internal log gave up on, newest first, with Replay
and Discard for admins (dispatchers read it: a dead-lettered press is a call for help to follow up)."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from homecare.api.app import status_of
from homecare.api.guard import INT64
from homecare.auth import Role
from homecare.errors import HomecareError

from .dead_letters_api import DeadLetterDesk
from .web import ConsoleContext, ConsoleRoute, Session, form_guard, page_guard

PAGE_SIZE = 100
PREVIEW_BYTES = 300  # of each payload on the page

Seq = Annotated[int, Path(ge=1, le=INT64)]


def dead_letter_router(ctx: ConsoleContext, desk: DeadLetterDesk) -> APIRouter:
    """`/dead-letters` (dispatchers and admins) and its two actions (admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]
    Action = Annotated[Session, Depends(form_guard(ctx, Role.ADMIN))]

    @router.get("/dead-letters", response_class=HTMLResponse)
    def dead_letters_page(
        request: Request, session: Page, before: Annotated[int | None, Query(ge=1, le=INT64)] = None,
    ) -> Response:
        """Newest first, a page at a time (`before`: the last seq of the previous page)."""
        try:
            page = desk.newest(before, PAGE_SIZE, PREVIEW_BYTES, districts=session.user.scope.districts)
        except HomecareError as exc:
            return ctx.render(request, "dead_letters.html", {"letters": [], "error": str(exc), "older": None,
                                                             "before": before}, status_of(exc), session)
        return ctx.render(request, "dead_letters.html", {"letters": page.letters, "error": None, "older": page.next,
                                                         "before": before}, session=session)

    def act(fn, seq: int, session: Session, done: str) -> Response:
        try:
            letter = fn(seq, session.user)
        except HomecareError as exc:
            return ctx.done("/dead-letters", str(exc), ok=False)
        return ctx.done("/dead-letters", done.format(seq=seq, subject=letter.subject, consumer=letter.consumer))

    @router.post("/dead-letters/{seq}/replay")
    def replay(seq: Seq, session: Action) -> Response:
        """Back into its stream; its consumer gets it again."""
        return act(desk.replay, seq, session, "Dead letter {seq} replayed to {subject}.")

    @router.post("/dead-letters/{seq}/discard")
    def discard(seq: Seq, session: Action) -> Response:
        """Gone for good."""
        return act(desk.discard, seq, session, "Dead letter {seq} (from {consumer}) discarded.")

    return router
