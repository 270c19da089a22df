"""Every branch of the alert flows (bed exits at night, falls, batteries, device liveness, their
timers, and what people do with an alert) on the in-memory repositories: no database, no broker.
The same use cases run on PostgreSQL in test_alert_events.py; test_alert_repositories.py holds
both stores to one behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from homecare.errors import Conflict, NotFound
from homecare.internal import DeviceEvent, DeviceState
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.selftest import SelftestPolicy
from services.telemetry.store.memory import MemoryRepositories
from services.telemetry.usecases import alert_actions, event_rules
from services.telemetry.usecases.context import in_memory
from services.telemetry.usecases.ports import Unconnected

LIMITS = RuleLimits()  # night 22:00-06:00 Shanghai, 30 minutes out of bed, 5 minutes offline grace
NIGHT = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 02:00 in Shanghai
DAY = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


@dataclass
class World:
    now: datetime = NIGHT
    on_site: set[str] = field(default_factory=set)  # residents with a provider at the door

    def __post_init__(self) -> None:
        self.ctx = in_memory(lambda: self.now, on_site=lambda conn, resident: resident in self.on_site)
        self.repos: MemoryRepositories = self.ctx.repos  # type: ignore[assignment]
        self._n = 0

    def event(self, type_: str, ts: datetime, device: str = "bed-1", **extra) -> DeviceEvent:
        self._n += 1
        kind = extra.pop("device_kind", "bed")
        return DeviceEvent(device_id=device, device_kind=kind, resident_id="res-1", event_id=f"ev{self._n}", ts=ts,
                           type=type_, received_at=ts, **extra)

    def bed(self, type_: str, ts: datetime) -> str | None:
        return event_rules.on_bed_event(None, self.ctx, self.event(type_, ts), LIMITS, self.now)

    def state(self, state: str, at: datetime, device: str = "bed-1", battery: float | None = None) -> list[str]:
        message = DeviceState(device_id=device, device_kind="bed", resident_id="res-1", state=state, at=at,
                              battery=battery)
        return event_rules.on_device_state(None, self.ctx, message, LIMITS, self.now)

    def timers(self, at: datetime) -> list[str]:
        self.now = at
        return event_rules.run_due(None, self.ctx, at, lambda conn, resident: LIMITS)

    def alert(self, alert_id: str) -> dict:
        return self.repos.alerts.rows[alert_id]


@pytest.fixture
def world() -> World:
    return World()


def test_a_night_exit_back_within_the_limit_is_quiet_and_a_late_return_alerts(world):
    assert world.bed("bed.exit", NIGHT) is None
    world.now = NIGHT + timedelta(minutes=29)
    assert world.bed("bed.entry", world.now) is None
    late_exit = NIGHT + timedelta(hours=1)
    world.bed("bed.exit", late_exit)
    world.now = late_exit + timedelta(minutes=31)
    alert_id = world.bed("bed.entry", world.now)
    assert alert_id and world.alert(alert_id)["rule"] == "night_bed_exit"
    assert "returned after 31 minutes" in world.alert(alert_id)["summary"]


def test_a_night_exit_not_back_alerts_when_its_timer_is_due_and_once(world):
    world.bed("bed.exit", NIGHT)
    assert world.timers(NIGHT + timedelta(minutes=29)) == []
    [raised] = world.timers(NIGHT + timedelta(minutes=31))
    assert "not back after 31 minutes" in world.alert(raised)["summary"]
    assert world.timers(NIGHT + timedelta(minutes=40)) == []  # the timer was cleared
    world.now = NIGHT + timedelta(minutes=45)
    assert world.bed("bed.entry", world.now) is None  # the same exit: its occurrence is recorded


def test_a_day_exit_never_alerts(world):
    world.now = DAY
    world.bed("bed.exit", DAY)
    assert world.timers(DAY + timedelta(hours=2)) == []


def test_an_exit_while_a_provider_is_on_site_does_not_alert_nor_does_one_attended_at_the_check(world):
    world.on_site.add("res-1")
    world.bed("bed.exit", NIGHT)
    world.on_site.clear()
    assert world.timers(NIGHT + timedelta(minutes=31)) == []  # attended when it left
    later = NIGHT + timedelta(hours=1)
    world.bed("bed.exit", later)
    world.on_site.add("res-1")
    assert world.timers(later + timedelta(minutes=31)) == []  # a provider is there at the check


def test_an_exit_during_a_visit_alerts_once_the_provider_has_left_and_the_resident_is_still_out(world):
    world.on_site.add("res-1")
    world.bed("bed.exit", NIGHT)
    assert world.repos.rule_state.presences["bed-1"][1] == NIGHT + timedelta(minutes=5)  # the next look
    assert world.timers(NIGHT + timedelta(minutes=5)) == []  # still there: look again later
    assert world.repos.rule_state.presences["bed-1"][1] == NIGHT + timedelta(minutes=10)
    world.on_site.clear()  # the visit is completed; the resident is still out of bed
    left = NIGHT + timedelta(minutes=10)
    assert world.timers(left) == []
    presence, due = world.repos.rule_state.presences["bed-1"]
    assert presence.visit_ended_at == left and due == left + timedelta(minutes=30, seconds=1)
    assert world.timers(left + timedelta(minutes=30)) == []
    [raised] = world.timers(due)  # the moment the absence exceeds the limit
    assert "after the provider's visit ended" in world.alert(raised)["summary"]


def test_an_exit_during_a_visit_back_in_bed_soon_after_it_is_quiet(world):
    world.on_site.add("res-1")
    world.bed("bed.exit", NIGHT)
    world.on_site.clear()
    world.timers(NIGHT + timedelta(minutes=5))
    world.now = NIGHT + timedelta(minutes=20)
    assert world.bed("bed.entry", world.now) is None
    assert world.timers(NIGHT + timedelta(hours=2)) == []


def test_an_exit_learnt_late_waits_for_the_entry_right_behind_it(world):
    exited = NIGHT - timedelta(minutes=40)
    world.bed("bed.exit", exited)  # delivered 40 minutes late
    (presence, due) = world.repos.rule_state.presences["bed-1"]
    assert due == NIGHT + timedelta(seconds=LIMITS.bed_exit_settle_s)
    world.bed("bed.entry", exited + timedelta(minutes=2))  # then the entry that followed it
    assert world.timers(NIGHT + timedelta(minutes=2)) == []


def test_a_fall_alerts_at_once_and_a_repeat_of_the_event_is_one_occurrence(world):
    event = world.event("fall.suspected", NIGHT, confidence=0.9)
    first = event_rules.on_fall(None, world.ctx, event, emergency_requested=True)
    assert world.alert(first)["rule"] == "fall_suspected"
    assert event_rules.on_fall(None, world.ctx, event, emergency_requested=True) is None
    second = event_rules.on_fall(None, world.ctx, world.event("fall.suspected", NIGHT + timedelta(minutes=1)), False)
    assert second == first and world.alert(first)["occurrences"] == 2


def test_offline_alerts_after_the_grace_time_and_clears_when_back(world):
    assert world.state("offline", NIGHT) == []
    assert world.timers(NIGHT + timedelta(minutes=4)) == []
    [raised] = world.timers(NIGHT + timedelta(minutes=6))
    assert world.alert(raised)["rule"] == "device_offline"
    assert world.state("offline", NIGHT) == []  # a repeat
    assert world.state("offline", NIGHT - timedelta(minutes=1)) == []  # an older one
    assert world.state("online", NIGHT + timedelta(minutes=8)) == [raised]
    assert world.alert(raised)["state"] == "resolved" and world.alert(raised)["resolved_by"] == "system"


def test_offline_announced_past_its_grace_alerts_at_once(world):
    world.now = NIGHT + timedelta(minutes=10)
    [raised] = world.state("offline", NIGHT, device="bed-2")
    assert world.alert(raised)["device_id"] == "bed-2"
    assert world.timers(NIGHT + timedelta(hours=1)) == []  # no timer left behind


def test_silent_and_battery_alerts_and_their_clearance_with_hysteresis(world):
    [silent] = world.state("silent", NIGHT, battery=0.5)
    assert world.alert(silent)["rule"] == "device_silent"
    [low, cleared] = sorted(world.state("online", NIGHT + timedelta(minutes=1), battery=0.1),
                            key=lambda a: world.alert(a)["rule"])
    assert world.alert(low)["rule"] == "battery_low" and cleared == silent
    assert world.state("online", NIGHT + timedelta(minutes=2), battery=0.25) == []  # between the levels
    assert world.state("online", NIGHT + timedelta(minutes=3), battery=0.35) == [low]
    button = world.event("battery.low", NIGHT, device="btn-1", device_kind="button", battery=0.12)
    [from_event] = event_rules.on_battery_low(None, world.ctx, button)
    assert world.alert(from_event)["device_id"] == "btn-1" and world.alert(from_event)["category"] == "device"


def test_people_acknowledge_assign_and_resolve_an_alert_in_that_order(world):
    alert_id = event_rules.on_fall(None, world.ctx, world.event("fall.suspected", NIGHT), False)
    alert_actions.acknowledge(None, world.ctx, alert_id, "dispatcher:a")
    with pytest.raises(Conflict):
        alert_actions.acknowledge(None, world.ctx, alert_id, "dispatcher:b")
    alert_actions.assign(None, world.ctx, alert_id, "Li Mei", "dispatcher:a")
    alert_actions.resolve(None, world.ctx, alert_id, "dispatcher:a", "she is fine")
    with pytest.raises(Conflict):
        alert_actions.resolve(None, world.ctx, alert_id, "dispatcher:a", "again")
    with pytest.raises(Conflict):
        alert_actions.assign(None, world.ctx, alert_id, "Wang", "dispatcher:a")
    assert [e["kind"] for e in world.repos.alerts.events_of(alert_id)] == [
        "opened", "acknowledged", "assigned", "resolved"]
    assert world.alert(alert_id)["resolution_note"] == "she is fine"
    assert world.repos.alerts.notified.count(alert_id) == 4
    with pytest.raises(NotFound):
        alert_actions.acknowledge(None, world.ctx, "al-none", "dispatcher:a")


def test_an_event_that_is_not_a_bed_event_is_refused(world):
    with pytest.raises(ValueError):
        event_rules.on_bed_event(None, world.ctx, world.event("fall.suspected", NIGHT), LIMITS, NIGHT)


# --- a stuck button (the rule: homecare/buttons.py) ---------------------------------------------


def _presses(world: World, gap_s: float, seconds: float, start: datetime, service: str = "meal",
             device: str = "btn-1") -> tuple[list[str], datetime]:
    """Presses every `gap_s` (device time) for `seconds`, handled as they come; the alerts changed."""
    changed, at = [], start
    for _ in range(round(seconds / gap_s)):
        at += timedelta(seconds=gap_s)
        world.now = at
        event = world.event("button.pressed", at, device=device, device_kind="button", service=service)
        changed += event_rules.on_button_pressed(None, world.ctx, event, LIMITS, world.now)
    return changed, at


def test_a_stuck_button_is_a_high_device_alert_cleared_once_its_presses_stop(world):
    raised, last = _presses(world, 0.25, 12, DAY)
    assert len(raised) == 1  # one alert, raised at the press that showed it, not once per press
    found = world.alert(raised[0])
    assert (found["rule"], found["category"], found["severity"]) == ("button_stuck", "device", "high")
    assert found["device_id"] == "btn-1" and found["subject"] == "btn-1"
    assert found["evidence"]["service"] == "meal" and found["evidence"]["presses"] >= 20
    assert found["evidence"]["rate_per_s"] >= 3.0 and "cannot call" in found["summary"]
    # Presses at a person's pace after the stuck run do not keep it open ...
    slow, last = _presses(world, 2.0, 20, last + timedelta(seconds=3))
    assert slow == [] and world.alert(raised[0])["state"] == "open"
    # ... and a minute after the last stuck press the system clears it.
    assert world.timers(DAY + timedelta(seconds=12 + 59)) == []
    assert world.timers(DAY + timedelta(seconds=12 + 61)) == raised
    cleared = world.alert(raised[0])
    assert cleared["state"] == "resolved" and cleared["resolved_by"] == "system"
    assert "no stuck presses" in cleared["resolution_note"]
    # Stuck again later: a new alert.
    again, _ = _presses(world, 0.2, 8, last + timedelta(minutes=5))
    assert len(again) == 1 and again != raised


def test_a_frantic_resident_raises_no_device_alert(world):
    at = DAY
    for _ in range(5):  # 3 presses a second for 3 s, then a pause of 2 s
        changed, at = _presses(world, 1 / 3, 3, at)
        assert changed == []
        at += timedelta(seconds=2)
    assert world.repos.alerts.rows == {}


def test_a_stuck_press_redelivered_is_not_counted_twice_and_keys_are_apart(world):
    _, last = _presses(world, 0.25, 3, DAY)
    key = world.repos.rule_state.button_keys[("btn-1", "meal")]
    redelivered = DeviceEvent(device_id="btn-1", device_kind="button", resident_id="res-1",
                              event_id=key.last_event_id, ts=last, type="button.pressed", received_at=last,
                              service="meal")
    assert event_rules.on_button_pressed(None, world.ctx, redelivered, LIMITS, world.now) == []
    assert world.repos.rule_state.button_keys[("btn-1", "meal")] == key
    # Another key of the same button is another run: interleaved presses of two services at
    # 2 a second each are not one stuck key.
    at = last
    for n in range(40):
        at += timedelta(seconds=0.25)
        event = world.event("button.pressed", at, device="btn-2", device_kind="button",
                            service="meal" if n % 2 else "bathing")
        assert event_rules.on_button_pressed(None, world.ctx, event, LIMITS, at) == []


def test_the_alert_stays_open_while_another_key_of_the_button_is_still_stuck(world):
    raised, _ = _presses(world, 0.25, 8, DAY)
    _, bathing_last = _presses(world, 0.25, 40, DAY + timedelta(seconds=8), service="bathing")
    assert world.timers(DAY + timedelta(seconds=8 + 61)) == []  # meal is quiet, bathing is not
    assert world.alert(raised[0])["state"] == "open"
    assert world.timers(bathing_last + timedelta(seconds=61)) == raised
# --- self-tests (mqtt-v1.1) -------------------------------------------------------------------


def _selftest(world: World, ts: datetime, result: str = "pass", **checks: bool) -> list[str]:
    event = world.event("device.selftest", ts, device="btn-1", device_kind="button", result=result,
                        checks=checks or {"button": True, "speaker": True}, trigger="schedule")
    return event_rules.on_selftest(None, world.ctx, event)


def _open(world: World, rule: str) -> list[dict]:
    return [a for a in world.repos.alerts.rows.values() if a["rule"] == rule and a["state"] != "resolved"]


def test_a_failed_self_test_is_a_device_fault_until_one_passes(world):
    [alert_id] = _selftest(world, DAY, "fail", button=True, speaker=False, battery=False)
    alert = world.alert(alert_id)
    assert (alert["rule"], alert["category"], alert["severity"]) == ("device_selftest_failed", "device", "medium")
    assert "battery, speaker" in alert["summary"] and alert["evidence"]["failed"] == ["battery", "speaker"]
    assert _selftest(world, DAY + timedelta(hours=1), "fail", speaker=False) == [alert_id]  # recurred
    _selftest(world, DAY + timedelta(hours=2))
    assert world.alert(alert_id)["state"] == "resolved"


def test_a_missed_self_test_is_chased_and_the_third_miss_escalates(world):
    asked: list[str] = []
    world.ctx.ask_selftest = lambda conn, device: asked.append(device) or f"c-{len(asked)}"
    _selftest(world, DAY)  # a v1.1 device: 24 h interval, 2 h grace
    assert world.timers(DAY + timedelta(hours=25, minutes=59)) == [] and asked == []
    [alert_id] = world.timers(DAY + timedelta(hours=26))
    first = dict(world.alert(alert_id))
    assert (first["rule"], first["severity"], first["evidence"]["misses"]) == ("device_selftest_missed", "medium", 1)
    assert asked == ["btn-1"] and first["evidence"]["asked_command_id"] == "c-1"  # chased at once
    alert_actions.acknowledge(None, world.ctx, alert_id, "dispatcher:a")
    assert world.timers(DAY + timedelta(hours=49)) == []
    assert world.timers(DAY + timedelta(hours=50)) == [alert_id]  # the second miss recurs on it
    assert world.alert(alert_id)["severity"] == "medium" and world.alert(alert_id)["state"] == "acknowledged"
    assert world.timers(DAY + timedelta(hours=74)) == [alert_id]
    third = world.alert(alert_id)
    assert (third["severity"], third["state"]) == ("high", "open")  # acknowledged a lesser fault: open again
    assert "missed 3 self-tests in a row" in third["summary"] and "call the resident" in third["summary"]
    assert [e["kind"] for e in world.repos.alerts.events_of(alert_id)][-1] == "escalated"
    # ...and told outside the console, by the routing rules of its new severity
    assert [(n.subject_id, n.severity) for n in world.repos.alerts.notices] == [
        (alert_id, "medium"), (alert_id, "high")]
    _selftest(world, DAY + timedelta(hours=75))
    assert world.alert(alert_id)["state"] == "resolved"
    assert world.timers(DAY + timedelta(hours=98)) == []  # the next deadline: 24 h + 2 h after the last


def test_a_service_down_for_days_counts_every_interval_missed(world):
    _selftest(world, DAY)
    [alert_id] = world.timers(DAY + timedelta(days=4))  # deadlines at 26, 50, 74 h have all passed
    assert world.alert(alert_id)["evidence"]["misses"] == 3 and world.alert(alert_id)["severity"] == "high"
    assert world.repos.rule_state.selftests["btn-1"].due_at == DAY + timedelta(hours=98)


def test_a_device_that_never_self_tested_is_older_firmware_not_a_fault(world):
    world.state("online", DAY, device="btn-1")
    assert world.timers(DAY + timedelta(days=30)) == []
    assert world.repos.rule_state.selftests == {}
    assert _open(world, "device_selftest_missed") == []


def test_a_late_self_test_from_a_backlog_does_not_go_back_in_time(world):
    _selftest(world, DAY + timedelta(hours=5))
    assert _selftest(world, DAY, "fail", speaker=False) == []  # older than the latest: ignored
    assert world.repos.rule_state.selftests["btn-1"].last_at == DAY + timedelta(hours=5)


def test_the_interval_is_per_device_kind(world):
    world.ctx.selftests = SelftestPolicy(interval_h={"button": 6, "bed": 24}, grace=timedelta(hours=1))
    _selftest(world, DAY)
    assert world.timers(DAY + timedelta(hours=6, minutes=59)) == []
    assert len(world.timers(DAY + timedelta(hours=7))) == 1


def test_a_device_never_connected_a_day_after_provisioning_is_a_fault_until_it_connects(world):
    provisioned = DAY - timedelta(hours=30)
    unseen = [Unconnected("btn-9", "res-1", "button", provisioned)]
    world.ctx.unconnected = lambda conn, before: [u for u in unseen if u.provisioned_at < before]
    world.ctx.never_connected_after = timedelta(hours=24)
    [alert_id] = event_rules.check_never_connected(None, world.ctx, DAY)
    alert = world.alert(alert_id)
    assert (alert["rule"], alert["category"], alert["device_id"]) == ("device_never_connected", "device", "btn-9")
    assert "never connected (30 h since provisioning)" in alert["summary"]
    assert event_rules.check_never_connected(None, world.ctx, DAY + timedelta(minutes=10)) == []  # raised once
    world.state("online", DAY + timedelta(hours=1), device="btn-9")
    assert world.alert(alert_id)["state"] == "resolved"
    world.ctx.never_connected_after = timedelta(hours=48)
    assert event_rules.check_never_connected(None, world.ctx, DAY) == []  # not yet, at 48 h
