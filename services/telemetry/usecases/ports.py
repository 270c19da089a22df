"""What the alert flows need of storage, as interfaces: the repositories they reach through their
context (`Alerting.repos`).

As in dispatch, every method takes its transaction first (`conn`): a psycopg connection for the
PostgreSQL repositories (the store's modules `alerts` and `rule_state`, which fit these interfaces
as they are), anything for the in-memory ones (`store.memory`). The contract tests
(tests/telemetry/test_alert_repositories.py) hold both to one behaviour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from homecare.notify.model import Notice
from services.telemetry.domain.lifecycle import AlertState
from services.telemetry.domain.rules.bed_exit import Presence
from services.telemetry.domain.rules.button import ButtonKey
from services.telemetry.domain.rules.device import DeviceStatus
from services.telemetry.domain.rules.episodes import Episode
from services.telemetry.domain.rules.model import Clearance, Finding
from services.telemetry.domain.rules.selftest import SelftestRecord

Tx = Any
# Whether a provider is at the resident's home now (dispatch knows).
OnSite = Callable[[Tx, str], bool]


@dataclass(frozen=True)
class Unconnected:
    """A device provisioned before a given time that never connected (the gateway knows)."""

    device_id: str
    resident_id: str
    kind: str
    provisioned_at: datetime


Unconnecteds = Callable[[Tx, datetime], list[Unconnected]]
# Ask a device for a self-test now (dispatch sends commands); the command id, or None.
AskSelftest = Callable[[Tx, str], str | None]


class AlertRepository(Protocol):
    def raise_finding(self, conn: Tx, finding: Finding) -> str | None:
        """Open an alert for a finding, or record it on the unresolved alert of its rule and
        subject; the alert id, or None when this occurrence was recorded before."""
        ...

    def clear(self, conn: Tx, clearance: Clearance) -> str | None:
        """Resolve the unresolved device alert a clearance ends; its id or None."""
        ...

    def load_state(self, conn: Tx, alert_id: str) -> AlertState: ...
    def save_state(self, conn: Tx, alert: AlertState) -> None: ...
    def add_event(
        self, conn: Tx, alert_id: str, actor: str, kind: str, detail: dict[str, Any] | None = None,
        occurrence: str | None = None, at: datetime | None = None,
    ) -> bool: ...
    def notify(self, conn: Tx, alert_id: str) -> None: ...
    # Notices to people outside the console (homecare/notify), in the caller's transaction.
    def put_notice(self, conn: Tx, notice: Notice) -> None: ...
    def reannounce_due(
        self, conn: Tx, now: datetime, every: timedelta, severities: list[str], limit: int = 50,
    ) -> list[dict[str, Any]]: ...
    def mark_reannounced(self, conn: Tx, alert_id: str, at: datetime) -> int: ...


class RuleStateRepository(Protocol):
    """The rules' state, timers included: bed presence, device liveness, episodes, self-tests,
    button keys."""

    def presence(self, conn: Tx, device_id: str, resident_id: str) -> Presence: ...
    def save_presence(self, conn: Tx, value: Presence, due_at: datetime | None) -> None: ...
    def due_presences(self, conn: Tx, now: datetime, limit: int = 500) -> list[Presence]: ...
    def device_status(self, conn: Tx, device_id: str) -> DeviceStatus | None: ...
    def save_device_status(self, conn: Tx, value: DeviceStatus, due_at: datetime | None) -> None: ...
    def clear_device_due(self, conn: Tx, device_id: str) -> None: ...
    def due_devices(self, conn: Tx, now: datetime, limit: int = 500) -> list[DeviceStatus]: ...
    def button_key(self, conn: Tx, device_id: str, service: str) -> ButtonKey | None: ...
    def save_button_key(self, conn: Tx, value: ButtonKey) -> None: ...
    def forget_button_key(self, conn: Tx, device_id: str, service: str) -> None: ...
    def due_button_keys(self, conn: Tx, now: datetime, limit: int = 500) -> list[ButtonKey]: ...
    def stuck_keys_left(self, conn: Tx, device_id: str) -> int: ...
    def episode(self, conn: Tx, rule: str, subject: str) -> Episode | None: ...
    def save_episode(self, conn: Tx, rule: str, subject: str, value: Episode) -> None: ...
    def selftest(self, conn: Tx, device_id: str) -> SelftestRecord | None: ...
    def save_selftest(self, conn: Tx, value: SelftestRecord) -> None: ...
    def due_selftests(self, conn: Tx, now: datetime, limit: int = 500) -> list[SelftestRecord]: ...


class Repositories(Protocol):
    @property
    def alerts(self) -> AlertRepository: ...
    @property
    def rule_state(self) -> RuleStateRepository: ...
