"""Whether the platform keeps up, for the people on shift: `GET /api/v1/system/consumers` (every
durable consumer of the internal log: lag, pending, the oldest waiting message, stuck since) and
`GET /api/v1/system/incidents` (each time one got stuck, and when it recovered); dispatchers and
admins. A stuck consumer is a delay dispatchers must know of: presses reach them late, or not yet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from homecare.api.deps import DispatcherUser
from homecare.api.guard import INT64
from homecare.api.openapi import ERROR

from . import incidents_data as incidents
from .consumer_watch import ConsumerWatch, Snapshot

LIMIT_DEFAULT = 50
LIMIT_MAX = 500


class ConsumerOut(BaseModel):
    """One durable consumer at the latest check."""

    consumer: str = Field(description="The durable consumer (as in metrics and dead letters).")
    stream: str
    title: str = Field(description="What it carries, for people.")
    lag: int = Field(description="Messages in the stream not yet delivered to it.")
    ack_pending: int = Field(description="Messages delivered and not yet acknowledged.")
    oldest_unacked_s: float = Field(description="Age of the oldest message not yet acknowledged (0 when none).")
    stuck_after_s: float = Field(description="Its limit: older than this, it is stuck.")
    stuck: bool
    stuck_since: datetime | None = Field(description="When its oldest waiting message passed the limit.")


class ConsumersOut(BaseModel):
    checked_at: datetime
    consumers: list[ConsumerOut]
    notices: list[str] = Field(description="What the console's banner says: one line per stuck consumer, and one"
                               " per database job that needs an administrator (TimescaleDB's policies).")


class IncidentOut(BaseModel):
    """A time a consumer was stuck."""

    id: int
    consumer: str
    title: str
    stuck_after_s: float
    raised_at: datetime = Field(description="When its oldest waiting message passed the limit.")
    noticed_at: datetime = Field(description="When the console recorded it.")
    cleared_at: datetime | None = Field(description="When it was seen to keep up again; null while stuck.")
    duration_s: float | None = Field(description="From raised to cleared; null while stuck.")
    peak_age_s: float = Field(description="The oldest waiting message, at worst.")
    peak_lag: int = Field(description="Messages not yet delivered, at worst.")


def consumers_out(snapshot: Snapshot, other_notices: list[str] | None = None) -> ConsumersOut:
    return ConsumersOut(
        checked_at=snapshot.checked_at, notices=snapshot.notices() + (other_notices or []),
        consumers=[ConsumerOut(
            consumer=c.consumer, stream=c.stream, title=c.title, lag=c.lag, ack_pending=c.ack_pending,
            oldest_unacked_s=c.oldest_unacked_s, stuck_after_s=c.stuck_after_s, stuck=c.stuck,
            stuck_since=snapshot.stuck_since.get(c.consumer) if c.stuck else None,
        ) for c in snapshot.consumers],
    )


def incident_out(row: dict[str, Any]) -> IncidentOut:
    cleared = row["cleared_at"]
    return IncidentOut(
        **{k: row[k] for k in ("id", "consumer", "title", "stuck_after_s", "raised_at", "noticed_at",
                               "cleared_at", "peak_age_s", "peak_lag")},
        duration_s=round((cleared - row["raised_at"]).total_seconds(), 1) if cleared else None,
    )


def recent_incidents(watch: ConsumerWatch, limit: int, before: int | None = None) -> list[IncidentOut]:
    """This deployment's incidents, newest first."""
    with watch.pool.connection() as conn:
        rows = incidents.recent(conn, watch.log.namespace, limit, before)
    return [incident_out(r) for r in rows]


_UNAVAILABLE = {503: {"description": "The internal log is not reachable",
                      "content": {"application/json": {"schema": ERROR}}}}


def system_router(watch: ConsumerWatch, other_notices: Callable[[], list[str]] = lambda: []) -> APIRouter:
    """The API's routes over the console's watch; `other_notices`: the banner's other lines (the
    database jobs' problems), which the pages' banner refreshes from here too."""
    router = APIRouter(prefix="/api/v1/system", tags=["system"])

    @router.get("/consumers", response_model=ConsumersOut, responses=_UNAVAILABLE)
    def list_consumers(_: DispatcherUser) -> ConsumersOut:
        """Every durable consumer of the internal log at the latest check (a few seconds old at most)."""
        return consumers_out(watch.current(), other_notices())

    @router.get("/incidents", response_model=list[IncidentOut])
    def list_incidents(
        _: DispatcherUser,
        before: Annotated[int | None, Query(ge=1, le=INT64, description=(
            "Only older ones: the last id of the previous page."))] = None,
        limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
    ) -> list[IncidentOut]:
        """Times a consumer was stuck, newest first, a page at a time."""
        return recent_incidents(watch, limit, before)

    return router
