"""What every use case needs besides its transaction: the repositories, policy, matching weights, a
clock, lookups."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from homecare.buttons import StuckRule
from homecare.notify.model import Reannounce
from homecare.notify.settings import NotifySettings

from ..domain.matching import MatchWeights
from ..domain.policy import DispatchPolicy
from ..domain.presence import PRESENCE_TIMEOUT
from ..settings import DispatchSettings
from ..store import devices, events, notices, offers, outbox, plans, providers, requests, residents, shifts, timeline
from ..store.memory import MemoryRepositories
from .ports import (
    DeviceRepository,
    EventRepository,
    NoticeRepository,
    OfferRepository,
    OutboxRepository,
    PlanRepository,
    ProviderRepository,
    Repositories,
    RequestRepository,
    ResidentDirectory,
    ShiftRepository,
    TimelineRepository,
    Tx,
)

log = logging.getLogger(__name__)

ButtonLookup = Callable[[Tx, str], str | None]
# A device applied a `config` command: the registry's expectations follow (the report interval).
Configured = Callable[[Tx, str, dict[str, Any]], None]


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


class PostgresRepositories:
    """The repositories on PostgreSQL: the store's modules, which fit the ports as they are."""

    requests: RequestRepository = requests
    offers: OfferRepository = offers
    providers: ProviderRepository = providers
    shifts: ShiftRepository = shifts
    events: EventRepository = events
    timeline: TimelineRepository = timeline
    outbox: OutboxRepository = outbox
    devices: DeviceRepository = devices
    residents: ResidentDirectory = residents
    notices: NoticeRepository = notices
    plans: PlanRepository = plans


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
    presence_timeout: timedelta = PRESENCE_TIMEOUT  # a provider not heard from this long is unreachable
    repos: Repositories = field(default_factory=PostgresRepositories)  # store.memory's run without a database
    stuck: StuckRule = field(default_factory=StuckRule)  # when a button is stuck (homecare/buttons.py)
    # Which escalated requests are announced again while nobody takes them, and how often.
    reannounce: Reannounce = field(default_factory=lambda: Reannounce(timedelta(minutes=5)))
    # Care plans (usecases/plans.py): the centre's time zone, how long before its window a planned
    # visit becomes a request, the day planner's time limit, and the evening hour (local) the next
    # day is planned at (None: only by hand).
    plan_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    plan_release_lead: timedelta = timedelta(minutes=120)
    plan_time_limit_s: float = 10.0
    plan_buffer_minutes: float = 0.0  # the planner keeps room at the end of windows for presses
    plan_reserve_share: float = 0.0  # the planner keeps this share of each shift on call for presses
    plan_evening_hour: int | None = 18


def in_memory(clock: Callable[[], datetime] = utc_now, **config: Any) -> Dispatch:
    """The use cases on the in-memory repositories (rule tests, the dispatch benchmark): no
    database; no devices' registry either, so no button is found and no config is applied, and
    no evening planning run, unless `config` says otherwise."""
    config.setdefault("find_button", lambda conn, resident_id: None)
    config.setdefault("configured", lambda conn, device_id, applied: None)
    # No evening planning run on its own thread: the repositories in memory serve one caller at a
    # time (a simulation plans its days when it means to).
    config.setdefault("plan_evening_hour", None)
    return Dispatch(clock=clock, repos=MemoryRepositories(clock), **config)


def from_settings(
    dispatch: DispatchSettings, notify: NotifySettings | None = None, stuck: StuckRule | None = None,
) -> Dispatch:
    """The use-case configuration from settings (`stuck`: from the shared ones, Settings)."""
    notify = notify or NotifySettings()
    return Dispatch(
        reannounce=notify.reannounce(),
        policy=dispatch.dispatch_policy(),
        weights=dispatch.match_weights(),
        fairness_window=timedelta(hours=dispatch.fairness_window_h),
        requeue=timedelta(seconds=dispatch.requeue_s),
        stuck=stuck or StuckRule(),
        presence_timeout=timedelta(seconds=dispatch.presence_timeout_s),
        plan_zone=dispatch.plan_zone(),
        plan_release_lead=timedelta(minutes=dispatch.plan_release_lead_minutes),
        plan_time_limit_s=dispatch.plan_time_limit_s,
        plan_buffer_minutes=dispatch.plan_buffer_minutes,
        plan_reserve_share=dispatch.plan_reserve_share,
        plan_evening_hour=dispatch.plan_evening_hour,
    )
