"""What the alert flows need besides their transaction: the repositories, who is on site, which
devices never connected, a clock, the self-test schedule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from homecare.buttons import StuckRule
from homecare.notify.model import Reannounce
from services.telemetry.domain.rules.selftest import SelftestPolicy
from services.telemetry.store import alerts, rule_state
from services.telemetry.store.memory import MemoryRepositories
from services.telemetry.usecases.outside import ask_for_selftest, devices_never_connected, provider_on_site
from services.telemetry.usecases.ports import (
    AlertRepository,
    AskSelftest,
    OnSite,
    Repositories,
    RuleStateRepository,
    Unconnecteds,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


class PostgresRepositories:
    """The repositories on PostgreSQL: the store's modules, which fit the ports as they are."""

    alerts: AlertRepository = alerts
    rule_state: RuleStateRepository = rule_state


@dataclass
class Alerting:
    """The configuration of the alert flows, built once by bootstrap."""

    repos: Repositories = field(default_factory=PostgresRepositories)
    on_site: OnSite = provider_on_site
    clock: Callable[[], datetime] = utc_now
    stuck: StuckRule = field(default_factory=StuckRule)  # when a button is stuck (homecare/buttons.py)
    selftests: SelftestPolicy = field(default_factory=SelftestPolicy)  # how often each kind tests itself
    unconnected: Unconnecteds = devices_never_connected
    ask_selftest: AskSelftest = ask_for_selftest  # chases a device that missed its self-test
    never_connected_after: timedelta = timedelta(hours=24)
    # Which alerts are announced again while nobody acknowledges them, and how often.
    reannounce: Reannounce = field(default_factory=lambda: Reannounce(timedelta(minutes=5)))


def in_memory(clock: Callable[[], datetime] = utc_now, **config: Any) -> Alerting:
    """The alert flows on the in-memory repositories (rule tests): no database, nobody on site, no
    device left unconnected and no command sent unless `config` says otherwise."""
    config.setdefault("on_site", lambda conn, resident_id: False)
    config.setdefault("unconnected", lambda conn, before: [])
    config.setdefault("ask_selftest", lambda conn, device_id: None)
    return Alerting(repos=MemoryRepositories(clock), clock=clock, **config)
