"""What the alert flows need besides their transaction: the repositories, who is on site, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from homecare.notify.model import Reannounce
from services.telemetry.store import alerts, rule_state
from services.telemetry.store.memory import MemoryRepositories
from services.telemetry.usecases.outside import provider_on_site
from services.telemetry.usecases.ports import AlertRepository, OnSite, Repositories, RuleStateRepository


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
    # Which alerts are announced again while nobody acknowledges them, and how often.
    reannounce: Reannounce = field(default_factory=lambda: Reannounce(timedelta(minutes=5)))


def in_memory(clock: Callable[[], datetime] = utc_now, **config: Any) -> Alerting:
    """The alert flows on the in-memory repositories (rule tests): no database, and nobody on site
    unless `config` says otherwise."""
    config.setdefault("on_site", lambda conn, resident_id: False)
    return Alerting(repos=MemoryRepositories(clock), clock=clock, **config)
