"""The repositories' contract: the PostgreSQL ones (the store's modules) and the in-memory ones
(store.memory) behave alike, so rules tested in memory hold on the database.

Each test runs on both. On PostgreSQL it works in one transaction that is rolled back at the
end; other tests' rows may exist there, so the claims are read for this test's own ids only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from homecare.contract.models import Service
from homecare.errors import Conflict, NotFound
from homecare.residents import store as residents
from services.dispatch.domain.matching import Location
from services.dispatch.domain.offers import Offer, OfferStatus, answer
from services.dispatch.domain.policy import DispatchPolicy
from services.dispatch.domain.requests import (
    Source,
    Status,
    TimelineEntry,
    assign,
    open_request,
    transition,
)
from services.dispatch.store import new_id
from services.dispatch.store.memory import MemoryRepositories
from services.dispatch.usecases.context import PostgresRepositories
from services.dispatch.usecases.ports import Repositories

HOME = Location(31.2304, 121.4737)
POLICY = DispatchPolicy.default()


@dataclass
class Store:
    repos: Repositories
    tx: Any
    kind: str

    def resident(self, district: str = "Huangpu") -> str:
        if isinstance(self.repos, MemoryRepositories):
            rid = new_id("res")
            self.repos.residents.add(rid, HOME, district)
            return rid
        body = residents.NewResident(name="Resident", address="1 Test Road", district=district,
                                     location=residents.Location(lat=HOME.lat, lon=HOME.lon))
        return residents.enrol(self.tx, body).id

    def provider(self, services=("meal",), capacity: int = 2, on_shift: bool = True) -> str:
        pid = new_id("p")
        insert: Any = self.repos.providers.insert  # type: ignore[attr-defined]  # not a port: setup only
        insert(self.tx, pid, f"Carer {pid}", list(services), HOME, capacity, on_shift)
        return pid

    def request(self, service: Service = Service.MEAL, at: datetime | None = None, **kw: Any):
        at = at or datetime.now(UTC)
        request, entry = open_request(new_id("r"), kw.pop("resident", None) or self.resident(), service,
                                      POLICY.for_service(service), at, "test", source=Source.PHONE, location=HOME)
        assert self.repos.requests.insert(self.tx, request, entry, **kw)
        return request


@pytest.fixture(params=["memory", "postgres"])
def store(request) -> Iterator[Store]:
    if request.param == "memory":
        yield Store(MemoryRepositories(), None, "memory")
        return
    pool = request.getfixturevalue("pool")
    with pool.connection() as conn:
        try:
            yield Store(PostgresRepositories(), conn, "postgres")
        finally:
            conn.rollback()


def test_a_request_is_inserted_once_per_resident_and_service_and_source(store):
    r = store.request(source_key=f"k-{uuid.uuid4().hex}")
    again, entry = open_request(new_id("r"), r.resident_id, Service.MEAL, POLICY.for_service(Service.MEAL),
                                datetime.now(UTC), "test")
    assert not store.repos.requests.insert(store.tx, again, entry)  # the same resident and service is open
    other = replace(again, service=Service.BATHING, id=new_id("r"))
    assert store.repos.requests.insert(store.tx, other, entry)
    assert store.repos.requests.find_active(store.tx, r.resident_id, "meal").id == r.id
    assert store.repos.requests.find_by_source_key(store.tx, "k-none") is None
    with pytest.raises(NotFound):
        store.repos.requests.load(store.tx, "r-none")


def test_a_save_is_guarded_by_the_state_it_was_read_in(store):
    r = store.request()
    pid = store.provider()
    now = r.created_at + timedelta(seconds=5)
    offered = store.repos.requests.save(store.tx, transition(r, Status.OFFERED, now, "system", "offer.made"))
    assert store.repos.requests.load(store.tx, r.id).status is Status.OFFERED
    with pytest.raises(Conflict):  # still thinks it is open
        store.repos.requests.save(store.tx, transition(r, Status.CANCELLED, now, "x"))
    store.repos.requests.save(store.tx, assign(offered, pid, 7, now, "p"))
    loaded = store.repos.requests.load(store.tx, r.id)
    assert (loaded.status, loaded.provider_id, loaded.eta_minutes, loaded.assigned_at) == (Status.ASSIGNED, pid, 7, now)
    assert store.repos.requests.find_active(store.tx, r.resident_id, "meal").id == r.id
    done = transition(transition(transition(loaded, Status.EN_ROUTE, now, "p").request, Status.ARRIVED, now,
                                 "p").request, Status.COMPLETED, now, "p")
    for step in (Status.EN_ROUTE, Status.ARRIVED, Status.COMPLETED):
        loaded = store.repos.requests.save(store.tx, transition(loaded, step, now, "p"))
    assert done.request.status is Status.COMPLETED
    assert store.repos.requests.find_active(store.tx, r.resident_id, "meal") is None


def test_flags_are_set_once(store):
    r = store.request()
    at = r.created_at
    assert store.repos.requests.flag_at_risk(store.tx, r.id, at)
    assert not store.repos.requests.flag_at_risk(store.tx, r.id, at)
    assert store.repos.requests.flag_late(store.tx, r.id, at)
    assert not store.repos.requests.flag_late(store.tx, r.id, at)
    assert store.repos.requests.retry_of(store.tx, r.id) is None
    store.repos.requests.set_retry(store.tx, r.id, at)
    assert store.repos.requests.retry_of(store.tx, r.id) == at


def test_the_claims_see_what_is_due_most_urgent_first(store):
    t0 = datetime.now(UTC) - timedelta(hours=1)
    meal = store.request(Service.MEAL, at=t0)
    emergency = store.request(Service.EMERGENCY, at=t0 + timedelta(minutes=1))
    mine = {meal.id, emergency.id}

    def ours(ids: list[str]) -> list[str]:
        return [i for i in ids if i in mine]

    assert ours(store.repos.requests.fresh(store.tx, 10_000)) == [emergency.id, meal.id]  # priority first
    store.repos.requests.set_retry(store.tx, meal.id, t0)  # queued now: no longer fresh
    assert ours(store.repos.requests.fresh(store.tx, 10_000)) == [emergency.id]
    assert ours(store.repos.requests.queued(store.tx, 10_000)) == [emergency.id, meal.id]
    assert ours(store.repos.requests.queued(store.tx, 10_000, skip=[emergency.id])) == [meal.id]
    assert ours(store.repos.requests.queued(store.tx, 10_000, kinds_to_skip=[("meal", meal.priority)])) == [
        emergency.id]
    later = t0 + timedelta(days=1)  # both past their targets
    assert set(ours(store.repos.requests.overdue_waiting(store.tx, later, 10_000))) == mine
    assert ours(store.repos.requests.overdue_waiting(store.tx, t0, 10_000)) == []
    assert set(ours(store.repos.requests.warn_due(store.tx, later, 10_000))) == mine
    store.repos.requests.flag_at_risk(store.tx, meal.id, later)
    assert ours(store.repos.requests.warn_due(store.tx, later, 10_000)) == [emergency.id]
    pid = store.provider(services=("meal", "emergency"))
    assigned = store.repos.requests.save(store.tx, assign(meal, pid, 500, t0, "d"))  # an ETA past the target
    assert ours(store.repos.requests.maybe_late(store.tx, t0, 10_000)) == [assigned.id]
    store.repos.requests.flag_late(store.tx, meal.id, t0)
    assert ours(store.repos.requests.maybe_late(store.tx, later, 10_000)) == []


def _offer(r, pid: str, at: datetime, seconds: int = 45) -> Offer:
    return Offer(new_id("o"), r.id, pid, OfferStatus.PENDING, at, at + timedelta(seconds=seconds), 6)


def test_one_pending_offer_per_request_and_its_history(store):
    r = store.request()
    a, b = store.provider(), store.provider()
    first = _offer(r, a, r.created_at)
    store.repos.offers.insert(store.tx, first, score=1.5, parts={"eta": 1.0})
    with pytest.raises(Conflict):
        store.repos.offers.insert(store.tx, _offer(r, b, r.created_at))
    assert store.repos.offers.pending_for(store.tx, r.id) == first
    assert store.repos.offers.load(store.tx, first.id) == first
    assert (first.id, r.id) in store.repos.offers.due(store.tx, first.deadline_at, 10_000)
    assert (first.id, r.id) not in store.repos.offers.due(store.tx, r.created_at, 10_000)
    store.repos.offers.save_answer(store.tx, answer(first, OfferStatus.EXPIRED, first.deadline_at))
    with pytest.raises(Conflict):  # answered already
        store.repos.offers.save_answer(store.tx, answer(first, OfferStatus.ACCEPTED, first.deadline_at))
    assert store.repos.offers.pending_for(store.tx, r.id) is None
    second = _offer(r, b, first.deadline_at)
    store.repos.offers.insert(store.tx, second)
    store.repos.offers.save_answer(store.tx, answer(second, OfferStatus.DECLINED, first.deadline_at))
    assert store.repos.offers.history(store.tx, r.id) == (2, frozenset({a, b}))
    with pytest.raises(NotFound):
        store.repos.offers.load(store.tx, "o-none")


def test_a_providers_state_counts_its_jobs_offers_visits_and_shift(store):
    now = datetime.now(UTC)
    pid, other = store.provider(services=("meal", "bathing")), store.provider(on_shift=False)
    resident = store.resident()
    done = store.request(Service.BATHING, at=now - timedelta(hours=3), resident=resident)
    done = store.repos.requests.save(store.tx, assign(done, pid, 5, now - timedelta(hours=3), "d"))
    for step in (Status.EN_ROUTE, Status.ARRIVED, Status.COMPLETED):
        done = store.repos.requests.save(store.tx, transition(done, step, now - timedelta(hours=2), "p"))
    held = store.repos.requests.save(store.tx, assign(store.request(), pid, 9, now, "d"))
    offered = store.request(Service.MEAL, resident=resident)
    store.repos.offers.insert(store.tx, _offer(offered, pid, now))
    store.repos.shifts.add(store.tx, pid, now - timedelta(hours=1), now + timedelta(hours=2))
    store.repos.shifts.add(store.tx, pid, now - timedelta(hours=1), now + timedelta(hours=1))

    (state,) = store.repos.providers.states(store.tx, "meal", resident, now - timedelta(hours=12), now,
                                            provider_ids=[pid, other])
    assert state.row["id"] == pid and state.pending_offers == 1 and state.visits_with_resident == 1
    assert state.recent_assignments == 2 and state.shift_ends_at == now + timedelta(hours=1)
    assert [(j.request_id, j.held) for j in state.jobs] == sorted([(held.id, True), (offered.id, False)])
    assert store.repos.providers.states(store.tx, "emergency", resident, now, now, provider_ids=[pid]) == []
    assert [s.row["id"] for s in store.repos.providers.states(
        store.tx, None, resident, now, now, on_shift_only=False, provider_ids=[pid, other])] == sorted([pid, other])
    assert store.repos.providers.load_counts(store.tx, pid) == (1, 1)
    assert store.repos.providers.active_count(store.tx, pid) == 1
    assert [j.request_id for j in store.repos.providers.active_jobs(store.tx, pid)] == [held.id]
    assert store.repos.providers.try_lock(store.tx, pid)
    moved = store.repos.providers.set_location(store.tx, pid, Location(31.3, 121.5), now)
    assert (moved["lat"], moved["lon"]) == (31.3, 121.5)
    assert store.repos.providers.set_on_shift(store.tx, pid, False)["on_shift"] is False
    with pytest.raises(NotFound):
        store.repos.providers.get(store.tx, "p-none")


def test_a_providers_last_sign_of_life_and_the_offers_out_to_quiet_ones(store):
    on, off = store.provider(), store.provider(on_shift=False)
    assert store.repos.providers.get(store.tx, on)["last_seen_at"] is not None  # registered on shift: alive
    assert store.repos.providers.get(store.tx, off)["last_seen_at"] is None
    t = datetime.now(UTC) + timedelta(days=1)  # after the registration's own stamp, whichever clock made it
    assert store.repos.providers.seen(store.tx, on, t)["last_seen_at"] == t
    assert store.repos.providers.seen(store.tx, on, t - timedelta(minutes=1))["last_seen_at"] == t  # never back
    assert store.repos.providers.set_on_shift(store.tx, off, True, t)["last_seen_at"] == t  # going on shift counts
    later = t + timedelta(minutes=10)
    assert store.repos.providers.set_on_shift(store.tx, off, True, later)["last_seen_at"] == t  # already on: no
    assert store.repos.providers.set_on_shift(store.tx, on, False, later)["last_seen_at"] == t  # going off: no
    with pytest.raises(NotFound):
        store.repos.providers.seen(store.tx, "p-none", t)

    r = store.request()
    offer = _offer(r, off, r.created_at)
    store.repos.offers.insert(store.tx, offer)

    def quiet(seen_before: datetime) -> list[tuple[str, str]]:
        return [o for o in store.repos.offers.to_unreachable(store.tx, seen_before, 10_000) if o[1] == r.id]

    assert quiet(t) == []  # heard from at t: not before it
    assert quiet(t + timedelta(seconds=1)) == [(offer.id, r.id)]
    store.repos.offers.save_answer(store.tx, answer(offer, OfferStatus.WITHDRAWN, t))
    assert quiet(t + timedelta(seconds=1)) == []  # only pending offers


def test_an_escalated_request_is_queued_while_no_offer_is_out(store):
    r = store.request()
    pid = store.provider()
    escalated = store.repos.requests.save(store.tx, transition(r, Status.ESCALATED, r.created_at, "system"))

    def ours() -> list[str]:
        return [i for i in store.repos.requests.queued(store.tx, 10_000) if i == r.id]

    assert ours() == [r.id]
    offer = _offer(r, pid, r.created_at)
    store.repos.offers.insert(store.tx, offer)
    store.repos.requests.save(store.tx, transition(escalated, Status.ESCALATED, r.created_at, "system", "offer.made"))
    assert store.repos.requests.load(store.tx, r.id).status is Status.ESCALATED
    assert ours() == []  # an offer is out: the queue passes it by
    store.repos.offers.save_answer(store.tx, answer(offer, OfferStatus.DECLINED, r.created_at))
    assert ours() == [r.id]


def test_shifts_start_end_and_cover(store):
    now = datetime.now(UTC)
    pid = store.provider()
    first = store.repos.shifts.add(store.tx, pid, now - timedelta(hours=8), now - timedelta(minutes=1))
    second = store.repos.shifts.add(store.tx, pid, now - timedelta(minutes=1), now + timedelta(hours=8))

    def ours(rows: list[dict]) -> list[str]:
        return [r["id"] for r in rows if r["provider_id"] == pid]

    assert ours(store.repos.shifts.to_start(store.tx, now, 10_000)) == [second["id"]]  # the first is over
    assert ours(store.repos.shifts.to_end(store.tx, now, 10_000)) == [first["id"]]
    assert store.repos.shifts.covering(store.tx, pid, now, other_than=first["id"])
    assert not store.repos.shifts.covering(store.tx, pid, now, other_than=second["id"])
    store.repos.shifts.mark(store.tx, first["id"], "ended_at", now)
    store.repos.shifts.mark(store.tx, second["id"], "started_at", now)
    assert ours(store.repos.shifts.to_start(store.tx, now, 10_000)) == []
    assert ours(store.repos.shifts.to_end(store.tx, now, 10_000)) == []
    with pytest.raises(ValueError):
        store.repos.shifts.mark(store.tx, first["id"], "provider_id", now)


def test_events_once_and_cancels_held_for_their_press(store):
    device, t0 = new_id("btn"), datetime.now(UTC)
    assert store.repos.events.first_time(store.tx, device, "e1")
    assert not store.repos.events.first_time(store.tx, device, "e1")
    store.repos.events.serialize(store.tx, "res-x", "meal")
    store.repos.events.hold_cancel(store.tx, device, "c1", "meal", t0 + timedelta(seconds=5))
    store.repos.events.hold_cancel(store.tx, device, "c2", "meal", t0 + timedelta(seconds=9))
    within = timedelta(minutes=10)
    assert store.repos.events.take_cancel(store.tx, device, "bathing", t0, within) is None
    assert store.repos.events.take_cancel(store.tx, device, "meal", t0 + timedelta(seconds=6), within) == "c2"
    assert store.repos.events.take_cancel(store.tx, device, "meal", t0, within) == "c1"
    assert store.repos.events.take_cancel(store.tx, device, "meal", t0, within) is None


def test_commands_from_queued_to_acknowledged_or_expired(store):
    device, now = new_id("btn"), datetime.now(UTC)
    r = store.request()
    command = {"command_id": new_id("c", 8), "type": "request.completed", "request_id": r.id, "service": "meal"}
    kept = store.repos.outbox.put(store.tx, device, command, kind="request.completed", deadline_s=600, request_id=r.id)
    lapsing = store.repos.outbox.put(store.tx, device, {**command, "command_id": new_id("c", 8)},
                                     kind="request.completed", deadline_s=0)
    store.repos.outbox.wake(store.tx)
    later = now + timedelta(seconds=5)
    due = store.repos.outbox.overdue(store.tx, later, 10_000)
    assert lapsing in due and kept not in due
    sent = store.repos.outbox.mark_sent(store.tx, [kept])
    assert [(s["id"], s["delivery"]) for s in sent] == [(kept, "sent")]
    assert store.repos.outbox.mark_sent(store.tx, [kept]) == []  # sent once
    row, changed = store.repos.outbox.acknowledge(store.tx, device, command["command_id"], later)
    assert changed and row["request_id"] == r.id and row["payload"]["type"] == "request.completed"
    assert store.repos.outbox.acknowledge(store.tx, device, command["command_id"], later)[1] is False
    assert store.repos.outbox.acknowledge(store.tx, device, "c-none", later) == (None, False)
    assert store.repos.outbox.expire(store.tx, kept, later) is None  # acknowledged: it does not expire
    expired = store.repos.outbox.expire(store.tx, lapsing, later)
    assert expired["id"] == lapsing and expired["sent_at"] is None
    assert store.repos.outbox.expire(store.tx, lapsing, later) is None
    assert lapsing not in store.repos.outbox.overdue(store.tx, later, 10_000)


def test_devices_are_seen_first_once_and_the_newest_state_wins(store):
    device, t0 = new_id("btn"), datetime.now(UTC)
    assert store.repos.devices.record_states(store.tx, [(device, "a", "online", t0)]) == {device}
    assert store.repos.devices.record_states(store.tx, [(device, "b", "offline", t0 + timedelta(seconds=1))]) == set()


def test_the_directory_knows_a_residents_home_and_district(store):
    rid = store.resident(district="Xuhui")
    location, district = store.repos.residents.home(store.tx, rid)
    assert district == "Xuhui" and location is not None and abs(location.lat - HOME.lat) < 1e-9
    assert store.repos.residents.home(store.tx, "res-none") == (None, None)
    store.repos.residents.check(store.tx, rid)
    with pytest.raises(NotFound):
        store.repos.residents.check(store.tx, "res-none")


def test_the_timeline_keeps_entries_in_order(store):
    r = store.request()
    at = r.created_at
    store.repos.timeline.append(store.tx, r.id, TimelineEntry(at, "x", "note", {"text": "one"}))
    store.repos.timeline.append_many(store.tx, [(r.id, TimelineEntry(at, "x", "note", {"text": "two"}))])
    if isinstance(store.repos, MemoryRepositories):
        kinds = [e.kind for e in store.repos.timeline.entries(store.tx, r.id)]
    else:
        from services.dispatch.store import timeline

        kinds = [e["kind"] for e in timeline.entries(store.tx, r.id)]
    assert kinds == ["created", "note", "note"]


def test_a_button_keys_press_run_round_trips_and_a_request_keeps_its_stuck_mark(store):
    from homecare.buttons import PressRun
    from services.dispatch.domain.presses import ButtonRun

    device = new_id("btn")
    assert store.repos.events.press_run(store.tx, device, "meal") is None
    t0 = datetime(2026, 12, 4, 9, 0, 0, 250000, tzinfo=UTC)
    request = store.request()
    young = ButtonRun(PressRun(t0, t0 + timedelta(seconds=2), 9), request.id, 3)
    store.repos.events.save_press_run(store.tx, device, "meal", young)
    assert store.repos.events.press_run(store.tx, device, "meal") == young
    assert store.repos.events.press_run(store.tx, device, "bathing") is None  # per key
    stuck = ButtonRun(PressRun(t0, t0 + timedelta(seconds=6), 25, t0 + timedelta(seconds=5)), request.id, 0)
    store.repos.events.save_press_run(store.tx, device, "meal", stuck)
    assert store.repos.events.press_run(store.tx, device, "meal") == stuck
    store.repos.requests.mark_stuck(store.tx, request.id, stuck.run)
    if isinstance(store.repos, MemoryRepositories):
        mark = store.repos.requests.row(request.id).stuck
        assert mark is not None
        assert (mark.presses, mark.started, mark.last) == (25, stuck.run.started, stuck.run.last)
    else:
        row = store.tx.execute("SELECT stuck_presses, stuck_from, stuck_to FROM dispatch.requests WHERE id = %s",
                               (request.id,)).fetchone()
        assert tuple(row.values() if isinstance(row, dict) else row) == (25, stuck.run.started, stuck.run.last)


# -- care plans and routes (issue 16) ---------------------------------------------------------

def _plan(store: Store, resident: str, **kw: Any):
    from datetime import date, time

    from services.dispatch.domain.plans import CarePlan, Recurrence, Repeat

    fields: dict[str, Any] = {
        "id": new_id("cp"), "resident_id": resident, "service": "meal",
        "recurrence": Recurrence(Repeat.WEEKDAYS, date(2026, 12, 1), weekdays=frozenset({0, 2})),
        "window_start": time(11, 30), "window_end": time(12, 30), "duration_minutes": 20,
        "skills": frozenset({"halal"}), **kw,
    }
    return CarePlan(**fields)


def _stop(plan_id: str, resident: str, day, provider_id: str | None, seq: int | None, start: datetime, **kw: Any):
    from services.dispatch.domain.routes import RouteStop

    return RouteStop(key=f"{plan_id}:{day.isoformat()}", plan_id=plan_id, day=day, resident_id=resident,
                     service="meal", earliest=start, latest=start + timedelta(hours=1), duration=20,
                     provider_id=provider_id, seq=seq, planned_arrival=start if provider_id else None,
                     planned_start=start if provider_id else None, travel_minutes=3.5 if provider_id else None,
                     district="Huangpu", **kw)


def test_care_plans_round_trip_change_and_are_found_for_their_days(store):
    from datetime import date

    from services.dispatch.domain.plans import Recurrence, Repeat

    resident = store.resident()
    pid = store.provider()
    plan = _plan(store, resident, preferred_provider_id=pid, note="no pork")
    once = _plan(store, resident, service="escort", recurrence=Recurrence(Repeat.ONCE, date(2026, 12, 9)))
    store.repos.plans.add(store.tx, plan)
    store.repos.plans.add(store.tx, once)
    assert store.repos.plans.get(store.tx, plan.id) == plan
    assert [p.id for p in store.repos.plans.of_resident(store.tx, resident)] == [plan.id, once.id]
    ended = replace(plan, active=False)
    store.repos.plans.update(store.tx, ended)
    assert store.repos.plans.get(store.tx, plan.id, lock=True) == ended
    assert [p.id for p in store.repos.plans.of_resident(store.tx, resident)] == [once.id, plan.id]  # active first
    mine = {plan.id, once.id}
    assert [p.id for p in store.repos.plans.on_day(store.tx, date(2026, 12, 9)) if p.id in mine] == [once.id]
    assert [p.id for p in store.repos.plans.on_day(store.tx, date(2026, 12, 10)) if p.id in mine] == []
    with pytest.raises(NotFound):
        store.repos.plans.get(store.tx, "cp-nothing")
    with pytest.raises(NotFound):
        store.repos.plans.update(store.tx, replace(plan, id="cp-nothing"))


def test_a_days_routes_are_replaced_except_what_was_released(store):
    from datetime import date

    resident, pid = store.resident(), store.provider()
    day = date(2031, 3, 3)  # a day no other test plans
    start = datetime(2031, 3, 3, 3, 30, tzinfo=UTC)
    plans = [_plan(store, resident) for _ in range(3)]
    for p in plans:
        store.repos.plans.add(store.tx, p)
    a = _stop(plans[0].id, resident, day, pid, 0, start)
    b = _stop(plans[1].id, resident, day, pid, 1, start + timedelta(minutes=40))
    c = _stop(plans[2].id, resident, day, None, None, start, unplanned_reason="nobody on shift that day can do it")
    store.repos.plans.lock_day(store.tx, day)
    store.repos.plans.replace_day(store.tx, day, [b, c, a])
    assert store.repos.plans.stops(store.tx, day) == [a, b, c]
    assert store.repos.plans.stops(store.tx, day, pid) == [a, b]
    # a is due for release two hours ahead of its window; b not yet
    due = [s.key for s in store.repos.plans.to_release(store.tx, start - timedelta(minutes=90), timedelta(hours=2))]
    assert a.key in due and b.key not in due and c.key not in due
    request = store.request()
    store.repos.plans.mark_released(store.tx, a.key, request.id, start - timedelta(minutes=90))
    assert a.key not in [s.key for s in store.repos.plans.to_release(store.tx, start, timedelta(hours=2))]
    # replanning: the released visit stays as it was, the rest is replaced
    moved = replace(a, seq=5)
    store.repos.plans.replace_day(store.tx, day, [moved, replace(b, seq=0)])
    got = {s.key: s for s in store.repos.plans.stops(store.tx, day)}
    assert got[a.key].seq == 0 and got[a.key].request_id == request.id and got[a.key].released
    assert got[b.key].seq == 0 and c.key not in got
    # a plan changed: its unreleased visits leave their routes, saying why
    assert store.repos.plans.unroute(store.tx, plans[1].id, day, "changed") == 1
    assert store.repos.plans.unroute(store.tx, plans[0].id, day, "changed") == 0  # released: kept
    got = {s.key: s for s in store.repos.plans.stops(store.tx, day)}
    assert got[b.key].provider_id is None and got[b.key].seq is None and got[b.key].unplanned_reason == "changed"


def test_a_providers_route_not_yet_released_is_in_its_state_for_the_next_day(store):
    now = datetime.now(UTC)
    resident, pid = store.resident(), store.provider()
    plans = [_plan(store, resident) for _ in range(3)]
    for p in plans:
        store.repos.plans.add(store.tx, p)
    soon = replace(_stop(plans[0].id, resident, now.date(), pid, 0, now + timedelta(hours=1)), lat=HOME.lat,
                   lon=HOME.lon)
    later = _stop(plans[1].id, resident, now.date(), pid, 1, now + timedelta(hours=30))  # beyond the next day
    gone = _stop(plans[2].id, resident, now.date(), pid, 2, now + timedelta(hours=2))
    store.repos.plans.replace_day(store.tx, now.date(), [soon, later, gone])
    store.repos.plans.mark_released(store.tx, gone.key, None, now)  # released: a request carries it, if any
    (state,) = store.repos.providers.states(store.tx, "meal", resident, now, now, provider_ids=[pid])
    (job,) = state.jobs
    assert (job.request_id, job.on_route, job.window_start, job.window_end, job.planned_minutes) == (
        soon.key, True, soon.earliest, soon.latest, 20)
    assert (job.lat, job.lon, job.resident_id, job.planned_start) == (HOME.lat, HOME.lon, resident, soon.planned_start)
    assert store.repos.providers.load_counts(store.tx, pid) == (0, 0)


def test_planning_runs_are_kept_newest_first(store):
    from datetime import date

    from services.dispatch.domain.routes import PlanRun

    day = date(2031, 3, 4)
    t = datetime(2031, 3, 3, 10, tzinfo=UTC)
    runs = [PlanRun(new_id("pr"), day, t + timedelta(minutes=i), "test", "ortools", 10, 9, 1, 0, 3, 123.5,
                    100.25 if i else None, 1.5) for i in range(2)]
    for r in runs:
        store.repos.plans.add_run(store.tx, r)
    assert store.repos.plans.runs(store.tx, day) == runs[::-1]
    assert store.repos.plans.runs(store.tx, day, 1) == [runs[1]]


def test_a_planned_visit_not_started_holds_no_capacity_and_is_on_the_route(store):
    from services.dispatch.domain.routes import RouteStop, released_request

    now = datetime.now(UTC)
    resident, pid = store.resident(), store.provider(capacity=1)
    window = now + timedelta(minutes=60)
    stop = RouteStop(key=f"cp-x{new_id('k')}:2031-01-01", plan_id="cp-x", day=now.date(), resident_id=resident,
                     service="meal", earliest=window, latest=window + timedelta(hours=1), duration=25,
                     provider_id=pid, seq=0, planned_arrival=window, planned_start=window)
    request, created, assigned = released_request(new_id("r"), stop, POLICY.for_service("meal"), now, HOME, "Huangpu")
    assert store.repos.requests.insert(store.tx, request, created)
    saved = store.repos.requests.save(store.tx, assigned)
    loaded = store.repos.requests.load(store.tx, request.id)
    assert loaded.planned and loaded.status is Status.ASSIGNED and loaded.provider_id == pid
    assert (loaded.window_start, loaded.window_end, loaded.planned_minutes, loaded.plan_visit_key) == (
        window, window + timedelta(hours=1), 25, stop.key)
    assert loaded.sla_due_at == window + timedelta(hours=1) and saved.eta_minutes == 60
    assert store.repos.providers.load_counts(store.tx, pid) == (0, 0)
    assert store.repos.providers.active_count(store.tx, pid) == 0
    assert store.repos.providers.active_jobs(store.tx, pid) == []
    (state,) = store.repos.providers.states(store.tx, "meal", resident, now, now, provider_ids=[pid])
    (job,) = state.jobs
    assert job.on_route and job.request_id == request.id and job.window_end == window + timedelta(hours=1)
    assert job.planned_minutes == 25 and job.resident_id == resident
    # set off: it is work in hand now
    store.repos.requests.save(store.tx, transition(saved, Status.EN_ROUTE, now, "test"))
    assert store.repos.providers.active_count(store.tx, pid) == 1
    (state,) = store.repos.providers.states(store.tx, "meal", resident, now, now, provider_ids=[pid])
    assert not state.jobs[0].on_route


def test_a_planned_request_past_its_window_not_set_off_is_claimed_as_missed_once(store):
    from services.dispatch.domain.routes import RouteStop, released_request

    now = datetime.now(UTC)
    resident, pid = store.resident(), store.provider()
    window = now - timedelta(minutes=90)
    stop = RouteStop(key=f"cp-y{new_id('k')}:2031-01-01", plan_id="cp-y", day=now.date(), resident_id=resident,
                     service="meal", earliest=window, latest=window + timedelta(hours=1), duration=25,
                     provider_id=pid, seq=0, planned_arrival=window, planned_start=window)
    request, created, assigned = released_request(new_id("r"), stop, POLICY.for_service("meal"),
                                                  window - timedelta(hours=2), HOME, None)
    store.repos.requests.insert(store.tx, request, created)
    store.repos.requests.save(store.tx, assigned)
    assert request.id not in store.repos.plans.missed_due(store.tx, window + timedelta(minutes=59))
    assert request.id in store.repos.plans.missed_due(store.tx, now, 1000)
    store.repos.plans.mark_missed(store.tx, request.id, now)
    assert request.id not in store.repos.plans.missed_due(store.tx, now, 1000)


def test_providers_skills_roster_and_shifts_overlapping_a_day(store):
    pid = store.provider()
    assert store.repos.providers.set_skills(store.tx, pid, ["hoist", "halal", "hoist"])["skills"] == ["halal", "hoist"]
    assert [r["skills"] for r in store.repos.providers.roster(store.tx) if r["id"] == pid] == [["halal", "hoist"]]
    with pytest.raises(NotFound):
        store.repos.providers.set_skills(store.tx, "p-nobody", [])
    t = datetime(2031, 5, 1, tzinfo=UTC)
    store.repos.shifts.add(store.tx, pid, t - timedelta(hours=2), t + timedelta(hours=1))
    store.repos.shifts.add(store.tx, pid, t + timedelta(hours=20), t + timedelta(hours=26))
    store.repos.shifts.add(store.tx, pid, t + timedelta(hours=30), t + timedelta(hours=32))
    mine = [s for s in store.repos.shifts.overlapping(store.tx, t, t + timedelta(days=1)) if s["provider_id"] == pid]
    assert [s["starts_at"] for s in mine] == [t - timedelta(hours=2), t + timedelta(hours=20)]
