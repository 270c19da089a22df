"""Care plans and day planning on the in-memory repositories: plans edited and checked, a day
planned by the real day planner (OR-Tools) over the providers with shifts that day, replanning
that keeps what was released, planned visits released onto their routes by the timer, a press
joining a planned visit, a provider's route in matching rather than its capacity, and a planned
visit late or missed raising the alarm. The same use cases run on PostgreSQL through the API
(tests/dispatch/test_plans_api.py); the repositories' contract holds both stores alike."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from homecare.contract.models import DeviceKind, Service
from homecare.errors import Invalid, NotFound
from homecare.internal import DeviceEvent
from services.dispatch.domain.matching import Location
from services.dispatch.domain.requests import Source, Status
from services.dispatch.store.memory import MemoryRepositories, MemoryTransactions
from services.dispatch.usecases import plans, pool, progress
from services.dispatch.usecases.context import in_memory
from services.dispatch.usecases.intake import button_pressed
from services.dispatch.workers.timers import TimerLoop

HOME = Location(31.2304, 121.4737)
DAY = date(2026, 12, 2)  # a Wednesday
T0 = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # 06:00 on DAY in Shanghai
LOCAL = 8  # Shanghai is UTC+8


def utc(hour: int, minute: int = 0) -> datetime:
    """A local time of DAY, in UTC."""
    return datetime(2026, 12, 2, hour, minute, tzinfo=UTC) - timedelta(hours=LOCAL)


def north(km: float) -> Location:
    return Location(HOME.lat + km / 111.195, HOME.lon)


@dataclass
class World:
    now: datetime = T0

    def __post_init__(self) -> None:
        self.ctx = in_memory(lambda: self.now, plan_time_limit_s=1.0)
        self.repos: MemoryRepositories = self.ctx.repos  # type: ignore[assignment]
        self.timers = TimerLoop(MemoryTransactions(), self.ctx)
        self._events = itertools.count(1)
        for i, rid in enumerate(("res-1", "res-2", "res-3")):
            self.repos.residents.add(rid, north(1 + i), "Huangpu")

    def provider(self, pid: str, km: float, services=("meal",), shift: bool = True, capacity: int = 1) -> str:
        self.repos.providers.insert(None, pid, f"Carer {pid}", list(services), north(km), capacity, True)
        if shift:
            self.repos.shifts.add(None, pid, utc(8), utc(16))
        return pid

    def lunch(self, resident: str, **kw: Any):
        fields = {"service": "meal", "repeat": "daily", "starts_on": DAY, "window_start": time(11, 30),
                  "window_end": time(12, 30), "duration_minutes": 20, **kw}
        return plans.create_plan(None, self.ctx, resident, fields, "dispatcher:ann")

    def at(self, when: datetime) -> dict[str, int]:
        """Move the clock to `when`; apps beat; one timer tick."""
        self.now = when
        for pid in self.repos.providers.rows:
            self.repos.providers.seen(None, pid, when)
        return self.timers.tick(when)

    def press(self, service: Service = Service.MEAL, resident: str = "res-1"):
        event = DeviceEvent(device_id="btn-1", device_kind=DeviceKind.BUTTON, resident_id=resident,
                            event_id=f"e{next(self._events)}", ts=self.now, type="button.pressed",
                            received_at=self.now, service=service)
        return button_pressed(None, self.ctx, event)

    def kinds(self, rid: str) -> list[str]:
        return [e.kind for e in self.repos.timeline.entries(None, rid)]

    def entry(self, rid: str, kind: str):
        return [e for e in self.repos.timeline.entries(None, rid) if e.kind == kind][-1]


@pytest.fixture
def w() -> World:
    return World()


# -- care plans -------------------------------------------------------------------------------

def test_a_care_plan_is_checked_by_the_domain_and_its_references(w):
    w.provider("p-a", 1)
    plan = w.lunch("res-1", preferred_provider_id="p-a", skills=["halal"], note="no pork")
    assert plan.active and plan.preferred_provider_id == "p-a" and plan.skills == frozenset({"halal"})
    with pytest.raises(NotFound):
        w.lunch("res-nobody")
    with pytest.raises(Invalid, match="weekdays are 0"):
        w.lunch("res-1", repeat="weekdays", weekdays=[7])
    with pytest.raises(Invalid, match="at least one weekday"):
        w.lunch("res-1", repeat="weekdays")
    with pytest.raises(Invalid, match="window: must end"):
        w.lunch("res-1", window_start=time(12, 30), window_end=time(12, 0))
    with pytest.raises(Invalid, match="cannot be planned"):
        w.lunch("res-1", service="emergency")
    with pytest.raises(Invalid, match="provider p-nobody not found"):
        w.lunch("res-1", preferred_provider_id="p-nobody")
    w.provider("p-bath", 1, services=("bathing",))
    with pytest.raises(Invalid, match="does not provide meal"):
        w.lunch("res-1", preferred_provider_id="p-bath")
    changed = plans.update_plan(None, w.ctx, plan.id, {"window_end": time(13, 0)}, "dispatcher:ann")
    assert changed.window_end == time(13, 0) and changed.note == "no pork"
    with pytest.raises(Invalid, match="unknown field"):
        plans.update_plan(None, w.ctx, plan.id, {"resident_id": "res-2"}, "dispatcher:ann")
    ended = plans.end_plan(None, w.ctx, plan.id, "dispatcher:ann")
    assert not ended.active and [p.active for p in w.repos.plans.of_resident(None, "res-1")] == [False]
    with pytest.raises(Invalid, match="has ended"):
        plans.update_plan(None, w.ctx, plan.id, {"note": "x"}, "dispatcher:ann")


def test_a_paused_plan_asks_for_no_visit_on_its_days_and_says_why(w):
    """In hospital for a few days: the plan's visits on them leave their routes and are not
    planned again, each unplanned with the pause's reason; a released visit goes on and is named;
    resuming puts the days back for their next planning run."""
    w.provider("p-a", 1)
    for n in (1, 2, 3):
        w.repos.shifts.add(None, "p-a", utc(8) + timedelta(days=n), utc(16) + timedelta(days=n))
    plan = w.lunch("res-1")
    plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    plans.plan_day(MemoryTransactions(), w.ctx, DAY + timedelta(days=1), "dispatcher:ann")
    assert w.repos.plans.stops(None, DAY + timedelta(days=1))[0].provider_id == "p-a"
    w.at(utc(9, 30))  # today's lunch is released
    (today_,) = w.repos.plans.stops(None, DAY)
    assert today_.released

    pause, released = plans.pause_plan(None, w.ctx, plan.id, DAY, DAY + timedelta(days=2),
                                       "in Ruijin Hospital after a fall", "dispatcher:ann")
    assert released == [today_.request_id]  # released already: it goes unless cancelled
    (tomorrow,) = w.repos.plans.stops(None, DAY + timedelta(days=1))
    assert tomorrow.provider_id is None and tomorrow.unplanned_reason == (
        "care plan paused 2026-12-02 to 2026-12-04: in Ruijin Hospital after a fall")
    assert w.repos.plans.get(None, plan.id).paused_on(DAY + timedelta(days=2)) == pause
    for day in (DAY + timedelta(days=1), DAY + timedelta(days=2)):  # replanned: still not routed
        run = plans.plan_day(MemoryTransactions(), w.ctx, day, "dispatcher:ann")
        assert (run.visits, run.planned, run.unplanned) == (1, 0, 1)
        (stop,) = w.repos.plans.stops(None, day)
        assert stop.provider_id is None and stop.unplanned_reason == pause.says
    assert w.at(utc(9, 30) + timedelta(days=1))["plans_released"] == 0  # nothing to release
    run = plans.plan_day(MemoryTransactions(), w.ctx, DAY + timedelta(days=3), "dispatcher:ann")
    assert run.planned == 1  # the day after the pause: as usual

    with pytest.raises(Invalid, match="overlaps a pause"):
        plans.pause_plan(None, w.ctx, plan.id, DAY + timedelta(days=2), DAY + timedelta(days=5), "x", "d:a")
    with pytest.raises(Invalid, match="must not be before from_day"):
        plans.pause_plan(None, w.ctx, plan.id, DAY + timedelta(days=9), DAY + timedelta(days=8), "x", "d:a")
    with pytest.raises(Invalid, match="today"):
        plans.pause_plan(None, w.ctx, plan.id, DAY - timedelta(days=9), DAY - timedelta(days=8), "x", "d:a")
    with pytest.raises(Invalid, match="say why"):
        plans.pause_plan(None, w.ctx, plan.id, DAY + timedelta(days=9), DAY + timedelta(days=9), "  ", "d:a")
    with pytest.raises(Invalid, match="control characters"):
        plans.pause_plan(None, w.ctx, plan.id, DAY + timedelta(days=9), DAY + timedelta(days=9), "a\nb", "d:a")
    with pytest.raises(Invalid, match="at most 366 days"):
        plans.pause_plan(None, w.ctx, plan.id, DAY + timedelta(days=9), DAY + timedelta(days=400), "x", "d:a")
    # a change of the plan keeps its pauses
    plans.update_plan(None, w.ctx, plan.id, {"duration_minutes": 25}, "dispatcher:ann")
    assert w.repos.plans.get(None, plan.id).pauses == (pause,)

    resumed = plans.resume_plan(None, w.ctx, plan.id, pause.id, "dispatcher:ann")
    assert resumed.pauses == ()
    (back,) = w.repos.plans.stops(None, DAY + timedelta(days=2))
    assert back.unplanned_reason == plans.CHANGED  # plan the day again
    run = plans.plan_day(MemoryTransactions(), w.ctx, DAY + timedelta(days=2), "dispatcher:ann")
    assert run.planned == 1
    with pytest.raises(NotFound):
        plans.resume_plan(None, w.ctx, plan.id, pause.id, "dispatcher:ann")


# -- planning a day ---------------------------------------------------------------------------

def test_a_day_is_planned_over_the_providers_with_shifts_that_day(w):
    w.provider("p-a", 1)
    w.provider("p-idle", 0.5, shift=False)  # on shift now, but no shift planned that day: not planned
    for rid in ("res-1", "res-2", "res-3"):
        w.lunch(rid)
    w.lunch("res-1", service="bathing", window_start=time(14, 0), window_end=time(15, 0))  # nobody bathes
    run = plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    assert (run.visits, run.planned, run.unplanned, run.workers, run.solver) == (4, 3, 1, 1, "ortools")
    assert run.travel_minutes > 0 and w.repos.plans.runs(None, DAY) == [run]
    route = w.repos.plans.stops(None, DAY, "p-a")
    assert [s.seq for s in route] == [0, 1, 2]
    for stop in route:  # every planned start is inside its window, in route order
        assert stop.planned_start is not None and stop.earliest <= stop.planned_start <= stop.latest
    assert [s.planned_start for s in route] == sorted(s.planned_start for s in route)
    (bath,) = [s for s in w.repos.plans.stops(None, DAY) if s.provider_id is None]
    assert bath.service == "bathing" and bath.unplanned_reason == "no qualified provider"


def test_a_split_shift_gets_no_visit_in_its_break(w):
    """Shifts 7-11 and 16-20 (and one 11-12 touching the first: the same part) are planned as two
    parts; a bath asked for at 13-15 is no one's, the evening visit waits for 16:00."""
    w.provider("p-a", 1, services=("meal", "bathing"), shift=False)
    for a, b in ((utc(7), utc(11)), (utc(11), utc(12)), (utc(16), utc(20))):
        w.repos.shifts.add(None, "p-a", a, b)
    w.lunch("res-1")  # 11:30-12:30: in the morning part, which the 11-12 shift extends to 12:00
    w.lunch("res-2", window_start=time(11, 0), window_end=time(11, 40))
    w.lunch("res-3", service="bathing", window_start=time(13, 0), window_end=time(15, 0))
    w.lunch("res-1", service="bathing", window_start=time(14, 0), window_end=time(18, 0), duration_minutes=40)
    run = plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    assert run.workers == 1  # a provider, in two parts
    stops = {(s.resident_id, s.service): s for s in w.repos.plans.stops(None, DAY)}
    assert stops[("res-3", "bathing")].provider_id is None
    assert stops[("res-2", "meal")].provider_id == "p-a" and stops[("res-1", "meal")].provider_id == "p-a"
    evening = stops[("res-1", "bathing")]
    assert evening.provider_id == "p-a" and evening.planned_start >= utc(16)
    assert not any(utc(12) < s.planned_start < utc(16) for s in stops.values() if s.planned_start)
    route = w.repos.plans.stops(None, DAY, "p-a")
    assert [s.seq for s in route] == list(range(len(route)))
    assert [s.planned_start for s in route] == sorted(s.planned_start for s in route)


def test_replanning_keeps_released_visits_and_a_changed_plan_leaves_its_route(w):
    w.provider("p-a", 1)
    first, second = w.lunch("res-1"), w.lunch("res-2", window_start=time(13, 0), window_end=time(14, 0))
    plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    w.at(utc(9, 45))  # two hours before 11:30 and then some: the lunch of res-1 is released
    (released,) = [s for s in w.repos.plans.stops(None, DAY) if s.released]
    assert released.plan_id == first.id and released.request_id
    plans.update_plan(None, w.ctx, second.id, {"duration_minutes": 30}, "dispatcher:ann")
    (moved,) = [s for s in w.repos.plans.stops(None, DAY) if s.plan_id == second.id]
    assert moved.provider_id is None and "plan the day again" in (moved.unplanned_reason or "")
    run = plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    assert (run.kept, run.planned, run.unplanned) == (1, 2, 0)
    stops = {s.plan_id: s for s in w.repos.plans.stops(None, DAY)}
    assert stops[first.id] == released  # as it was
    assert stops[second.id].provider_id == "p-a" and stops[second.id].duration == 30
    assert (released.seq, stops[second.id].seq) == (0, 1)  # after the released one on the route
    # the replanned route starts after the released visit
    assert stops[second.id].planned_start >= released.planned_start + timedelta(minutes=20)


def test_replanning_starts_a_provider_after_the_press_it_is_at(w):
    """A provider at a resident's press is not free at its door: replanned mid-day, its route
    starts when the press is expected to be done, from where the press is."""
    w.provider("p-a", 1, services=("meal", "escort"))
    w.lunch("res-1")
    plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    (before,) = w.repos.plans.stops(None, DAY)
    assert before.planned_start == utc(11, 30)  # free all morning: there when the window opens
    w.now = utc(9, 0)  # before the lunch is released (two hours before its window)
    press = w.press(Service.ESCORT, resident="res-3")
    progress.assign_manually(None, w.ctx, press.request_id, "p-a", "dispatcher:ann", override_shift=False)
    progress.advance(None, w.ctx, press.request_id, Status.EN_ROUTE, "provider:p-a", "p-a")
    w.now = utc(9, 20)
    progress.advance(None, w.ctx, press.request_id, Status.ARRIVED, "provider:p-a", "p-a")
    w.lunch("res-2", window_start=time(9, 30), window_end=time(11, 0))  # a visit added this morning
    run = plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    assert (run.planned, run.unplanned, run.workers) == (2, 0, 1)
    stops = {s.resident_id: s for s in w.repos.plans.stops(None, DAY)}
    done = utc(9, 20) + w.ctx.policy.for_service(Service.ESCORT).expected_service  # 10:05, at res-3
    drive = timedelta(hours=1 / w.ctx.weights.speed_kmh)  # res-3 to res-2: 1 km
    assert stops["res-2"].planned_start >= done + drive - timedelta(minutes=1)
    assert stops["res-2"].planned_start < done + drive + timedelta(minutes=2)
    assert stops["res-1"].planned_start == utc(11, 30)
    # Done with the press, the provider is free again: a replan starts it now, where it is.
    progress.advance(None, w.ctx, press.request_id, Status.COMPLETED, "provider:p-a", "p-a")
    plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    (early,) = [s for s in w.repos.plans.stops(None, DAY) if s.resident_id == "res-2"]
    assert early.planned_start < done


def _solves(outcome: str) -> float:
    return REGISTRY.get_sample_value("dispatch_plan_solves_total", {"outcome": outcome}) or 0.0


def test_visits_released_while_the_day_is_solved_make_it_solve_again(w):
    """The solver runs outside the day's lock: a visit the timer releases meanwhile changes what
    the day was planned from, so the run reads and solves it again rather than write routes that
    place a released visit twice; after PLAN_ATTEMPTS - 1 such tries it solves under the lock."""
    w.provider("p-a", 1)
    lunch = w.lunch("res-1")  # 11:30: released at 09:30
    tea = w.lunch("res-2", window_start=time(13, 0), window_end=time(14, 0))  # released at 11:00
    w.lunch("res-3", window_start=time(15, 0), window_end=time(16, 0))
    plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    meanwhile = [utc(9, 30), utc(11, 0)]  # what the timer does while each solve runs
    solves = []

    def planner(*args, **kwargs):
        solves.append(len(args[1]))  # the visits it was asked to route
        plan = plans.default_planner()(*args, **kwargs)
        if meanwhile:
            w.at(meanwhile.pop(0))
        return plan

    before = {o: _solves(o) for o in ("written", "stale", "under_lock")}
    run = plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann", planner)
    assert solves == [3, 2, 1] and plans.PLAN_ATTEMPTS == 3  # each solve saw one visit fewer to route
    assert {o: _solves(o) - n for o, n in before.items()} == {"written": 0, "stale": 2, "under_lock": 1}
    assert (run.visits, run.kept, run.planned, run.unplanned) == (3, 2, 3, 0)
    stops = {s.plan_id: s for s in w.repos.plans.stops(None, DAY)}
    assert stops[lunch.id].released and stops[tea.id].released
    route = w.repos.plans.stops(None, DAY, "p-a")
    assert [s.seq for s in route] == [0, 1, 2] and [s.plan_id for s in route][:2] == [lunch.id, tea.id]
    assert len({s.request_id for s in route if s.request_id}) == 2  # each released once


def test_the_evening_run_plans_tomorrow_once(w):
    w.ctx.plan_evening_hour = 18
    w.provider("p-a", 1)
    w.lunch("res-1")
    evening = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai, the day before DAY
    assert plans.plan_evening(MemoryTransactions(), w.ctx, evening - timedelta(minutes=1)) is None
    run = plans.plan_evening(MemoryTransactions(), w.ctx, evening)
    assert run is not None and run.day == DAY and run.actor == "system:evening"
    assert plans.plan_evening(MemoryTransactions(), w.ctx, evening + timedelta(hours=1)) is None  # planned already


def test_the_timer_plans_tomorrow_in_the_evening_beside_its_ticks(w):
    w.ctx.plan_evening_hour = 18
    w.provider("p-a", 1)
    w.lunch("res-1")
    w.at(datetime(2026, 12, 1, 9, 59, tzinfo=UTC))  # 17:59 in Shanghai
    assert w.timers.evening_run is None
    w.at(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    assert w.timers.evening_run is not None
    w.timers.evening_run.join(30)
    (run,) = w.repos.plans.runs(None, DAY)
    assert run.actor == "system:evening" and run.planned == 1
    first = w.timers.evening_run
    w.at(datetime(2026, 12, 1, 11, 0, tzinfo=UTC))
    assert w.timers.evening_run is first  # once an evening


# -- the lifecycle of planned visits ----------------------------------------------------------

def _planned_lunch(w: World) -> str:
    w.provider("p-a", 1)
    w.lunch("res-1")
    plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    assert w.at(utc(9, 29))["plans_released"] == 0  # 2 h before 11:30 is 9:30
    assert w.at(utc(9, 30))["plans_released"] == 1
    (stop,) = w.repos.plans.stops(None, DAY)
    assert stop.request_id is not None
    return stop.request_id


def test_a_planned_visit_becomes_a_request_on_its_route_at_the_lead_time(w):
    rid = _planned_lunch(w)
    request = w.repos.requests.load(None, rid)
    assert request.source is Source.PLAN and request.status is Status.ASSIGNED and request.provider_id == "p-a"
    assert (request.window_start, request.window_end, request.sla_due_at) == (utc(11, 30), utc(12, 30), utc(12, 30))
    assert request.assigned_at == utc(9, 30) and request.assign_due_at == utc(9, 30)  # assigned in time
    assert request.planned_start is not None and request.route_seq == 0
    assert w.kinds(rid)[:2] == ["created", "assigned"]
    assert w.entry(rid, "created").actor.startswith("plan:")
    # the rest of the lifecycle is the usual one
    for to in (Status.EN_ROUTE, Status.ARRIVED, Status.COMPLETED):
        progress.advance(None, w.ctx, rid, to, "provider:p-a", "p-a")
    assert w.repos.requests.load(None, rid).status is Status.COMPLETED


def test_a_planned_visit_not_started_is_the_providers_route_not_its_load(w):
    rid = _planned_lunch(w)
    press = w.press(Service.MEAL, resident="res-2")  # another resident's press, now
    request = w.repos.requests.load(None, press.request_id)
    (candidate,) = pool.candidates(None, w.ctx, request, w.now)
    assert candidate.active == 0 and candidate.free_capacity == 1 and candidate.busy_minutes == 0
    (upcoming,) = candidate.route
    assert upcoming.request_id == rid and upcoming.service_minutes == 20
    assert upcoming.earliest_minutes == 120 and upcoming.latest_minutes == 180 and upcoming.label == "meal for res-1"


def test_a_planned_route_is_seen_by_matching_before_its_visits_are_released(w):
    w.provider("p-a", 1)
    w.lunch("res-1")
    plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    w.at(utc(8, 0))  # 3.5 h before the window: not released yet
    (stop,) = w.repos.plans.stops(None, DAY)
    assert not stop.released
    press = w.press(Service.MEAL, resident="res-2")
    (candidate,) = pool.candidates(None, w.ctx, w.repos.requests.load(None, press.request_id), w.now)
    (upcoming,) = candidate.route
    assert upcoming.request_id == stop.key and upcoming.location == north(1)
    assert (upcoming.earliest_minutes, upcoming.latest_minutes) == (210, 270) and candidate.active == 0


def test_a_press_of_the_service_of_a_released_planned_visit_joins_it(w):
    rid = _planned_lunch(w)
    joined = w.press(Service.MEAL, resident="res-1")
    assert joined.outcome == "joined" and joined.request_id == rid
    request = w.repos.requests.load(None, rid)
    assert request.urgency == 2 and request.provider_id == "p-a" and request.status is Status.ASSIGNED
    assert "pressed_again" in w.kinds(rid)


def test_a_planned_visit_released_while_a_press_of_its_service_is_open_joins_the_press(w):
    w.provider("p-a", 1)
    w.provider("p-b", 5, shift=False)  # takes presses today, plans nothing
    w.lunch("res-1")
    plans.plan_day(MemoryTransactions(), w.ctx, DAY, "dispatcher:ann")
    w.now = utc(9, 0)
    pressed = w.press(Service.MEAL, resident="res-1")
    w.at(utc(9, 30))
    (stop,) = w.repos.plans.stops(None, DAY)
    assert stop.request_id == pressed.request_id  # one visit, not two
    assert "plan_joined" in w.kinds(pressed.request_id)


def test_a_planned_visit_nobody_set_off_for_is_missed_and_escalated(w):
    rid = _planned_lunch(w)
    assert w.at(utc(12, 29))["plans_missed"] == 0
    fired = w.at(utc(12, 30))
    assert fired["plans_missed"] == 1 and fired["late"] == 0
    request = w.repos.requests.load(None, rid)
    assert request.status is Status.ESCALATED and request.provider_id is None
    reason = w.entry(rid, "escalated").detail["reason"]
    assert reason == "planned visit missed: window ended 12:30 and Carer p-a had not set off"
    assert [n.trigger for n in w.repos.notices.queued if n.subject_id == rid] == ["request.escalated"]
    assert w.at(utc(12, 31))["plans_missed"] == 0  # once


def test_a_planned_visit_on_the_way_when_its_window_ends_is_late(w):
    rid = _planned_lunch(w)
    w.now = utc(12, 10)
    progress.advance(None, w.ctx, rid, Status.EN_ROUTE, "provider:p-a", "p-a")
    assert w.at(utc(12, 29))["late"] == 0
    fired = w.at(utc(12, 30))
    assert fired["late"] == 1 and fired["plans_missed"] == 0
    assert w.entry(rid, "sla.at_risk").detail["reason"] == "planned visit late: window ended 12:30"
    (notice,) = [n for n in w.repos.notices.queued if n.subject_id == rid]
    assert notice.trigger == "request.late" and "window ended 12:30" in notice.text
    assert w.repos.requests.load(None, rid).status is Status.EN_ROUTE  # still on the way: not taken from it


def test_a_planned_visit_reassigned_to_someone_who_cannot_make_its_window_is_late_at_once(w):
    rid = _planned_lunch(w)
    w.provider("p-far", 60)  # 60 km away: over two hours' drive
    w.at(utc(11, 0))
    request = progress.assign_manually(None, w.ctx, rid, "p-far", "dispatcher:ann", override_shift=False)
    expected = (request.assigned_at + timedelta(minutes=request.eta_minutes)) + timedelta(hours=LOCAL)
    assert expected > datetime(2026, 12, 2, 12, 30, tzinfo=UTC)
    assert w.at(utc(11, 0))["late"] == 1
    assert w.entry(rid, "sla.at_risk").detail["reason"] == (
        f"planned visit late: window ends 12:30 (expected {expected:%H:%M})")
