"""The resident view: `GET /residents/{id}`, and its care plan editor (add, edit, pause, end)."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from homecare.auth import Role
from homecare.errors import HomecareError, NotFound
from services.dispatch.interface import actor_of

from . import care_plans
from .resident_data import resident_view
from .web import ConsoleContext, ConsoleRoute, Session, form_guard, page_guard

PLAN_FIELDS = ("service", "repeat", "starts_on", "ends_on", "every_weeks", "window_start", "window_end",
               "duration_minutes", "skills", "preferred_provider_id", "note")


def resident_router(ctx: ConsoleContext) -> APIRouter:
    """The resident page and its care plan forms (dispatchers and admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]
    Action = Annotated[Session, Depends(form_guard(ctx, Role.DISPATCHER))]

    @router.get("/residents/{resident_id}", response_class=HTMLResponse)
    def resident_page(request: Request, resident_id: str, session: Page) -> Response:
        """Profile, devices, care plans, 24-hour and 7-day vitals, alert and request history."""
        try:
            with ctx.pool.connection() as conn:
                view = resident_view(conn, resident_id, districts=session.user.scope.districts)
                view.update(care_plans.editor(conn, ctx.dispatch, resident_id, session.user.scope.districts))
        except NotFound as exc:
            return ctx.render(request, "not_found.html", {"message": str(exc)}, 404, session)
        return ctx.render(request, "resident.html", view, session=session)

    async def form_of(request: Request) -> dict[str, Any]:
        form = await request.form()
        fields: dict[str, Any] = {k: form.get(k) for k in PLAN_FIELDS if form.get(k) is not None}
        fields["weekdays"] = form.getlist("weekdays")[:7]
        return fields

    async def act(back: str, ok: str, fn, *args) -> Response:
        try:
            await run_in_threadpool(ctx.act, fn, *args)
        except HomecareError as exc:
            return ctx.done(back, f"Care plan not saved: {exc}", ok=False)
        return ctx.done(back, ok)

    @router.post("/residents/{resident_id}/care-plans")
    async def add_plan(request: Request, resident_id: str, session: Action) -> Response:
        """A new care plan for the resident."""
        return await act(f"/residents/{resident_id}#care-plans", "Care plan added; it is routed from the next"
                         " planning of its days.", care_plans.add, resident_id, await form_of(request),
                         actor_of(session.user), session.user.scope)

    @router.post("/residents/{resident_id}/care-plans/{plan_id}")
    async def edit_plan(request: Request, resident_id: str, plan_id: str, session: Action) -> Response:
        """Change one of the resident's care plans."""
        return await act(f"/residents/{resident_id}#care-plans", "Care plan changed; plan its days again.",
                         care_plans.edit, resident_id, plan_id, await form_of(request), actor_of(session.user),
                         session.user.scope)

    @router.post("/residents/{resident_id}/care-plans/{plan_id}/end")
    async def end_plan(resident_id: str, plan_id: str, session: Action) -> Response:
        """End one of the resident's care plans: no more visits."""
        return await act(f"/residents/{resident_id}#care-plans", "Care plan ended.", care_plans.end,
                         resident_id, plan_id, actor_of(session.user), session.user.scope)

    @router.post("/residents/{resident_id}/care-plans/{plan_id}/pauses")
    async def pause_plan(request: Request, resident_id: str, plan_id: str, session: Action) -> Response:
        """Pause one of the resident's care plans on some days (in hospital, away with family)."""
        form = await request.form()
        back = f"/residents/{resident_id}#care-plans"
        fields = {k: form.get(k) for k in ("from_day", "to_day", "reason")}
        try:
            released = await run_in_threadpool(ctx.act, care_plans.pause, resident_id, plan_id, fields,
                                               actor_of(session.user), session.user.scope)
        except HomecareError as exc:
            return ctx.done(back, f"Care plan not paused: {exc}", ok=False)
        said = "Care plan paused; its visits on those days are off their routes."
        if released:
            said += (f" {len(released)} visit(s) on those days were released already and still go:"
                     f" cancel them on their request page if they should not ({', '.join(released)}).")
        return ctx.done(back, said)

    @router.post("/residents/{resident_id}/care-plans/{plan_id}/pauses/{pause_id}/resume")
    async def resume_plan(resident_id: str, plan_id: str, pause_id: str, session: Action) -> Response:
        """End a pause: its days are planned again by their next planning run."""
        return await act(f"/residents/{resident_id}#care-plans", "Pause ended; plan its days again.",
                         care_plans.resume, resident_id, plan_id, pause_id, actor_of(session.user),
                         session.user.scope)

    return router
