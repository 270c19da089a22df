"""Reports: SLA compliance and volume per service type and district, per day, as charts and CSV,
from dispatch's SLA report."""

# No `from __future__ import annotations`: FastAPI must evaluate the local `Depends(...)`.

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from homecare.auth import Role
from services.dispatch import interface as dispatch

from . import reports
from .board import SERVICE_LABELS
from .web import ConsoleContext, ConsoleRoute, Session, page_guard

MAX_DAYS = 92


def report_router(ctx: ConsoleContext) -> APIRouter:
    """`/reports` and `/reports/sla.csv` (dispatchers and admins)."""
    router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
    Page = Annotated[Session, Depends(page_guard(ctx, Role.DISPATCHER))]
    tz = ZoneInfo(ctx.settings.timezone)

    def period(first: str, last: str) -> tuple[date, date, str | None]:
        today = datetime.now(tz).date()
        error = None
        try:
            to_day = date.fromisoformat(last) if last else today
            from_day = date.fromisoformat(first) if first else to_day - timedelta(days=6)
        except ValueError:
            from_day, to_day, error = today - timedelta(days=6), today, "Dates look like 2026-11-29."
        if to_day < from_day:
            from_day, to_day = to_day, from_day
        if (to_day - from_day).days >= MAX_DAYS:
            from_day, error = to_day - timedelta(days=MAX_DAYS - 1), f"A report covers at most {MAX_DAYS} days."
        return from_day, to_day, error

    def bounds(first: date, last: date) -> tuple[datetime, datetime]:
        return datetime.combine(first, time(), tz), datetime.combine(last + timedelta(days=1), time(), tz)

    @router.get("/reports", response_class=HTMLResponse)
    def reports_page(request: Request, session: Page, start: str = "", end: str = "") -> Response:
        """Charts per day, tables per service and per district."""
        first, last, error = period(start, end)
        lo, hi = bounds(first, last)
        with ctx.pool.connection() as conn:
            within = session.user.scope.districts  # a dispatcher's districts only
            daily = dispatch.sla_report(conn, lo, hi, True, policy=ctx.dispatch.policy, tz=tz, districts=within)
            groups = dispatch.sla_report(conn, lo, hi, False, policy=ctx.dispatch.policy, tz=tz, districts=within)
        shaped = reports.per_day(daily, reports.days_between(first, last))
        view: dict[str, Any] = {
            "first": first.isoformat(), "last": last.isoformat(), "error": error, "tz": ctx.settings.timezone,
            "volume": reports.volume_chart(shaped["days"], shaped["volume"]),
            "share": reports.share_chart(shaped["days"], shaped["share"]),
            "by_service": reports.totals(daily, "service"), "by_district": reports.totals(daily, "district"),
            "groups": groups, "labels": SERVICE_LABELS, "tone": reports.tone,
        }
        return ctx.render(request, "reports.html", view, session=session)

    @router.get("/reports/sla.csv")
    def reports_csv(session: Page, start: str = "", end: str = "") -> Response:
        """Every day x service x district with counts, target shares and step percentiles."""
        first, last, _ = period(start, end)
        lo, hi = bounds(first, last)
        with ctx.pool.connection() as conn:
            rows = dispatch.sla_report(conn, lo, hi, True, policy=ctx.dispatch.policy, tz=tz,
                                       districts=session.user.scope.districts)
        name = f"sla-{first.isoformat()}-{last.isoformat()}.csv"
        return Response(dispatch.sla_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return router
