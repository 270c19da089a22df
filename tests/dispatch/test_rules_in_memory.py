"""Every rule branch of intake, offering, the escalation ladder, progress, delivery and the timer
loop, run on the in-memory repositories: no database, no broker. The same use cases run on
PostgreSQL in the integration tests beside this file; tests/dispatch/test_repositories.py holds
both stores to one behaviour."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from homecare.contract.models import CommandType, DeviceKind, Service
from homecare.errors import Conflict, Forbidden, Invalid, NotFound
from homecare.internal import DeviceAck, DeviceEvent, DeviceState, OpenRequest
from services.dispatch.domain.matching import UNREACHABLE, Location, why_not
from services.dispatch.domain.offers import OfferStatus
from services.dispatch.domain.requests import Status
from services.dispatch.store.memory import MemoryRepositories, MemoryTransactions
from services.dispatch.usecases import delivery, intake, offering, pool, progress, providers
from services.dispatch.usecases.context import in_memory
from services.dispatch.workers.timers import TimerLoop

HOME = Location(31.2304, 121.4737)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def north(km: float) -> Location:
    return Location(HOME.lat + km / 111.195, HOME.lon)


@dataclass
class World:
    """Dispatch on memory, with a clock the test moves."""

    now: datetime = T0
    configured: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)  # providers whose app has gone away

    def __post_init__(self) -> None:
        self.ctx = in_memory(lambda: self.now,
                             configured=lambda tx, device, config: self.configured.append((device, config)))
        self.repos: MemoryRepositories = self.ctx.repos  # type: ignore[assignment]
        self.timers = TimerLoop(MemoryTransactions(), self.ctx)
        self._events = itertools.count(1)
        self.repos.residents.add("res-1", HOME, "Huangpu")

    def provider(self, pid: str, km: float, services=("meal",), capacity: int = 2, on_shift: bool = True) -> str:
        self.repos.providers.insert(None, pid, f"Carer {pid}", list(services), north(km), capacity, on_shift)
        return pid

    def later(self, **delta: float) -> datetime:
        """Move the clock; every provider's app beats meanwhile (every 30 s), but those gone."""
        self.now += timedelta(**delta)
        for pid, row in self.repos.providers.rows.items():
            if row["on_shift"] and pid not in self.gone:
                self.repos.providers.seen(None, pid, self.now)
        return self.now

    def press(self, service: Service = Service.MEAL, kind: str = "button.pressed", event_id: str | None = None,
              device: str = "btn-1", ts: datetime | None = None) -> intake.Intake:
        event = DeviceEvent(device_id=device, device_kind=DeviceKind.BUTTON, resident_id="res-1",
                            event_id=event_id or f"e{next(self._events)}", ts=ts or self.now, type=kind,
                            received_at=self.now, service=service)
        handle = intake.button_pressed if kind == "button.pressed" else intake.button_cancelled
        return handle(None, self.ctx, event)

    def request(self, rid: str):
        return self.repos.requests.load(None, rid)

    def pending(self, rid: str):
        return self.repos.offers.pending_for(None, rid)

    def kinds(self, rid: str) -> list[str]:
        return [e.kind for e in self.repos.timeline.entries(None, rid)]

    def commands(self, rid: str) -> list[str]:
        return [r["kind"] for r in self.repos.outbox.rows.values() if r["request_id"] == rid]


@pytest.fixture
def world() -> World:
    return World()


# --- intake ---------------------------------------------------------------------------------------


def test_a_press_opens_a_request_acknowledged_at_once_and_offered_by_the_timer(world):
    world.provider("p-near", 1)
    opened = world.press()
    assert opened.outcome == "created"
    assert world.request(opened.request_id).status is Status.OPEN  # the light does not wait for matching
    assert world.commands(opened.request_id) == [CommandType.ACKNOWLEDGED.value]
    assert world.timers.offer_fresh() == 1
    assert world.pending(opened.request_id).provider_id == "p-near"


def test_a_redelivered_press_has_no_second_effect(world):
    first = world.press(event_id="e-same")
    assert world.press(event_id="e-same").outcome == "duplicate"
    assert world.kinds(first.request_id).count("created") == 1


def test_a_second_press_joins_the_open_request_more_urgent_and_the_button_is_reminded(world):
    first = world.press()
    again = world.press()
    assert (again.outcome, again.request_id) == ("joined", first.request_id)
    assert world.request(first.request_id).urgency == 2
    assert world.commands(first.request_id) == [CommandType.ACKNOWLEDGED.value] * 2


def test_a_press_while_assigned_shows_who_comes_and_when(world):
    world.provider("p-near", 1)
    rid = world.press().request_id
    world.timers.offer_fresh()
    offer = world.pending(rid)
    offering.accept_offer(None, world.ctx, offer.id, "p-near", "provider:p-near")
    world.later(minutes=3)
    world.press()
    assigned = [r for r in world.repos.outbox.rows.values() if r["kind"] == CommandType.ASSIGNED.value]
    assert len(assigned) == 2 and assigned[-1]["payload"]["eta_minutes"] >= 1
    progress.advance(None, world.ctx, rid, Status.EN_ROUTE, "p")
    progress.advance(None, world.ctx, rid, Status.ARRIVED, "p")
    before = len(world.repos.outbox.rows)
    world.press()  # the provider is at the door: the button is not told again
    assert len(world.repos.outbox.rows) == before


def test_a_long_press_cancels_and_one_before_its_press_is_held_for_it(world):
    rid = world.press().request_id
    assert world.press(kind="button.cancelled").outcome == "cancelled"
    assert world.request(rid).status is Status.CANCELLED
    assert world.commands(rid)[-1] == CommandType.CANCELLED.value
    # The long press came first (another replica handled it first): it waits for its press.
    pressed_at = world.later(minutes=1)
    assert world.press(kind="button.cancelled", ts=pressed_at + timedelta(seconds=5)).outcome == "held"
    late = world.press(ts=pressed_at)
    assert late.outcome == "cancelled" and world.request(late.request_id).status is Status.CANCELLED


def test_a_cancel_of_a_request_past_cancelling_is_refused_in_the_timeline(world):
    world.provider("p-near", 1)
    rid = world.press().request_id
    world.timers.offer_fresh()
    offering.accept_offer(None, world.ctx, world.pending(rid).id, "p-near", "p")
    for step in (Status.EN_ROUTE, Status.ARRIVED):
        progress.advance(None, world.ctx, rid, step, "p")
    assert world.press(kind="button.cancelled").outcome == "ignored"
    assert world.kinds(rid)[-1] == "cancel_refused"


def test_a_press_without_a_service_is_invalid(world):
    event = DeviceEvent(device_id="btn-1", device_kind=DeviceKind.BUTTON, resident_id="res-1", event_id="e",
                        ts=world.now, type="button.pressed", received_at=world.now)
    with pytest.raises(Invalid):
        intake.button_pressed(None, world.ctx, event)


def test_an_alert_opens_once_and_joins_an_open_request(world):
    alert = OpenRequest(source="alert", source_id="a-1", resident_id="res-1", service=Service.EMERGENCY,
                        reason="suspected fall", device_id="bed-1")
    opened = intake.alert_opened(None, world.ctx, alert)
    assert opened.outcome == "created"
    assert intake.alert_opened(None, world.ctx, alert).outcome == "duplicate"
    second = intake.alert_opened(None, world.ctx, alert.model_copy(update={"source_id": "a-2"}))
    assert (second.outcome, second.request_id) == ("joined", opened.request_id)
    assert "alert_joined" in world.kinds(opened.request_id)


def test_a_call_for_an_unknown_resident_is_refused(world):
    with pytest.raises(NotFound):
        intake.phoned(None, world.ctx, "res-none", Service.MEAL, None, "dispatcher:d")


# --- offering and the ladder ------------------------------------------------------------------------


def test_the_nearest_provider_is_offered_first_then_the_next_after_a_decline_and_a_time_out(world):
    world.provider("p-near", 1), world.provider("p-mid", 3), world.provider("p-far", 6)
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    assert world.pending(rid).provider_id == "p-near"
    offering.decline_offer(None, world.ctx, world.pending(rid).id, "p-near", "p-near", reason="busy")
    assert world.pending(rid).provider_id == "p-mid"
    world.later(seconds=61)
    assert world.timers.tick()["offers_expired"] == 1
    assert world.pending(rid).provider_id == "p-far"
    assert world.kinds(rid).count("offer.made") == 3
    assert {"offer.declined", "offer.expired"} <= set(world.kinds(rid))


def test_after_the_allowed_failures_the_request_is_escalated_and_offers_go_on(world):
    for i in range(5):
        world.provider(f"p-{i}", 1 + i)
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    for _ in range(3):  # meal escalates after 3 declines
        offer = world.pending(rid)
        offering.decline_offer(None, world.ctx, offer.id, offer.provider_id, offer.provider_id)
    # The dispatchers are told, and the ladder does not go quiet: the next in line is asked at once.
    assert world.request(rid).status is Status.ESCALATED
    assert world.kinds(rid)[-2:] == ["escalated", "offer.made"] and world.pending(rid).provider_id == "p-3"
    world.later(seconds=61)  # a time-out moves on too; the request stays escalated on the board
    assert world.timers.tick()["offers_expired"] == 1
    assert world.pending(rid).provider_id == "p-4" and world.request(rid).status is Status.ESCALATED
    assert world.kinds(rid).count("escalated") == 1
    offering.decline_offer(None, world.ctx, world.pending(rid).id, "p-4", "p-4")  # nobody left to ask: it waits
    assert world.pending(rid) is None and world.request(rid).status is Status.ESCALATED
    assert world.kinds(rid)[-1] == "queued"


def test_an_escalated_request_queues_until_a_provider_frees_and_is_then_offered(world):
    world.provider("p-only", 1, capacity=1)
    world.repos.residents.add("res-2", north(0.5))
    first = intake.phoned(None, world.ctx, "res-2", Service.MEAL, None, "d").request_id
    offering.accept_offer(None, world.ctx, world.pending(first).id, "p-only", "provider:p-only")
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    world.later(minutes=21)  # past the 20-minute assignment target
    assert world.timers.tick()["escalated"] == 1 and world.request(rid).status is Status.ESCALATED
    world.later(seconds=5)
    world.timers.tick()
    assert world.pending(rid) is None  # still nobody with room
    for step in (Status.EN_ROUTE, Status.ARRIVED, Status.COMPLETED):
        progress.advance(None, world.ctx, first, step, "provider:p-only", "p-only")
    world.later(seconds=5)
    assert world.timers.tick()["requeued"] == 1
    offer = world.pending(rid)
    assert offer.provider_id == "p-only" and world.request(rid).status is Status.ESCALATED  # still flagged
    assigned = offering.accept_offer(None, world.ctx, offer.id, "p-only", "provider:p-only")
    assert assigned.status is Status.ASSIGNED and assigned.provider_id == "p-only"


def test_a_dispatcher_assigning_an_escalated_request_wins_over_the_offer_out(world):
    for i in range(4):
        world.provider(f"p-{i}", 1 + i)
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    for _ in range(3):
        offer = world.pending(rid)
        offering.decline_offer(None, world.ctx, offer.id, offer.provider_id, offer.provider_id)
    out = world.pending(rid)
    assert out is not None and world.request(rid).status is Status.ESCALATED
    progress.assign_manually(None, world.ctx, rid, "p-0", "dispatcher:ann")
    assert world.request(rid).status is Status.ASSIGNED and world.request(rid).provider_id == "p-0"
    assert world.repos.offers.rows[out.id].status is OfferStatus.WITHDRAWN
    with pytest.raises(Conflict):
        offering.accept_offer(None, world.ctx, out.id, out.provider_id, "p")


def test_with_every_provider_busy_the_request_queues_and_is_offered_when_one_frees(world):
    world.provider("p-only", 1, capacity=1)
    first = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    offering.accept_offer(None, world.ctx, world.pending(first).id, "p-only", "p")
    world.repos.residents.add("res-2", north(0.5))
    second = intake.phoned(None, world.ctx, "res-2", Service.MEAL, None, "d").request_id
    assert world.request(second).status is Status.OPEN and "queued" in world.kinds(second)
    assert world.repos.requests.retry_of(None, second) is not None
    for step in (Status.EN_ROUTE, Status.ARRIVED, Status.COMPLETED):
        progress.advance(None, world.ctx, first, step, "p")
    world.later(seconds=5)
    assert world.timers.tick()["requeued"] == 1
    assert world.pending(second).provider_id == "p-only"


def test_nobody_qualified_on_shift_escalates_at_once_and_waits_for_someone(world):
    world.provider("p-off", 1, on_shift=False)
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    assert world.request(rid).status is Status.ESCALATED
    assert world.kinds(rid)[-2:] == ["escalated", "queued"]
    providers.set_shift(None, world.ctx, "p-off", True)  # going on shift is a sign of life
    world.later(seconds=5)
    world.timers.tick()
    assert world.pending(rid).provider_id == "p-off" and world.request(rid).status is Status.ESCALATED


def test_an_emergency_takes_a_provider_from_a_routine_job_which_goes_back_to_the_queue(world):
    world.provider("p-both", 1, services=("meal", "emergency"), capacity=1)
    meal = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    offering.accept_offer(None, world.ctx, world.pending(meal).id, "p-both", "p")
    world.repos.residents.add("res-2", north(0.3))
    emergency = intake.phoned(None, world.ctx, "res-2", Service.EMERGENCY, None, "d").request_id
    offer = world.pending(emergency)
    assert offer.provider_id == "p-both" and offer.preempts_request_id == meal
    offering.accept_offer(None, world.ctx, offer.id, "p-both", "p")
    assert world.request(emergency).status is Status.ASSIGNED
    handed = world.request(meal)
    assert handed.status is Status.OPEN and handed.handed_back == 1 and handed.provider_id is None


def test_an_offer_is_answered_only_by_its_provider_and_only_with_room(world):
    world.provider("p-a", 1, capacity=1), world.provider("p-b", 2, capacity=1)
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    offer = world.pending(rid)
    with pytest.raises(Forbidden):
        offering.accept_offer(None, world.ctx, offer.id, "p-b", "p-b")
    world.repos.residents.add("res-2", north(0.2))
    other = intake.phoned(None, world.ctx, "res-2", Service.MEAL, None, "d").request_id
    progress.assign_manually(None, world.ctx, other, "p-a", "d")  # p-a is full now
    with pytest.raises(Conflict):
        offering.accept_offer(None, world.ctx, offer.id, "p-a", "p-a")


# --- the SLA clocks -------------------------------------------------------------------------------


def test_the_clock_flags_at_risk_then_escalates_a_request_nobody_took(world):
    world.provider("p-busy", 1, capacity=1)
    world.repos.residents.add("res-2", north(0.2))
    first = intake.phoned(None, world.ctx, "res-2", Service.MEAL, None, "d").request_id
    offering.accept_offer(None, world.ctx, world.pending(first).id, "p-busy", "p")
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id  # queued behind it
    world.later(minutes=14)
    assert world.timers.tick()["at_risk"] == 0
    world.later(minutes=1, seconds=1)  # 5 minutes before the 20-minute target
    assert world.timers.tick()["at_risk"] == 1 and "sla.at_risk" in world.kinds(rid)
    assert world.request(rid).status is Status.OPEN  # a meal at risk is flagged, not escalated
    world.later(minutes=5)
    assert world.timers.tick()["escalated"] == 1
    assert world.request(rid).status is Status.ESCALATED


def test_an_emergency_at_risk_is_escalated_with_the_flag_and_its_offer_still_stands(world):
    world.provider("p-e1", 1, services=("emergency",)), world.provider("p-e2", 2, services=("emergency",))
    rid = intake.phoned(None, world.ctx, "res-1", Service.EMERGENCY, None, "d").request_id
    world.later(seconds=46)
    assert world.timers.tick()["offers_expired"] == 1 and world.pending(rid).provider_id == "p-e2"
    world.later(seconds=34)  # 40 s before the 2-minute target: inside the 45 s warning
    assert world.timers.tick()["at_risk"] == 1
    assert world.request(rid).status is Status.ESCALATED
    assert world.repos.requests.rows[rid].sla_at_risk_at == world.now
    assert world.pending(rid).provider_id == "p-e2"  # it may still take it


def test_an_assigned_request_that_will_arrive_late_is_flagged_once(world):
    world.provider("p-far", 80)  # an hour and more away
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    offering.accept_offer(None, world.ctx, world.pending(rid).id, "p-far", "p")
    assert world.timers.tick()["late"] == 1
    assert world.timers.tick()["late"] == 0
    assert world.kinds(rid).count("sla.at_risk") >= 1


# --- by hand --------------------------------------------------------------------------------------


def test_a_dispatcher_assigns_by_hand_withdrawing_the_offer_and_respecting_shifts(world):
    world.provider("p-near", 1), world.provider("p-off", 2, on_shift=False)
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    with pytest.raises(Conflict):
        progress.assign_manually(None, world.ctx, rid, "p-off", "d", override_shift=False)
    request = progress.assign_manually(None, world.ctx, rid, "p-off", "d", override_shift=True)
    assert request.status is Status.ASSIGNED and request.provider_id == "p-off"
    assert world.repos.offers.history(None, rid) == (0, frozenset())
    assert "offer.withdrawn" in world.kinds(rid)
    world.provider("p-bath", 1, services=("bathing",))
    with pytest.raises(Conflict):  # not a provider of that service
        progress.assign_manually(None, world.ctx, rid, "p-bath", "d")
    assert progress.assign_manually(None, world.ctx, rid, "p-near", "d").provider_id == "p-near"  # reassigned
    with pytest.raises(Forbidden):  # a provider moves only its own requests
        progress.advance(None, world.ctx, rid, Status.EN_ROUTE, "p-off", provider_id="p-off")
    assert progress.advance(None, world.ctx, rid, Status.EN_ROUTE, "p-near", provider_id="p-near").status is (
        Status.EN_ROUTE)


def test_a_dispatcher_cancels_and_notes(world):
    world.provider("p-near", 1)
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    progress.add_note(None, world.ctx, rid, "daughter called", "d")
    progress.cancel(None, world.ctx, rid, "resident went out", "d")
    assert world.request(rid).status is Status.CANCELLED
    assert [o.status for o in world.repos.offers.rows.values()] == [OfferStatus.WITHDRAWN]
    assert "note" in world.kinds(rid)
    with pytest.raises(Conflict):
        progress.cancel(None, world.ctx, rid, "again", "d")


# --- shifts and delivery --------------------------------------------------------------------------


def test_planned_shifts_put_providers_on_and_off_and_back_to_back_keeps_them_on(world):
    world.provider("p-s", 1, on_shift=False)
    providers.plan_shift(None, world.ctx, "p-s", T0 + timedelta(minutes=1), T0 + timedelta(hours=1))
    providers.plan_shift(None, world.ctx, "p-s", T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    with pytest.raises(Invalid):
        providers.plan_shift(None, world.ctx, "p-s", T0, T0 - timedelta(hours=1))
    world.later(minutes=2)
    assert world.timers.tick()["shifts_started"] == 1 and world.repos.providers.rows["p-s"]["on_shift"]
    world.later(hours=1)
    fired = world.timers.tick()
    assert fired["shifts_ended"] == 0 and fired["shifts_started"] == 1  # the next shift covers it
    assert world.repos.providers.rows["p-s"]["on_shift"]
    world.later(hours=1)
    assert world.timers.tick()["shifts_ended"] == 1 and not world.repos.providers.rows["p-s"]["on_shift"]


def test_commands_are_followed_to_the_device_or_expire(world):
    rid = world.press().request_id
    (row,) = world.repos.outbox.rows.values()
    delivery.sent(None, world.ctx, [row["id"]], world.now)
    ack = DeviceAck(device_id="btn-1", command_id=row["command_id"], ts=world.later(seconds=2), received_at=world.now)
    assert delivery.acknowledged(None, world.ctx, ack) == "recorded"
    assert delivery.acknowledged(None, world.ctx, ack) == "repeated"
    assert delivery.acknowledged(None, world.ctx, ack.model_copy(update={"command_id": "c-none"})) == "unknown"
    assert world.repos.requests.rows[rid].ack_shown_at == ack.ts
    world.press(kind="button.cancelled")
    world.later(minutes=11)
    assert world.timers.tick()["commands_expired"] == 1
    assert world.kinds(rid)[-1] == "command.expired"


def test_a_config_ack_updates_what_the_registry_expects_and_first_connections_wake_the_publisher(world):
    config = {"command_id": "c-cfg", "type": "config", "report_interval_s": 30}
    row_id = world.repos.outbox.put(None, "bed-1", config, kind=CommandType.CONFIG.value, deadline_s=600)
    ack = DeviceAck(device_id="bed-1", command_id="c-cfg", ts=world.now, received_at=world.now)
    assert delivery.acknowledged(None, world.ctx, ack) == "recorded"
    assert world.configured == [("bed-1", world.repos.outbox.rows[row_id]["payload"])]
    wakes = world.repos.outbox.wakes
    state = DeviceState(device_id="bed-1", device_kind=DeviceKind.BED, resident_id="res-1", state="online",
                        at=world.now, shard="main")
    assert delivery.device_state(None, world.ctx, state) == "first_seen"
    assert delivery.device_state(None, world.ctx, state) == "recorded"
    assert world.repos.outbox.wakes == wakes + 1


# --- provider presence ----------------------------------------------------------------------------


def test_a_provider_whose_app_went_quiet_gets_no_offer_until_its_next_heartbeat(world):
    world.provider("p-near", 1), world.provider("p-far", 4)
    world.gone.add("p-near")
    world.later(minutes=3, seconds=1)  # p-near last heard from when it went on shift
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    assert world.pending(rid).provider_id == "p-far"
    offering.decline_offer(None, world.ctx, world.pending(rid).id, "p-far", "provider:p-far")
    assert world.pending(rid) is None  # nobody reachable left: it waits, the near one is not asked
    assert world.request(rid).status is Status.ESCALATED
    assert world.kinds(rid)[-2:] == ["escalated", "queued"]
    providers.heartbeat(None, world.ctx, "p-near")  # the app is back
    world.later(seconds=5)
    world.timers.tick()
    assert world.pending(rid).provider_id == "p-near"


def test_an_offer_out_to_a_provider_who_becomes_unreachable_is_withdrawn_before_its_time_out(world):
    world.provider("p-near", 1), world.provider("p-far", 4)
    world.gone.add("p-near")  # its phone died right after it went on shift, at T0
    world.later(minutes=2, seconds=50)
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    offer = world.pending(rid)
    assert offer.provider_id == "p-near"  # heard from 2:50 ago: still counts as there
    world.later(seconds=15)  # 3:05 of silence; the offer's 60-second time-out is 45 s away
    assert world.timers.tick()["offers_unreachable"] == 1
    assert world.repos.offers.rows[offer.id].status is OfferStatus.WITHDRAWN
    assert world.pending(rid).provider_id == "p-far"
    withdrawn = [e for e in world.repos.timeline.entries(None, rid) if e.kind == "offer.withdrawn"]
    assert withdrawn[0].detail["reason"].startswith("unreachable")
    assert world.repos.offers.history(None, rid) == (0, frozenset())  # not a failure, not "asked already"


def test_answers_and_steps_are_signs_of_life_and_going_on_shift_counts_as_one(world):
    world.provider("p-a", 1), world.provider("p-b", 2)
    world.gone |= {"p-a", "p-b"}
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    world.later(seconds=50)
    offering.accept_offer(None, world.ctx, world.pending(rid).id, "p-a", "provider:p-a")
    assert world.repos.providers.get(None, "p-a")["last_seen_at"] == world.now
    world.later(minutes=2)
    progress.advance(None, world.ctx, rid, Status.EN_ROUTE, "provider:p-a", "p-a")
    assert world.repos.providers.get(None, "p-a")["last_seen_at"] == world.now
    assert world.repos.providers.get(None, "p-b")["last_seen_at"] == T0  # a dispatcher's act says nothing
    progress.advance(None, world.ctx, rid, Status.ARRIVED, "dispatcher:ann")
    assert world.repos.providers.get(None, "p-a")["last_seen_at"] == world.now  # unchanged by it
    providers.set_shift(None, world.ctx, "p-b", False)
    world.later(minutes=10)
    providers.set_shift(None, world.ctx, "p-b", True)
    assert world.repos.providers.get(None, "p-b")["last_seen_at"] == world.now
    world.repos.shifts.add(None, "p-a", world.now + timedelta(minutes=1), world.now + timedelta(hours=8))
    providers.set_shift(None, world.ctx, "p-a", False)
    world.later(minutes=1)
    assert world.timers.tick()["shifts_started"] == 1
    assert world.repos.providers.get(None, "p-a")["last_seen_at"] == world.now


def test_the_candidates_say_a_quiet_provider_is_unreachable(world):
    world.provider("p-quiet", 1)
    world.gone.add("p-quiet")
    world.later(minutes=4)
    rid = intake.phoned(None, world.ctx, "res-1", Service.MEAL, None, "d").request_id
    request = world.request(rid)
    (quiet,) = pool.candidates(None, world.ctx, request, world.now)
    assert not quiet.reachable
    assert why_not(quiet, pool.job_of(None, world.ctx, request, frozenset()), world.ctx.weights) == UNREACHABLE
    assert world.kinds(rid)[-2:] == ["escalated", "queued"]
    escalated = [e for e in world.repos.timeline.entries(None, rid) if e.kind == "escalated"]
    assert escalated[0].detail["reason"] == "no reachable provider on shift for meal (1 unreachable)"


# -- district service centres ----------------------------------------------------------------


def test_a_press_is_offered_to_its_districts_provider_before_a_nearer_one_of_another_district():
    world = World()  # res-1 lives in Huangpu
    world.provider("near", 0.3)
    world.provider("own", 4.0)
    world.repos.providers.set_districts(None, "near", ["Xuhui"])
    world.repos.providers.set_districts(None, "own", ["Huangpu", "Jing'an"])
    rid = world.press().request_id
    world.timers.offer_fresh()
    assert world.pending(rid).provider_id == "own"
    assert "cross_district" not in world.kinds(rid)


def test_help_comes_from_another_district_only_when_nobody_of_the_district_is_eligible_and_is_said():
    world = World()
    world.provider("own", 0.5, services=("bathing",))  # Huangpu's, but does not bring meals
    world.provider("helper", 6.0)
    world.repos.providers.set_districts(None, "own", ["Huangpu"])
    world.repos.providers.set_districts(None, "helper", ["Xuhui"])
    rid = world.press().request_id
    world.timers.offer_fresh()
    assert world.pending(rid).provider_id == "helper"
    (entry,) = [e for e in world.repos.timeline.entries(None, rid) if e.kind == "cross_district"]
    assert entry.detail["reason"] == "no provider of Huangpu eligible"
    assert (entry.detail["provider_id"], entry.detail["provider_districts"]) == ("helper", ["Xuhui"])
    (made,) = [e for e in world.repos.timeline.entries(None, rid) if e.kind == "offer.made"]
    assert made.detail["cross_district"] == "no provider of Huangpu eligible"


def test_a_provider_of_another_district_sent_by_hand_is_said_so_and_one_of_the_district_is_not():
    world = World()
    world.provider("own", 1.0)
    world.provider("helper", 2.0)
    world.repos.providers.set_districts(None, "own", ["Huangpu"])
    world.repos.providers.set_districts(None, "helper", ["Xuhui"])
    rid = world.press().request_id
    progress.assign_manually(None, world.ctx, rid, "own", "dispatcher:ann")
    assert "cross_district" not in world.kinds(rid)
    progress.assign_manually(None, world.ctx, rid, "helper", "city:bureau")
    (entry,) = [e for e in world.repos.timeline.entries(None, rid) if e.kind == "cross_district"]
    assert (entry.actor, entry.detail["reason"]) == ("city:bureau", "sent by hand from another district to Huangpu")


def test_once_the_districts_provider_declines_help_from_another_district_is_asked():
    world = World()
    world.provider("own", 0.5)
    world.provider("helper", 6.0)
    world.repos.providers.set_districts(None, "own", ["Huangpu"])
    world.repos.providers.set_districts(None, "helper", ["Xuhui"])
    rid = world.press().request_id
    world.timers.offer_fresh()
    first = world.pending(rid)
    assert first.provider_id == "own"
    offering.decline_offer(None, world.ctx, first.id, "own", "provider:own", "too far")
    assert world.pending(rid).provider_id == "helper"
    assert "cross_district" in world.kinds(rid)
