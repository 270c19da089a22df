"""The event rules on the real database: night bed exits (with dispatch saying whether a provider
is on site), falls, device liveness and batteries, and their timers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from homecare.contract.models import Service
from homecare.internal import DeviceState
from homecare.log import Delivery, PermanentError
from homecare.residents import store as residents
from services.dispatch.domain.matching import Location
from services.dispatch.domain.requests import Status
from services.dispatch.queries import open_requests_for
from services.dispatch.store import new_id, providers
from services.dispatch.usecases import intake, progress
from services.dispatch.usecases.context import Dispatch
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.settings import TelemetrySettings
from services.telemetry.usecases import event_rules
from services.telemetry.usecases.context import Alerting
from services.telemetry.workers.alert_consumer import AlertConsumer
from tests.support import unique

from .alert_support import alert, alerts_of, bed_event, worker

LIMITS = RuleLimits()
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _last_night_at(hour: int, minute: int = 0) -> datetime:
    """Today's (or yesterday's) given local time in Shanghai, in the past, as UTC."""
    now = datetime.now(SHANGHAI)
    ts = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return (ts if ts < now - timedelta(hours=1) else ts - timedelta(days=1)).astimezone(UTC)


def _resident(pool) -> str:
    body = residents.NewResident(name=f"Resident {uuid.uuid4().hex[:6]}", address="1 Test Road", district="Huangpu",
                                 location=residents.Location(lat=31.23, lon=121.47))
    with pool.connection() as conn:
        return residents.enrol(conn, body).id


def _bed_events(pool, bed: str, resident: str, *events: tuple[str, datetime]) -> None:
    for type_, ts in events:
        with pool.connection() as conn, conn.transaction():
            event_rules.on_bed_event(conn, Alerting(), bed_event(bed, resident, type_, ts), LIMITS, datetime.now(UTC))


def _timers(pool, after: timedelta = timedelta(minutes=2)) -> list[str]:
    return worker(pool).timers_once(datetime.now(UTC) + after)


def test_a_night_exit_returning_at_29_minutes_is_quiet_and_at_31_minutes_alerts(pool):
    exit_at = _last_night_at(2)
    back_bed, back = unique("bed"), unique("res")
    _bed_events(pool, back_bed, back, ("bed.exit", exit_at), ("bed.entry", exit_at + timedelta(minutes=29)))
    late_bed, late = unique("bed"), unique("res")
    _bed_events(pool, late_bed, late, ("bed.exit", exit_at), ("bed.entry", exit_at + timedelta(minutes=31)))
    _timers(pool)
    assert alerts_of(pool, back) == []
    [found] = alerts_of(pool, late)
    assert found["rule"] == "night_bed_exit" and found["started_at"] == exit_at and found["device_id"] == late_bed
    assert "returned after 31 minutes" in found["summary"]


def test_a_night_exit_without_return_alerts_when_its_timer_is_due(pool):
    exit_at = _last_night_at(3)
    bed, resident = unique("bed"), unique("res")
    _bed_events(pool, bed, resident, ("bed.exit", exit_at))
    # The exit was learnt late: it waits for the settle time before it is judged.
    assert worker(pool).timers_once(datetime.now(UTC)) == [] and alerts_of(pool, resident) == []
    raised = _timers(pool)
    [found] = alerts_of(pool, resident)
    assert found["id"] in raised and "not back after" in found["summary"]
    assert _timers(pool) == []  # the timer is gone


def test_a_daytime_exit_does_not_alert(pool):
    exit_at = _last_night_at(14)
    bed, resident = unique("bed"), unique("res")
    _bed_events(pool, bed, resident, ("bed.exit", exit_at), ("bed.entry", exit_at + timedelta(hours=2)))
    _timers(pool)
    assert alerts_of(pool, resident) == []


@pytest.fixture
def visit(pool):
    """A resident whose bathing request a provider has arrived for, through dispatch's use cases;
    and a function that completes the visit (called at the end if the test did not)."""
    resident = _resident(pool)
    ctx = Dispatch()
    with pool.connection() as conn, conn.transaction():
        # Far away, and off shift again once assigned, so no other test's request is offered to it.
        provider = providers.insert(conn, new_id("p"), "Carer On Site", ["bathing"], Location(-45.0, -170.0), 2)
        request_id = intake.phoned(conn, ctx, resident, Service.BATHING, "evening bath", "dispatcher:test").request_id
        progress.assign_manually(conn, ctx, request_id, provider["id"], "dispatcher:test")
        providers.set_on_shift(conn, provider["id"], False)
        progress.advance(conn, ctx, request_id, Status.ARRIVED, f"provider:{provider['id']}", provider["id"])
    with pool.connection() as conn:
        assert [r["status"] for r in open_requests_for(conn, resident)] == ["arrived"]
    done = []

    def complete() -> None:
        with pool.connection() as conn, conn.transaction():
            progress.advance(conn, ctx, request_id, Status.COMPLETED, f"provider:{provider['id']}", provider["id"])
        done.append(True)

    yield resident, complete
    if not done:
        complete()


@pytest.fixture
def provider_on_site(visit):
    return visit[0]


def test_a_night_exit_while_a_provider_is_on_site_does_not_alert(pool, provider_on_site):
    resident = provider_on_site
    exit_at = _last_night_at(23)
    bed = unique("bed")
    _bed_events(pool, bed, resident, ("bed.exit", exit_at), ("bed.entry", exit_at + timedelta(minutes=45)))
    _bed_events(pool, bed, resident, ("bed.exit", exit_at + timedelta(minutes=50)))
    _timers(pool)
    assert alerts_of(pool, resident) == []


def test_a_night_exit_during_a_visit_alerts_once_the_visit_is_over_and_the_resident_still_out(pool, visit):
    resident, complete = visit
    bed = unique("bed")
    _bed_events(pool, bed, resident, ("bed.exit", _last_night_at(23)))
    now = datetime.now(UTC)

    def alerts_at(minutes: float) -> list[str]:  # other tests' timers may be due too: this resident's only
        return [a for a in worker(pool).timers_once(now + timedelta(minutes=minutes))
                if alert(pool, a)["resident_id"] == resident]

    assert alerts_at(6) == []  # the provider is there: look again later
    complete()  # the visit ends; the resident is still out of bed
    assert alerts_at(12) == []  # found gone: the exit counts from now
    assert alerts_at(12 + 29) == []
    [raised] = alerts_at(12 + 31)
    found = alert(pool, raised)
    assert found["rule"] == "night_bed_exit" and "after the provider's visit ended" in found["summary"]


def test_a_fall_is_one_alert_per_resident_with_each_event_recorded_once(pool):
    bed, resident = unique("bed"), unique("res")
    event = bed_event(bed, resident, "fall.suspected", datetime.now(UTC), confidence=0.9)
    for _ in range(2):  # the second is a redelivery
        with pool.connection() as conn, conn.transaction():
            event_rules.on_fall(conn, Alerting(), event, emergency_requested=True)
    [found] = alerts_of(pool, resident)
    assert (found["rule"], found["severity"], found["category"]) == ("fall_suspected", "critical", "person")
    assert alert(pool, found["id"])["occurrences"] == 1
    with pool.connection() as conn, conn.transaction():
        event_rules.on_fall(conn, Alerting(), bed_event(bed, resident, "fall.suspected", datetime.now(UTC)), True)
    assert [a["occurrences"] for a in alerts_of(pool, resident)] == [2]


def _state(bed: str, resident: str, state: str, at: datetime, battery: float | None = None) -> DeviceState:
    return DeviceState(device_id=bed, device_kind="bed", resident_id=resident, state=state, at=at, battery=battery)


def _announce(pool, message: DeviceState) -> list[str]:
    with pool.connection() as conn, conn.transaction():
        return event_rules.on_device_state(conn, Alerting(), message, LIMITS, datetime.now(UTC))


def test_offline_devices_alert_after_the_grace_time_and_clear_when_back(pool):
    bed, resident = unique("bed"), unique("res")
    now = datetime.now(UTC)
    assert _announce(pool, _state(bed, resident, "offline", now)) == []
    # Other tests' devices may be offline in this database too: look at this bed's alerts only.
    def timers_for_bed(at: datetime) -> list:
        return [a for a in worker(pool).timers_once(at) if alert(pool, a)["device_id"] == bed]

    assert timers_for_bed(now + timedelta(minutes=4)) == []
    [raised] = timers_for_bed(now + timedelta(minutes=6))
    found = alert(pool, raised)
    assert (found["rule"], found["category"], found["resident_id"]) == ("device_offline", "device", resident)
    assert _announce(pool, _state(bed, resident, "offline", now)) == []  # a repeat changes nothing
    assert _announce(pool, _state(bed, resident, "online", now + timedelta(minutes=8))) == [raised]
    cleared = alert(pool, raised)
    assert cleared["state"] == "resolved" and cleared["resolved_by"] == "system"
    # Offline announced late (past its grace time): an alert at once.
    other = unique("bed")
    assert len(_announce(pool, _state(other, resident, "offline", now - timedelta(minutes=10)))) == 1
    # Device alerts are counted per device, apart from person alerts.
    assert sorted(a["device_id"] for a in alerts_of(pool, resident, ["open"])) == [other]


def test_silent_beds_and_low_batteries_are_device_alerts(pool):
    bed, button, resident = unique("bed"), unique("btn"), unique("res")
    now = datetime.now(UTC)
    [silent] = _announce(pool, _state(bed, resident, "silent", now))
    assert alert(pool, silent)["rule"] == "device_silent"
    with pool.connection() as conn, conn.transaction():
        event_rules.on_battery_low(conn, Alerting(), bed_event(button, resident, "battery.low", now, battery=0.12,
                                                   device_kind="button"))
    low = [a for a in alerts_of(pool, resident) if a["rule"] == "battery_low"]
    assert [(a["device_id"], a["category"], a["severity"]) for a in low] == [(button, "device", "low")]
    # A status with a charged battery clears it.
    changed = _announce(pool, DeviceState(device_id=button, device_kind="button", resident_id=resident,
                                          state="online", at=now + timedelta(minutes=1), battery=0.95))
    assert low[0]["id"] in changed and alert(pool, low[0]["id"])["state"] == "resolved"


def _delivery(message: DeviceState | bytes, seq: int) -> Delivery:
    data = message if isinstance(message, bytes) else message.dumps()
    return Delivery(subject=f"hc.state.{unique('d')}", data=data, headers={}, deliveries=1, stream_seq=seq,
                    stored_at=datetime.now(UTC), msg=None)


def test_a_batch_of_states_is_applied_in_order_in_one_transaction_or_not_at_all(pool):
    consumer = AlertConsumer(pool, log_=None, config=TelemetrySettings(), limits_of=lambda conn, resident: LIMITS,
                             alerting=Alerting())
    bed, resident = unique("bed"), unique("res")
    now = datetime.now(UTC)
    late = now - timedelta(minutes=10)  # offline past its grace time: an alert at once
    consumer([_delivery(_state(bed, resident, "online", late - timedelta(minutes=1)), 1),
              _delivery(_state(bed, resident, "offline", late), 2)])
    [raised] = alerts_of(pool, resident, ["open"])
    assert raised["device_id"] == bed and raised["rule"] == "device_offline"

    other = unique("bed")
    with pytest.raises(PermanentError):  # the runtime then tries each alone and dead-letters this one
        consumer([_delivery(_state(bed, resident, "online", now), 3),
                  _delivery(_state(other, resident, "offline", late), 4),
                  _delivery(b'{"device_id": "x", "state": "sideways"}', 5)])
    assert [a["device_id"] for a in alerts_of(pool, resident, ["open"])] == [bed]  # nothing of it applied


def _press(device: str, resident: str, ts: datetime, service: str = "meal"):
    from homecare.internal import DeviceEvent

    return DeviceEvent(device_id=device, device_kind="button", resident_id=resident, event_id=unique("ev"), ts=ts,
                       type="button.pressed", received_at=ts, service=service)


def test_a_stuck_button_raises_a_device_alert_that_survives_a_restart_and_clears_when_quiet(pool):
    """Each press in its own transaction, a new context each time (as after a restart): the run
    is the database's, not a process's."""
    button, resident = unique("btn"), unique("res")
    start = datetime.now(UTC) - timedelta(seconds=30)
    raised: list[str] = []
    for n in range(40):  # 4 a second for 10 s
        ts = start + timedelta(seconds=0.25 * n)
        with pool.connection() as conn, conn.transaction():
            raised += event_rules.on_button_pressed(conn, Alerting(), _press(button, resident, ts), LIMITS, ts)
    [alert_id] = raised
    found = alert(pool, alert_id)
    assert (found["rule"], found["category"], found["severity"], found["device_id"]) == (
        "button_stuck", "device", "high", button)
    assert found["evidence"]["presses"] == 21  # judged at 5 s: 4 a second
    # Quiet for a minute after the last stuck press: cleared by the timer.
    last = start + timedelta(seconds=0.25 * 39)
    def timers_for_button(at: datetime) -> list:
        return [a for a in worker(pool).timers_once(at) if alert(pool, a)["device_id"] == button]

    assert timers_for_button(last + timedelta(seconds=59)) == []
    assert timers_for_button(last + timedelta(seconds=61)) == [alert_id]
    assert alert(pool, alert_id)["state"] == "resolved"


def test_a_frantic_resident_raises_no_alert_on_postgres(pool):
    button, resident = unique("btn"), unique("res")
    at = datetime.now(UTC) - timedelta(minutes=1)
    for _ in range(4):
        for _ in range(9):  # 3 a second for 3 s
            at += timedelta(seconds=1 / 3)
            with pool.connection() as conn, conn.transaction():
                assert event_rules.on_button_pressed(conn, Alerting(), _press(button, resident, at), LIMITS, at) == []
        at += timedelta(seconds=2)
    assert alerts_of(pool, resident) == []
def test_devices_never_connected_a_day_after_provisioning_are_faults_the_gateway_registry_names(pool):
    from gateway.registry import provision, revoke

    resident = _resident(pool)
    old, new, gone = unique("btn"), unique("btn"), unique("btn")
    with pool.connection() as conn:
        for device in (old, new, gone):
            provision(conn, device, "button", resident)
        conn.execute("UPDATE gateway.devices SET created_at = now() - interval '25 hours' WHERE id = ANY(%s)",
                     ([old, gone],))
        revoke(conn, gone)  # decommissioned: nobody chases it
    raised = worker(pool).unconnected_once()
    faults = [a for a in alerts_of(pool, resident) if a["rule"] == "device_never_connected"]
    assert [a["device_id"] for a in faults] == [old] and faults[0]["id"] in raised
    assert "never connected (25 h since provisioning)" in faults[0]["summary"]
    assert faults[0]["id"] not in worker(pool).unconnected_once()  # once per device
    with pool.connection() as conn, conn.transaction():
        online = DeviceState(device_id=old, device_kind="button", resident_id=resident, state="online",
                             at=datetime.now(UTC))
        event_rules.on_device_state(conn, Alerting(), online, LIMITS, datetime.now(UTC))
    assert [a["state"] for a in alerts_of(pool, resident) if a["rule"] == "device_never_connected"] == ["resolved"]


def test_a_missed_self_test_asks_the_device_for_one_through_dispatch(pool):
    from gateway.registry import provision
    from services.dispatch.store import outbox

    resident, button = _resident(pool), unique("btn")
    with pool.connection() as conn:
        provision(conn, button, "button", resident)
    passed = bed_event(button, resident, "device.selftest", datetime.now(UTC) - timedelta(hours=27),
                       device_kind="button", result="pass", checks={"button": True})
    with pool.connection() as conn, conn.transaction():
        event_rules.on_selftest(conn, Alerting(), passed)
    _timers(pool, after=timedelta(0))
    [missed] = [a for a in alerts_of(pool, resident) if a["rule"] == "device_selftest_missed"]
    with pool.connection() as conn:
        [command] = outbox.for_device(conn, button)
    assert command["payload"]["type"] == "selftest.request"
    assert alert(pool, missed["id"])["evidence"]["asked_command_id"] == command["command_id"]
