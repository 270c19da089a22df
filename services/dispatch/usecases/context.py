"""What every use case needs besides a connection: policy, matching weights, a clock, lookups."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from homecare.errors import NotFound
from homecare.residents import store as residents

from ..domain.matching import Location, MatchWeights
from ..domain.policy import DispatchPolicy
from ..settings import DispatchSettings

log = logging.getLogger(__name__)

ButtonLookup = Callable[[psycopg.Connection, str], str | None]
# A device applied a `config` command: the registry's expectations follow (the report interval).
Configured = Callable[[psycopg.Connection, str, dict[str, Any]], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def button_of(conn: psycopg.Connection, resident_id: str) -> str | None:
    """The resident's button, through the gateway's registry; None when it has none (yet)."""
    from gateway.interface import devices_of  # the gateway owns devices; imported when first needed

    try:
        with conn.transaction():  # a savepoint: a failing lookup must not abort the use case
            devices = devices_of(conn, resident_id)
    except psycopg.Error:
        log.exception("looking up the devices of %s failed", resident_id)
        return None
    buttons = sorted(d.id for d in devices if getattr(d, "kind", None) == "button")
    return buttons[0] if buttons else None


def device_configured(conn: psycopg.Connection, device_id: str, config: dict[str, Any]) -> None:
    """The device acknowledged a `config` command: the gateway's registry now expects its
    telemetry at the new interval (its silence sweep reads it)."""
    interval = config.get("report_interval_s")
    if interval:
        from gateway.interface import set_report_interval  # the gateway owns devices

        set_report_interval(conn, device_id, interval)


def resident_location(conn: psycopg.Connection, resident_id: str) -> Location | None:
    """Where the resident lives, or None when the directory does not know them."""
    return resident_home(conn, resident_id)[0]


def resident_home(conn: psycopg.Connection, resident_id: str) -> tuple[Location | None, str | None]:
    """(where the resident lives, their district), or (None, None) when the directory does not know them."""
    try:
        resident = residents.get(conn, resident_id)
    except NotFound:
        return None, None
    return Location(resident.location.lat, resident.location.lon), resident.district


@dataclass
class Dispatch:
    """The configuration of the use cases, built once by bootstrap."""

    policy: DispatchPolicy = field(default_factory=DispatchPolicy.default)
    weights: MatchWeights = field(default_factory=MatchWeights)
    fairness_window: timedelta = timedelta(hours=12)
    clock: Callable[[], datetime] = utc_now
    find_button: ButtonLookup = button_of
    configured: Configured = device_configured
    requeue: timedelta = timedelta(seconds=3)  # a queued request is offered again this often


def from_settings(dispatch: DispatchSettings) -> Dispatch:
    """The use-case configuration from settings."""
    return Dispatch(
        policy=dispatch.dispatch_policy(),
        weights=dispatch.match_weights(),
        fairness_window=timedelta(hours=dispatch.fairness_window_h),
        requeue=timedelta(seconds=dispatch.requeue_s),
    )
