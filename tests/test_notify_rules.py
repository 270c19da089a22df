"""The notification decisions without I/O: routing by service, severity, district and trigger,
family contacts only with consent, retries and back-off, and re-announcing (dispatch's escalated
emergencies and telemetry's critical alerts) on the in-memory repositories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from homecare.contract.models import Service
from homecare.notify.model import (
    FAILED,
    PENDING,
    SENT,
    Delivery,
    FamilyContact,
    Notice,
    RoutingRule,
    attempted,
    backoff,
    request_severity,
    route,
)
from homecare.notify.settings import NotifySettings
from services.dispatch.domain.requests import Status
from services.dispatch.store.memory import MemoryRepositories, MemoryTransactions
from services.dispatch.usecases import intake, progress
from services.dispatch.usecases.context import in_memory as dispatch_in_memory
from services.dispatch.workers.timers import TimerLoop
from services.telemetry.domain.lifecycle import SYSTEM
from services.telemetry.domain.rules.model import Finding, Rule, Severity
from services.telemetry.usecases import alert_actions
from services.telemetry.usecases.context import in_memory as telemetry_in_memory
from tests.dispatch.test_rules_in_memory import HOME, north

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def notice(**kw) -> Notice:
    values = dict(trigger="alert.raised", subject_id="al-1", severity="critical", service="alert",
                  resident_id="res-1", title="t", text="x", district="North")
    values.update(kw)
    return Notice(**values)


# -- routing ---------------------------------------------------------------------------------

def test_a_rule_matches_by_each_list_it_has_and_an_empty_list_matches_all():
    rule = RoutingRule(services=["emergency"], severities=["critical"], districts=["North"], channel="email",
                       recipients=["oncall@example.org"])
    assert rule.matches(notice(service="emergency"))
    assert not rule.matches(notice(service="meal"))
    assert not rule.matches(notice(service="emergency", severity="high"))
    assert not rule.matches(notice(service="emergency", district="South"))
    assert not rule.matches(notice(service="emergency", district=None))
    anything = RoutingRule(channel="webhook", recipients=["+3612345"])
    assert anything.matches(notice(severity="low", district=None))
    by_trigger = RoutingRule(triggers=["alert.reannounced"], channel="email", recipients=["a@b.org"])
    assert not by_trigger.matches(notice()) and by_trigger.matches(notice(trigger="alert.reannounced"))


def test_routing_reaches_the_staff_once_and_family_only_where_the_resident_agreed():
    rules = [
        RoutingRule(severities=["critical"], channel="email", recipients=["oncall@example.org", "family"]),
        RoutingRule(channel="email", recipients=["oncall@example.org"]),  # the same address again: once
        RoutingRule(severities=["critical"], channel="webhook", recipients=["+3611111", "family"]),
        RoutingRule(severities=["low"], channel="email", recipients=["nobody@example.org"]),
    ]
    family = [FamilyContact("Agreed", "kid@example.org", "+3622222", consent=True),
              FamilyContact("Not asked", "other@example.org", "+3633333", consent=False),
              FamilyContact("No mail", None, None, consent=True)]
    got = {(d.channel, d.to, d.family) for d in route(notice(), rules, family)}
    assert got == {("email", "oncall@example.org", False), ("email", "kid@example.org", True),
                   ("webhook", "+3611111", False), ("webhook", "+3622222", True)}
    assert route(notice(severity="medium"), rules[3:], family) == []


def test_rules_from_settings_are_validated_with_the_reason():
    with pytest.raises(ValidationError, match="channel"):
        NotifySettings(rules=[{"channel": "pigeon", "recipients": ["x"]}])
    with pytest.raises(ValidationError, match="recipients"):
        NotifySettings(rules=[{"channel": "email", "recipients": []}])
    with pytest.raises(ValidationError, match="control"):
        NotifySettings(rules=[{"channel": "email", "recipients": ["a\x00@b.org"]}])
    with pytest.raises(ValueError, match="unknown urgent"):
        NotifySettings(reannounce_severities=["urgent"]).reannounce()


def test_a_delivery_is_retried_with_a_doubling_wait_until_it_gives_up():
    d = Delivery("email", "a@b.org")
    d = attempted(d, "connection refused", max_attempts=3)
    assert (d.state, d.attempts, d.error) == (PENDING, 1, "connection refused")
    d = attempted(d, "connection refused", max_attempts=3)
    assert d.state == PENDING
    assert attempted(d, None, max_attempts=3).state == SENT
    assert attempted(d, "again", max_attempts=3).state == FAILED
    base, cap = timedelta(seconds=30), timedelta(minutes=5)
    assert [backoff(n, base, cap).total_seconds() for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 240, 300]


def test_an_emergency_is_critical_and_other_services_by_priority():
    assert request_severity("emergency", 1) == "critical"
    assert request_severity("mobility", 2) == "high"
    assert request_severity("meal", 3) == "medium"
    assert request_severity("bathing", 4) == "low"


# -- dispatch: escalation and re-announcing -----------------------------------------------------

class Dispatching:
    def __init__(self) -> None:
        self.now = T0
        self.ctx = dispatch_in_memory(lambda: self.now)
        self.repos: MemoryRepositories = self.ctx.repos  # type: ignore[assignment]
        self.timers = TimerLoop(MemoryTransactions(), self.ctx)
        self.repos.residents.add("res-1", HOME, "Huangpu")

    def kinds(self, rid: str) -> list[str]:
        return [e.kind for e in self.repos.timeline.entries(None, rid)]

    def notices(self, rid: str) -> list[str]:
        return [n.trigger for n in self.repos.notices.queued if n.subject_id == rid]


def test_an_escalated_emergency_is_noticed_and_announced_again_until_someone_takes_it():
    w = Dispatching()
    w.repos.providers.insert(None, "p-off", "Off", ["emergency"], north(1), 1, on_shift=False)
    rid = intake.phoned(None, w.ctx, "res-1", Service.EMERGENCY, None, "d").request_id
    assert w.repos.requests.load(None, rid).status is Status.ESCALATED  # nobody on shift
    first = w.repos.notices.queued[-1]
    assert (first.trigger, first.severity, first.service, first.district) == (
        "request.escalated", "critical", "emergency", "Huangpu")
    assert first.path == f"/requests/{rid}"

    w.now += timedelta(minutes=4, seconds=59)
    assert w.timers.tick()["reannounced"] == 0  # not yet: every 5 minutes by default
    w.now += timedelta(seconds=1)
    assert w.timers.tick()["reannounced"] == 1
    assert w.kinds(rid)[-1] == "reannounced"
    assert w.notices(rid) == ["request.escalated", "request.reannounced"]
    assert w.timers.tick()["reannounced"] == 0  # once per interval
    w.now += timedelta(minutes=5)
    assert w.timers.tick()["reannounced"] == 1

    w.repos.providers.set_on_shift(None, "p-off", True)
    progress.assign_manually(None, w.ctx, rid, "p-off", "dispatcher:ann")
    w.now += timedelta(minutes=10)
    assert w.timers.tick()["reannounced"] == 0  # taken: quiet
    assert w.notices(rid) == ["request.escalated", "request.reannounced", "request.reannounced"]


def test_an_escalated_meal_is_noticed_once_and_not_announced_again():
    w = Dispatching()
    rid = intake.phoned(None, w.ctx, "res-1", Service.MEAL, None, "d").request_id  # nobody qualified
    assert w.repos.requests.load(None, rid).status is Status.ESCALATED
    assert [(n.trigger, n.severity) for n in w.repos.notices.queued] == [("request.escalated", "medium")]
    w.now += timedelta(hours=1)
    assert w.timers.tick()["reannounced"] == 0


# -- telemetry: alerts raised and re-announced ------------------------------------------------------

def finding(rule: Rule, severity: Severity, occurrence: str, device: str | None = None) -> Finding:
    return Finding(rule=rule, severity=severity, resident_id="res-1", device_id=device, started_at=T0,
                   summary=f"{rule.value} found", occurrence=occurrence)


def test_every_alert_opened_is_a_notice_device_faults_alike_and_a_recurrence_is_not():
    now = [T0]
    ctx = telemetry_in_memory(lambda: now[0])
    alerts = ctx.repos.alerts
    fall = alerts.raise_finding(None, finding(Rule.FALL, Severity.CRITICAL, "f1"))
    battery = alerts.raise_finding(None, finding(Rule.BATTERY_LOW, Severity.LOW, "b1", device="btn-1"))
    alerts.raise_finding(None, finding(Rule.FALL, Severity.CRITICAL, "f2"))  # recurs on the open alert
    got = [(n.trigger, n.subject_id, n.severity, n.service) for n in alerts.notices]  # type: ignore[attr-defined]
    assert got == [("alert.raised", fall, "critical", "alert"), ("alert.raised", battery, "low", "alert")]


def test_a_critical_alert_is_announced_again_until_acknowledged():
    now = [T0]
    ctx = telemetry_in_memory(lambda: now[0])
    alerts = ctx.repos.alerts
    fall = alerts.raise_finding(None, finding(Rule.FALL, Severity.CRITICAL, "f1"))
    alerts.raise_finding(None, finding(Rule.HEART_RATE, Severity.HIGH, "h1"))  # high: not re-announced
    now[0] += timedelta(minutes=4)
    assert alert_actions.reannounce_due(None, ctx) == []
    now[0] += timedelta(minutes=1)
    assert alert_actions.reannounce_due(None, ctx) == [fall]
    assert alert_actions.reannounce_due(None, ctx) == []  # once per interval
    events = [e for e in alerts.events if e["alert_id"] == fall]  # type: ignore[attr-defined]
    assert events[-1]["kind"] == "reannounced" and events[-1]["detail"]["count"] == 1
    assert events[-1]["actor"] == SYSTEM
    assert alerts.notices[-1].trigger == "alert.reannounced"  # type: ignore[attr-defined]

    now[0] += timedelta(minutes=5)
    alert_actions.acknowledge(None, ctx, fall, "dispatcher:ann")
    now[0] += timedelta(minutes=30)
    assert alert_actions.reannounce_due(None, ctx) == []


def test_an_assigned_critical_alert_is_not_announced_again():
    now = [T0]
    ctx = telemetry_in_memory(lambda: now[0])
    fall = ctx.repos.alerts.raise_finding(None, finding(Rule.FALL, Severity.CRITICAL, "f1"))
    alert_actions.assign(None, ctx, fall, "nurse Li", "dispatcher:ann")
    now[0] += timedelta(hours=1)
    assert alert_actions.reannounce_due(None, ctx) == []


def test_the_board_sounds_again_for_each_reannouncement():
    from console.alerts import alert_row
    from console.board import board_row

    request = {"id": "r-1", "status": "escalated", "service": "emergency", "created_at": T0}
    keys = {board_row({**request, "reannounced": n}, None)["alarm_key"] for n in (0, 1, 2)}
    assert len(keys) == 3 and board_row(request, None)["alarm"]
    alert = {"id": "al-1", "state": "open", "severity": "critical"}
    assert alert_row(alert, None)["alarm_key"] != alert_row({**alert, "reannounced": 1}, None)["alarm_key"]
