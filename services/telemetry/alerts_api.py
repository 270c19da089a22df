"""HTTP routes of alerts: list, read, acknowledge, assign, resolve; a resident's alert settings.
Dispatchers and admins. Invalid transitions answer 409."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from homecare.api.deps import DbConn, DispatcherUser
from homecare.api.types import Name
from homecare.auth import User
from homecare.errors import Invalid
from homecare.residents import store as residents
from services.telemetry import alert_queries
from services.telemetry.domain.rules.limits import PER_RESIDENT, RuleLimits
from services.telemetry.store.alert_settings import ResidentAlertSettings, save_settings, stored_settings
from services.telemetry.usecases import alert_actions as actions
from services.telemetry.usecases.context import Alerting


class AlertOut(BaseModel):
    id: str
    resident_id: str
    device_id: str | None
    rule: str
    category: str  # person | device
    severity: str
    state: str  # open | acknowledged | resolved
    summary: str
    started_at: datetime  # when the condition began
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    assignee: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    occurrences: int
    last_occurred_at: datetime


class AlertEvent(BaseModel):
    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]


class AlertDetail(AlertOut):
    evidence: dict[str, Any]
    resolution_note: str | None
    timeline: list[AlertEvent]


class AssignBody(BaseModel):
    assignee: Name


class ResolveBody(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class AlertSettingsOut(BaseModel):
    resident_id: str
    own: ResidentAlertSettings  # what was set for this resident
    effective: dict[str, Any]  # what the rules use: own settings over the service defaults


def actor_of(user: User) -> str:
    return f"{user.role.value}:{user.username}"


def alerts_router(defaults: RuleLimits, alerting: Alerting) -> APIRouter:
    """`/api/v1/alerts...` and `/api/v1/residents/{id}/alert-settings`."""
    router = APIRouter(prefix="/api/v1", tags=["alerts"])

    @router.get("/alerts", response_model=list[AlertOut])
    def list_alerts(
        conn: DbConn, user: DispatcherUser,
        state: str | None = Query(None, description="comma-separated: open, acknowledged, resolved"),
        resident_id: str | None = None, category: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict]:
        """Alerts of your districts' residents, newest first."""
        states = [s.strip() for s in state.split(",") if s.strip()] if state else None
        return alert_queries.list_alerts(conn, states, resident_id, limit, category, user.scope.districts)

    @router.get("/alerts/{alert_id}", response_model=AlertDetail)
    def get_alert(alert_id: str, conn: DbConn, user: DispatcherUser) -> dict:
        """One alert with its evidence and timeline; 404 for one of another district."""
        return alert_queries.get_alert(conn, alert_id, user.scope.districts)

    @router.post("/alerts/{alert_id}/acknowledge", response_model=AlertDetail)
    def acknowledge(alert_id: str, conn: DbConn, user: DispatcherUser) -> dict:
        """Acknowledge an open alert (409 otherwise)."""
        alert_queries.get_alert(conn, alert_id, user.scope.districts)  # 404: not yours
        actions.acknowledge(conn, alerting, alert_id, actor_of(user))
        return alert_queries.get_alert(conn, alert_id, user.scope.districts)

    @router.post("/alerts/{alert_id}/assign", response_model=AlertDetail)
    def assign(alert_id: str, body: AssignBody, conn: DbConn, user: DispatcherUser) -> dict:
        """Give an unresolved alert to someone (409 when resolved)."""
        alert_queries.get_alert(conn, alert_id, user.scope.districts)  # 404: not yours
        actions.assign(conn, alerting, alert_id, body.assignee, actor_of(user))
        return alert_queries.get_alert(conn, alert_id, user.scope.districts)

    @router.post("/alerts/{alert_id}/resolve", response_model=AlertDetail)
    def resolve(alert_id: str, conn: DbConn, user: DispatcherUser, body: ResolveBody | None = None) -> dict:
        """Resolve an alert with a note (409 when already resolved)."""
        alert_queries.get_alert(conn, alert_id, user.scope.districts)  # 404: not yours
        actions.resolve(conn, alerting, alert_id, actor_of(user), body.note if body else None)
        return alert_queries.get_alert(conn, alert_id, user.scope.districts)

    @router.get("/residents/{resident_id}/alert-settings", response_model=AlertSettingsOut)
    def get_settings(resident_id: str, conn: DbConn, user: DispatcherUser) -> AlertSettingsOut:
        """A resident's own alert thresholds and those in force."""
        residents.get(conn, resident_id, user.scope.districts)
        return _settings_out(resident_id, stored_settings(conn, resident_id), defaults)

    @router.put("/residents/{resident_id}/alert-settings", response_model=AlertSettingsOut)
    def put_settings(
        resident_id: str, body: ResidentAlertSettings, conn: DbConn, user: DispatcherUser
    ) -> AlertSettingsOut:
        """Replace a resident's own alert thresholds (fields left out use the defaults)."""
        residents.get(conn, resident_id, user.scope.districts)
        check_ranges(defaults.override(body.overrides()))
        save_settings(conn, resident_id, body, actor_of(user))
        return _settings_out(resident_id, body, defaults)

    return router


def check_ranges(limits: RuleLimits) -> None:
    """Invalid when a resident's low limit would not be below their high limit."""
    for low, high in (("hr_low", "hr_high"), ("rr_low", "rr_high")):
        if getattr(limits, low) >= getattr(limits, high):
            raise Invalid(f"{low}: must be below {high} ({getattr(limits, high)})")


def _settings_out(resident_id: str, own: ResidentAlertSettings, defaults: RuleLimits) -> AlertSettingsOut:
    limits = defaults.override(own.overrides())
    effective = {name: getattr(limits, name) for name in PER_RESIDENT}
    for name in ("night_start", "night_end"):
        effective[name] = effective[name].isoformat("minutes")
    return AlertSettingsOut(resident_id=resident_id, own=own, effective=effective)
