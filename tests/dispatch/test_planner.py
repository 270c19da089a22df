"""The day planner (services/dispatch/domain/planner.py) on days small enough to check by hand or
by brute force: windows, skills, shift ends and preferences kept, visits left out with the right
reason, the solver's driving against every way to route a tiny day, and the bound below it. The
routes are checked with this file's own timing, not the module's. No database needed."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from services.dispatch.domain.matching import Location, haversine_km
from services.dispatch.domain.planner import (
    NO_LOCATION,
    NO_PROVIDER,
    NO_ROOM,
    PREFERENCE_MINUTES,
    WINDOW_UNREACHABLE,
    greedy_day,
    on_call,
    plan_day,
    travel_bound,
)
from services.dispatch.domain.plans import DayPlan, PlannedVisit, Worker

DAY = date(2026, 12, 7)
SPEED = 25.0
CENTRE = Location(31.23, 121.47)
LIMIT = 1.0  # seconds per solve: the days here are tiny


def east(km: float, north: float = 0.0) -> Location:
    return Location(CENTRE.lat + north / 111.2, CENTRE.lon + km / (111.2 * math.cos(math.radians(CENTRE.lat))))


def at(hours: float) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC) + timedelta(hours=hours)


def drive(a: Location, b: Location) -> float:
    return haversine_km(a, b) / SPEED * 60


def visit(pid: str, where: Location | None, start_h: float, end_h: float, minutes: int = 20,
          service: str = "meal", skills: frozenset[str] = frozenset(), preferred: str | None = None,
          district: str | None = None) -> PlannedVisit:
    return PlannedVisit(pid, DAY, f"res-{pid}", service, at(start_h), at(end_h), minutes, where, skills,
                        preferred, district)


def worker(pid: str, home: Location, start_h: float = 8, end_h: float = 16,
           services: frozenset[str] = frozenset({"meal", "bathing", "escort", "mobility"}),
           skills: frozenset[str] = frozenset(), districts: frozenset[str] = frozenset()) -> Worker:
    return Worker(pid, home, at(start_h), at(end_h), services, skills, districts)


def check(plan: DayPlan, visits: list[PlannedVisit], workers: list[Worker]) -> float:
    """Every route kept the rules, timed here independently; returns the minutes driven."""
    by_id = {w.provider_id: w for w in workers}
    seen: set[str] = set()
    total = 0.0
    for pid, stops in plan.routes.items():
        w = by_id[pid]
        place, free = w.start, w.shift_start
        for stop in stops:
            v = stop.visit
            assert w.can_do(v), f"{pid} cannot do {v.key}"
            assert v.location is not None
            arrive = free + timedelta(minutes=drive(place, v.location))
            start = max(arrive, v.earliest)
            assert abs((stop.start - start).total_seconds()) < 1e-3
            assert v.earliest <= start <= v.latest, f"{v.key} starts outside its window"
            total += drive(place, v.location)
            place, free = v.location, start + timedelta(minutes=v.duration_minutes)
            seen.add(v.key)
        if stops:
            total += drive(place, w.start)
            assert free + timedelta(minutes=drive(place, w.start)) <= w.shift_end, f"{pid} back after its shift"
    assert seen | set(plan.unplanned) == {v.key for v in visits}
    assert not seen & set(plan.unplanned)
    assert plan.travel_minutes == pytest.approx(total, abs=1e-6)
    assert plan.bound_minutes is not None and plan.bound_minutes <= total + 1e-6
    return total


def test_windows_kept_and_the_route_in_window_order():
    w = worker("p1", CENTRE)
    visits = [visit("late", east(1), 12, 12.5), visit("early", east(2), 9, 9.5), visit("mid", east(3), 10.5, 11)]
    plan = plan_day(DAY, visits, [w], time_limit_s=LIMIT)
    check(plan, visits, [w])
    assert [s.visit.plan_id for s in plan.routes["p1"]] == ["early", "mid", "late"]
    assert plan.solver == "ortools" and not plan.unplanned
    first = plan.routes["p1"][0]
    assert first.start == at(9)  # it waits for the window, arriving early
    assert first.arrive < first.start


def test_skills_services_and_districts_respected():
    hoist = worker("hoist", east(5), skills=frozenset({"hoist"}))
    plain = worker("plain", CENTRE)
    meals = worker("meals", CENTRE, services=frozenset({"meal"}), districts=frozenset({"north"}))
    visits = [visit("bath", east(0.2), 9, 10, 40, "bathing", frozenset({"hoist"})),
              visit("walk", east(0.1), 9, 10, 20, "mobility"),
              visit("lunch", east(0.3), 11, 12, 15, "meal", district="south")]
    plan = plan_day(DAY, visits, [hoist, plain, meals], time_limit_s=LIMIT)
    check(plan, visits, [hoist, plain, meals])
    assert "bath" in [s.visit.plan_id for s in plan.routes["hoist"]]  # nearer for plain, but it lacks the skill
    assert "bath" not in [s.visit.plan_id for s in plan.routes["plain"]]
    assert not plan.routes["meals"]  # lunch is in a district it does not serve


def test_shift_end_kept_and_no_room_reported():
    w = worker("p1", CENTRE, 8, 10)
    visits = [visit("a", east(2), 8, 9.5, 55), visit("b", east(2, 1), 8, 9.5, 55)]
    plan = plan_day(DAY, visits, [w], time_limit_s=LIMIT)
    check(plan, visits, [w])
    assert len(plan.routes["p1"]) == 1  # both would not end in time to drive back by 10:00
    assert list(plan.unplanned.values()) == [NO_ROOM]


def test_unplannable_visits_have_their_reason():
    w = worker("p1", CENTRE, 8, 12, services=frozenset({"meal"}))
    visits = [visit("nowhere", None, 9, 10), visit("bath", east(1), 9, 10, service="bathing"),
              visit("evening", east(1), 18, 19), visit("skill", east(1), 9, 10, skills=frozenset({"hoist"})),
              visit("ok", east(1), 9, 10)]
    for planner in (plan_day, greedy_day):
        plan = planner(DAY, visits, [w], time_limit_s=LIMIT)
        check(plan, visits, [w])
        assert plan.unplanned == {"nowhere:2026-12-07": NO_LOCATION, "bath:2026-12-07": NO_PROVIDER,
                                  "evening:2026-12-07": WINDOW_UNREACHABLE, "skill:2026-12-07": NO_PROVIDER}
        assert [s.visit.plan_id for s in plan.routes["p1"]] == ["ok"]


def test_preferred_provider_honoured_when_free_and_not_when_it_costs_too_much():
    near, familiar = worker("near", east(0.5)), worker("familiar", east(3))
    visits = [visit("v", east(0), 10, 11, preferred="familiar")]
    plan = plan_day(DAY, visits, [near, familiar], time_limit_s=LIMIT)
    check(plan, visits, [near, familiar])
    assert [s.visit.plan_id for s in plan.routes["familiar"]] == ["v"]  # 5 km more driving < PREFERENCE_MINUTES

    far = worker("familiar", east(20))  # 40 km more: more than the preference is worth
    assert 2 * drive(east(20), CENTRE) - 2 * drive(east(0.5), CENTRE) > PREFERENCE_MINUTES
    plan = plan_day(DAY, visits, [near, far], time_limit_s=LIMIT)
    assert [s.visit.plan_id for s in plan.routes["near"]] == ["v"]

    busy = worker("familiar", east(3), 8, 9)  # not on shift then: the other takes it
    plan = plan_day(DAY, visits, [near, busy], time_limit_s=LIMIT)
    assert [s.visit.plan_id for s in plan.routes["near"]] == ["v"]


def test_a_split_shift_is_planned_as_its_parts_with_nothing_in_the_break():
    """Mornings 7-11 and evenings 16-20 (getting up, going to bed): one worker per part, each from
    and back to the provider's door; a visit whose window lies in the break is no one's, one whose
    window spans the break waits for the evening, and the route joins the parts in time order.
    The preferred provider is any part of it."""
    morning, evening = worker("p1", CENTRE, 7, 11), worker("p1", CENTRE, 16, 20)
    other = worker("p2", east(15), 7, 20, services=frozenset({"bathing"}))
    visits = [visit("up", east(1), 7, 8, 30), visit("bed", east(1), 19, 20, 30),
              visit("noon", east(1), 12, 14, 20, service="bathing"),
              visit("span", east(2), 10.9, 17, 20, preferred="p1")]
    for planner in (plan_day, greedy_day):
        plan = planner(DAY, visits, [morning, evening], time_limit_s=LIMIT)
        route = plan.routes["p1"]
        assert [s.visit.plan_id for s in route] == ["up", "span", "bed"], planner
        assert [s.start for s in route] == sorted(s.start for s in route)
        up, span, bed = route
        assert morning.shift_start <= up.arrive and up.end + timedelta(minutes=drive(east(1), CENTRE)) <= at(11)
        # span could start at 10:54 by the clock, but would end after 11:00 with the drive home:
        assert span.start >= at(16) + timedelta(minutes=drive(CENTRE, east(2))) - timedelta(seconds=1)
        assert bed.end + timedelta(minutes=drive(east(1), CENTRE)) <= at(20)
        assert plan.unplanned == {"noon:2026-12-07": WINDOW_UNREACHABLE}
        both_ways = 2 * drive(CENTRE, east(1)) * 2 + 2 * drive(CENTRE, east(2))  # two round trips + one
        assert plan.travel_minutes <= both_ways + 2 * drive(east(1), east(2)) + 1e-6
    beside = worker("p3", east(2), 7, 20, services=frozenset({"meal"}))  # lives next door to "span"
    assert 2 * drive(CENTRE, east(2)) < PREFERENCE_MINUTES
    plan = plan_day(DAY, visits, [morning, other, beside, evening], time_limit_s=LIMIT)
    assert "span" in [s.visit.plan_id for s in plan.routes["p1"]]  # preferred: either part counts
    assert [s.visit.plan_id for s in plan.routes["p2"]] == ["noon"]  # in p1's break: p2's
    without = [v if v.plan_id != "span" else visit("span", east(2), 10.9, 17, 20) for v in visits]
    plan = plan_day(DAY, without, [morning, other, beside, evening], time_limit_s=LIMIT)
    assert "span" in [s.visit.plan_id for s in plan.routes["p3"]]  # no preference: the neighbour


def test_empty_days():
    assert plan_day(DAY, [], [worker("p1", CENTRE)]).routes == {"p1": ()}
    plan = plan_day(DAY, [visit("a", east(1), 9, 10)], [], time_limit_s=LIMIT)
    assert plan.unplanned == {"a:2026-12-07": NO_PROVIDER} and plan.travel_minutes == 0


# -- against brute force ---------------------------------------------------------------------------


def _route_minutes(w: Worker, route: tuple[PlannedVisit, ...]) -> float | None:
    """Minutes driven on the route, or None if it breaks a rule (timed here, independently)."""
    place, free, total = w.start, w.shift_start, 0.0
    for v in route:
        if not w.can_do(v) or v.location is None:
            return None
        total += drive(place, v.location)
        start = max(free + timedelta(minutes=drive(place, v.location)), v.earliest)
        if start > v.latest:
            return None
        place, free = v.location, start + timedelta(minutes=v.duration_minutes)
    if route:
        total += drive(place, w.start)
        if free + timedelta(minutes=drive(place, w.start)) > w.shift_end:
            return None
    return total


def brute_force(visits: list[PlannedVisit], workers: list[Worker]) -> tuple[int, float]:
    """(fewest visits left out, least driving with that many): every subset, split and order."""
    best = (len(visits) + 1, math.inf)
    best_route: dict[tuple[int, tuple[str, ...]], float | None] = {}
    for owners in itertools.product(range(len(workers) + 1), repeat=len(visits)):  # len(workers): left out
        left_out = sum(1 for o in owners if o == len(workers))
        if left_out > best[0]:
            continue
        total = 0.0
        for k, w in enumerate(workers):
            mine = [v for v, o in zip(visits, owners, strict=True) if o == k]
            cheapest = math.inf
            for order in itertools.permutations(mine):
                key = (k, tuple(v.plan_id for v in order))
                if key not in best_route:
                    best_route[key] = _route_minutes(w, order)
                minutes = best_route[key]
                if minutes is not None:
                    cheapest = min(cheapest, minutes)
            total += cheapest
        if total < math.inf:
            best = min(best, (left_out, total))
    return best


def tiny_day(seed: int) -> tuple[list[PlannedVisit], list[Worker]]:
    rng = random.Random(seed)
    workers = [worker(f"p{k}", east(rng.uniform(-3, 3), rng.uniform(-3, 3)), rng.choice([8, 9]),
                      rng.choice([12, 13]), frozenset(rng.sample(["meal", "bathing", "mobility"], 2)))
               for k in range(2)]
    visits = []
    for i in range(5):
        start = rng.uniform(8, 12)
        visits.append(visit(f"v{i}", east(rng.uniform(-4, 4), rng.uniform(-4, 4)), start,
                            start + rng.choice([0.25, 0.5, 1, 2]), rng.choice([15, 30, 45]),
                            rng.choice(["meal", "bathing", "mobility"])))
    return visits, workers


@pytest.mark.parametrize("seed", range(8))
def test_solver_matches_brute_force_on_tiny_days(seed):
    visits, workers = tiny_day(seed)
    left_out, optimum = brute_force(visits, workers)
    plan = plan_day(DAY, visits, workers, time_limit_s=LIMIT)
    driven = check(plan, visits, workers)
    assert len(plan.unplanned) == left_out
    # The solver rounds drives up to whole seconds: the optimum in seconds may differ by as much.
    assert driven == pytest.approx(optimum, abs=0.2)
    greedy = greedy_day(DAY, visits, workers)
    greedy_driven = check(greedy, visits, workers)
    assert len(greedy.unplanned) > left_out or greedy_driven >= optimum - 1e-6
    # The bound of the set the solver served is below the best way to serve that set.
    served = [s.visit for stops in plan.routes.values() for s in stops]
    assert travel_bound(served, workers, speed_kmh=SPEED) <= optimum + 1e-6


def test_bound_is_tight_on_a_single_visit_and_below_a_real_day():
    w = worker("p1", CENTRE)
    v = visit("a", east(2), 9, 10)
    assert travel_bound([v], [w]) == pytest.approx(2 * drive(CENTRE, east(2)), abs=1e-2)
    rng = random.Random(3)
    workers = [worker(f"p{k}", east(rng.uniform(-5, 5), rng.uniform(-5, 5)), 8, 14) for k in range(4)]
    visits = []
    for i in range(30):
        start = rng.uniform(8, 12)
        visits.append(visit(f"v{i}", east(rng.uniform(-5, 5), rng.uniform(-5, 5)), start, start + 1, 15))
    plan = plan_day(DAY, visits, workers, time_limit_s=2)
    greedy = greedy_day(DAY, visits, workers)
    check(greedy, visits, workers)
    assert check(plan, visits, workers) <= greedy.travel_minutes + 1e-6 or len(plan.unplanned) < len(greedy.unplanned)
    assert 0 < plan.bound_minutes <= plan.travel_minutes


def test_a_buffer_keeps_the_end_of_windows_free_when_it_can():
    # Two visits next door, both 9:00-10:00, 50 minutes each: one worker must start the second at
    # about 9:50, ten minutes into a 20-minute buffer; a second worker costs 2.4 minutes more driving.
    w1, w2 = worker("p1", CENTRE), worker("p2", east(1))
    visits = [visit("a", east(0.5), 9, 10, 50), visit("b", east(0.5, 0.1), 9, 10, 50)]
    tight = plan_day(DAY, visits, [w1, w2], time_limit_s=LIMIT)
    check(tight, visits, [w1, w2])
    assert sorted(len(stops) for stops in tight.routes.values()) == [0, 2]  # one route drives least
    roomy = plan_day(DAY, visits, [w1, w2], time_limit_s=LIMIT, buffer_minutes=20)
    check(roomy, visits, [w1, w2])
    assert sorted(len(stops) for stops in roomy.routes.values()) == [1, 1]
    assert all(s.start <= s.visit.latest - timedelta(minutes=20) for stops in roomy.routes.values() for s in stops)


def test_on_call_keeps_a_spread_share_of_each_shift():
    # Early shift: four homes on a line (0, 1, 2, 9 km east); late shift: two. A quarter of each.
    early = [worker(f"e{i}", east(x)) for i, x in enumerate([0, 1, 2, 9])]
    late = [worker("l0", east(0), 14, 22), worker("l1", east(5), 14, 22)]
    assert on_call(early + late, 0.0) == frozenset()
    assert on_call(early + late, 0.25) == {"e2", "l0"}  # nearest each shift's centre (3 km; 2.5 km, tie to l0)
    # Half: after the one nearest the centre, the one farthest from it (9 km east, 7 km away).
    assert on_call(early, 0.5) == {"e2", "e3"}
    assert on_call(early, 1.0) == {"e0", "e1", "e2", "e3"}


def test_on_call_workers_get_planned_visits_only_when_nobody_else_can():
    w1, w2 = worker("p1", CENTRE), worker("p2", east(0.2), skills=frozenset({"hoist"}))
    visits = [visit("a", east(0.1), 9, 10), visit("b", east(0.3), 11, 12)]
    # p2 sits nearer both visits, but is kept on call: p1 drives them.
    plan = plan_day(DAY, visits, [w1, w2], time_limit_s=LIMIT, reserve_share=0.5)
    check(plan, visits, [w1, w2])
    assert plan.on_call == on_call([w1, w2], 0.5)
    free = next(iter(plan.on_call))
    assert plan.routes[free] == () and not plan.unplanned
    # A visit only the on-call worker can do still goes to it rather than being left out.
    hoist = [visit("c", east(0.1), 9, 10, skills=frozenset({"hoist"}))]
    plan = plan_day(DAY, hoist, [w1, w2], time_limit_s=LIMIT, reserve_share=1.0)
    assert [s.visit.key for s in plan.routes["p2"]] == [hoist[0].key] and not plan.unplanned
