"""Dispatch's one public interface: the reads, the use cases and the settings other components
(the console, telemetry) may use. Everything else in `services.dispatch` is its own (an
import-linter contract in pyproject.toml keeps it so)."""

from datetime import date
from typing import Any

import psycopg

from .api import actor_of, ask_device_selftest, device_in_scope, provider_in_scope, request_in_scope
from .domain.requests import ACTIVE, TRANSITIONS, WITH_PROVIDER, Status
from .queries import (
    candidates,
    count_by_status,
    district_of,
    get_request,
    list_providers,
    list_requests,
    open_requests_for,
    sla_csv,
    sla_report,
)
from .route_queries import care_plan, care_plans_of, plan_dict, plan_runs, route_of, routes_of_day, run_dict
from .settings import DispatchSettings
from .store.offers import list_offers
from .store.providers import get as get_provider
from .store.transactions import ConnectionTransactions
from .usecases import plans as plan_cases
from .usecases.context import Dispatch
from .usecases.context import from_settings as context
from .usecases.device_commands import ask_selftest
from .usecases.intake import Intake, phoned
from .usecases.offering import accept_offer, decline_offer
from .usecases.progress import add_note, advance, assign_manually
from .usecases.progress import cancel as cancel_request
from .usecases.providers import heartbeat, set_shift

__all__ = [
    "ACTIVE", "TRANSITIONS", "WITH_PROVIDER", "Dispatch", "DispatchSettings", "Intake", "Status", "accept_offer",
    "actor_of", "add_note", "advance", "ask_device_selftest", "ask_selftest", "assign_manually", "cancel_request",
    "candidates", "context", "device_in_scope", "district_of", "provider_in_scope", "request_in_scope",
    "count_by_status", "decline_offer", "get_provider", "get_request", "heartbeat", "list_offers", "list_providers",
    "list_requests", "open_requests_for", "phoned", "set_shift", "sla_csv", "sla_report",
    "care_plan", "care_plans_of", "save_care_plan", "end_care_plan", "pause_care_plan", "resume_care_plan",
    "routes_of_day", "route_of", "plan_day_now",
    "plan_runs", "today_of_plans",
]


def save_care_plan(
    conn: psycopg.Connection, ctx: Dispatch, resident_id: str | None, fields: dict[str, Any], actor: str,
    plan_id: str | None = None,
) -> dict[str, Any]:
    """Create a resident's care plan (`plan_id` None), or change fields of one; the plan as
    `care_plan` shows it. Invalid (422) with the reason for a plan that cannot be kept; NotFound
    for an unknown resident or plan. Its own transaction."""
    with conn.transaction():
        if plan_id is None:
            if resident_id is None:
                raise ValueError("a new care plan needs its resident")
            plan = plan_cases.create_plan(conn, ctx, resident_id, fields, actor)
        else:
            plan = plan_cases.update_plan(conn, ctx, plan_id, fields, actor)
    return plan_dict(plan)


def end_care_plan(conn: psycopg.Connection, ctx: Dispatch, plan_id: str, actor: str) -> dict[str, Any]:
    """End a care plan (kept, inactive; its visits not yet released leave their routes)."""
    with conn.transaction():
        return plan_dict(plan_cases.end_plan(conn, ctx, plan_id, actor))


def pause_care_plan(
    conn: psycopg.Connection, ctx: Dispatch, plan_id: str, from_day: date, to_day: date, reason: str, actor: str,
) -> list[str]:
    """Pause a care plan on some days (`usecases.plans.pause_plan`); the requests of its visits
    on them already released. Its own transaction."""
    with conn.transaction():
        return plan_cases.pause_plan(conn, ctx, plan_id, from_day, to_day, reason, actor)[1]


def resume_care_plan(conn: psycopg.Connection, ctx: Dispatch, plan_id: str, pause_id: str, actor: str) -> None:
    """End a pause of a care plan. Its own transaction."""
    with conn.transaction():
        plan_cases.resume_plan(conn, ctx, plan_id, pause_id, actor)


def plan_day_now(conn: psycopg.Connection, ctx: Dispatch, day: date, actor: str) -> dict[str, Any]:
    """Plan (or replan) a day's routes now with the day planner; the run (`run_dict`). What `conn`
    had begun is committed first: the run reads and writes in transactions of its own, and its
    solver holds none."""
    return run_dict(plan_cases.plan_day(ConnectionTransactions(conn), ctx, day, actor))


def today_of_plans(ctx: Dispatch) -> date:
    """The service centre's date now (the time zone of care plans)."""
    return plan_cases.today(ctx)
