"""Providers move, work shifts and show they are there: positions and heartbeats reported by their
app, planned shifts applied by the clock (domain/presence.py says what a sign of life does)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from homecare.errors import Invalid

from ..domain.matching import Location
from .context import Dispatch
from .ports import Tx

log = logging.getLogger(__name__)


def move(conn: Tx, ctx: Dispatch, provider_id: str, location: Location, *, by_provider: bool = False) -> dict[str, Any]:
    """Where the provider is now; the next match measures travel from here. Reported by the
    provider's own app (`by_provider`), it is a sign of life too."""
    now = ctx.clock()
    if by_provider:
        ctx.repos.providers.seen(conn, provider_id, now)
    return ctx.repos.providers.set_location(conn, provider_id, location, now)


def heartbeat(conn: Tx, ctx: Dispatch, provider_id: str) -> dict[str, Any]:
    """The provider's app is there (it says so every half minute or so); an unreachable provider
    is offered jobs again from now. NotFound for an unknown provider."""
    return ctx.repos.providers.seen(conn, provider_id, ctx.clock())


def signs_of_life(conn: Tx, ctx: Dispatch, provider_id: str | None, now: datetime) -> None:
    """A provider acting for itself (an answer, a step) is there; `None`: a dispatcher or an
    admin acted, which says nothing of the provider's app."""
    if provider_id is not None:
        ctx.repos.providers.seen(conn, provider_id, now)


def place(conn: Tx, ctx: Dispatch, provider_id: str, districts: list[str]) -> dict[str, Any]:
    """Place a provider in the districts it serves (none: not placed, it serves every district;
    domain/districts.py). NotFound for an unknown provider."""
    return ctx.repos.providers.set_districts(conn, provider_id, sorted({d.strip() for d in districts if d.strip()}))


def set_shift(conn: Tx, ctx: Dispatch, provider_id: str, on_shift: bool) -> dict[str, Any]:
    """Start or end a shift by hand (the provider or an admin); going on shift counts as a sign of life."""
    return ctx.repos.providers.set_on_shift(conn, provider_id, on_shift, ctx.clock())


def plan_shift(
    conn: Tx, ctx: Dispatch, provider_id: str, starts_at: datetime, ends_at: datetime
) -> dict[str, Any]:
    """Plan a shift; the timer puts the provider on shift at its start and off at its end."""
    if ends_at <= starts_at:
        raise Invalid("ends_at: a shift must end after it starts")
    if ends_at <= ctx.clock():
        raise Invalid("ends_at: the shift is already over")
    ctx.repos.providers.get(conn, provider_id)  # NotFound for an unknown provider
    return ctx.repos.shifts.add(conn, provider_id, starts_at, ends_at)


def apply_shift_start(conn: Tx, ctx: Dispatch, shift: dict[str, Any], now: datetime) -> bool:
    """A planned shift begins (timer; the shift row is locked)."""
    ctx.repos.providers.set_on_shift(conn, shift["provider_id"], True, now)
    ctx.repos.shifts.mark(conn, shift["id"], "started_at", now)
    log.info("provider %s on shift (planned)", shift["provider_id"])
    return True


def apply_shift_end(conn: Tx, ctx: Dispatch, shift: dict[str, Any], now: datetime) -> bool:
    """A planned shift ends; back-to-back shifts keep the provider on. Jobs in hand are finished."""
    ctx.repos.shifts.mark(conn, shift["id"], "ended_at", now)
    if ctx.repos.shifts.covering(conn, shift["provider_id"], now, other_than=shift["id"]):
        return False
    ctx.repos.providers.set_on_shift(conn, shift["provider_id"], False, now)
    log.info("provider %s off shift (planned)", shift["provider_id"])
    return True
