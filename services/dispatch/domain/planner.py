"""The day planner: every provider's route for a day of planned visits, ahead of time.

`plan_day` hands the day to OR-Tools' routing solver: each worker is a vehicle that leaves its
start location at the earliest at its shift start and is back there by its shift end; a visit may
only go to a worker that `can_do` it (services, skills, districts) and must *start* inside its
window; a worker drives (straight line at `speed_kmh`, the matcher's model), waits for a window if
early, and stays the visit's duration. The objective is the minutes driven, plus
`PREFERENCE_MINUTES` for every visit not given to its resident's preferred provider (a soft
preference: worth that much driving). Every visit is optional at a penalty larger than any day's
driving, so the solver leaves a visit out rather than failing; a visit left out gets the reason
in `DayPlan.unplanned`:

- `NO_LOCATION`: the resident's home has no location to drive to;
- `NO_PROVIDER`: no worker provides the service with the skills, in the district;
- `WINDOW_UNREACHABLE`: no qualified worker can start it in its window even as the only visit of
  its shift (leaving its start at the shift start, back by the shift end);
- `NO_ROOM`: it fits some shift alone, but not beside the other visits the plan kept.

The search starts from parallel cheapest insertion and improves with guided local search until
`time_limit_s`. It works in whole seconds with every drive rounded *up*, so the routes it returns
hold exactly when timed again with the real drives (`Stop` times are exact: start at the earliest
of the window or the arrival).

`greedy_day` is the baseline a rota drawn up by hand would give (nearest next, no search), and
`travel_bound` a lower bound on the driving of any plan of the same visits, so a plan can be told
how far from the optimum it is at most. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from ortools.graph.python import linear_sum_assignment

from .matching import Location, haversine_km
from .plans import DayPlan, PlannedVisit, Stop, Worker

NO_LOCATION = "the resident's home has no location"
NO_PROVIDER = "no qualified provider"
WINDOW_UNREACHABLE = "window cannot be met by any qualified provider's shift"
NO_ROOM = "no room in any shift"

PREFERENCE_MINUTES = 15.0  # driving a visit may cost to stay with the resident's preferred provider
DROP_PENALTY_S = 10**9  # leaving a visit out costs more than any day's driving (about 30 years of it)
# Using an on-call responder for planned visits costs as much as a shift of driving: it gets one
# only when nobody else can do the visit (skills) or no other shift has room; never before a drop.
ON_CALL_COST_S = 8 * 3600
_BOUND_SCALE = 1000  # the bound's arcs in thousandths of a minute, rounded down (it stays a bound)


def drive_minutes(a: Location, b: Location, speed_kmh: float) -> float:
    """Door to door, as the matcher estimates it (matching.travel_minutes): straight line at speed."""
    return haversine_km(a, b) / speed_kmh * 60.0


def _fits_alone(worker: Worker, visit: PlannedVisit, speed_kmh: float) -> bool:
    """Whether the worker could do this visit as the only one of its shift."""
    assert visit.location is not None
    start = max(worker.shift_start + timedelta(minutes=drive_minutes(worker.start, visit.location, speed_kmh)),
                visit.earliest)
    back = timedelta(minutes=visit.duration_minutes + drive_minutes(visit.location, worker.start, speed_kmh))
    return start <= visit.latest and start + back <= worker.shift_end


def why_unplannable(visit: PlannedVisit, workers: Sequence[Worker], speed_kmh: float = 25.0) -> str | None:
    """Why no plan can hold the visit whatever else the day holds, or None when some plan can."""
    if visit.location is None:
        return NO_LOCATION
    able = [w for w in workers if w.can_do(visit)]
    if not able:
        return NO_PROVIDER
    if not any(_fits_alone(w, visit, speed_kmh) for w in able):
        return WINDOW_UNREACHABLE
    return None


def _timed(worker: Worker, visits: Sequence[PlannedVisit], speed_kmh: float
           ) -> tuple[list[Stop], list[PlannedVisit], float]:
    """A route timed exactly: (stops kept, visits that no longer fit, minutes driven including the
    way back). A visit that would start after its window or keep the worker past its shift end is
    left out and the worker goes on from where it was (never happens to a solver's route, whose
    drives were rounded up)."""
    stops: list[Stop] = []
    dropped: list[PlannedVisit] = []
    place, free, driven = worker.start, worker.shift_start, 0.0
    for visit in visits:
        assert visit.location is not None
        travel = drive_minutes(place, visit.location, speed_kmh)
        arrive = free + timedelta(minutes=travel)
        start = max(arrive, visit.earliest)
        end = start + timedelta(minutes=visit.duration_minutes)
        if start > visit.latest or end + timedelta(minutes=drive_minutes(visit.location, worker.start, speed_kmh)) \
                > worker.shift_end:
            dropped.append(visit)
            continue
        stops.append(Stop(visit, arrive, start, travel))
        place, free, driven = visit.location, end, driven + travel
    if stops:
        driven += drive_minutes(place, worker.start, speed_kmh)
    return stops, dropped, driven


def _assemble(day: date, routes: Sequence[list[PlannedVisit]], workers: Sequence[Worker],
              unplanned: dict[str, str], speed_kmh: float, solver: str) -> DayPlan:
    """The DayPlan of routes (`routes[k]`: the visits of `workers[k]` in order): timed exactly, a
    provider's shifts joined into its one route in time order, with the bound."""
    pieces: dict[str, list[tuple[datetime, list[Stop]]]] = {}
    travel = 0.0
    for k, worker in enumerate(workers):
        stops, dropped, driven = _timed(worker, routes[k] if k < len(routes) else [], speed_kmh)
        pieces.setdefault(worker.provider_id, []).append((worker.shift_start, stops))
        travel += driven
        unplanned.update({v.key: NO_ROOM for v in dropped})
    timed = {pid: tuple(stop for _, stops in sorted(shifts, key=lambda p: p[0]) for stop in stops)
             for pid, shifts in pieces.items()}
    served = [s.visit for stops in timed.values() for s in stops]
    return DayPlan(day=day, routes=timed, unplanned=unplanned, travel_minutes=travel, solver=solver,
                   bound_minutes=travel_bound(served, workers, speed_kmh=speed_kmh))


def _sorted_out(visits: Sequence[PlannedVisit], workers: Sequence[Worker], speed_kmh: float
                ) -> tuple[list[PlannedVisit], dict[str, str]]:
    """(the visits some plan can hold, the others with the reason)."""
    plannable, unplanned = [], {}
    for visit in visits:
        reason = why_unplannable(visit, workers, speed_kmh)
        if reason is None:
            plannable.append(visit)
        else:
            unplanned[visit.key] = reason
    return plannable, unplanned


# -- on call --------------------------------------------------------------------------------------


def on_call(workers: Sequence[Worker], share: float) -> frozenset[str]:
    """The workers kept free of planned work to answer presses: `share` of each shift (workers
    with the same start and end), rounded, spread over the map. Per shift the first is the one
    nearest the shift's centre, then each next the one farthest from those already chosen (the
    greedy k-centre: every home of the shift is near some responder); ties to the lower id."""
    if share <= 0:
        return frozenset()
    shifts: dict[tuple[datetime, datetime], list[Worker]] = {}
    for w in sorted(workers, key=lambda w: w.provider_id):
        shifts.setdefault((w.shift_start, w.shift_end), []).append(w)
    chosen: list[str] = []
    for crew in shifts.values():
        count = min(len(crew), math.floor(share * len(crew) + 0.5))  # half rounds up
        if count <= 0:
            continue
        centre = Location(sum(w.start.lat for w in crew) / len(crew), sum(w.start.lon for w in crew) / len(crew))
        picked = [min(crew, key=lambda w: haversine_km(w.start, centre))]
        while len(picked) < count:
            rest = [w for w in crew if w not in picked]
            picked.append(max(rest, key=lambda w: min(haversine_km(w.start, p.start) for p in picked)))
        chosen += [w.provider_id for w in picked]
    return frozenset(chosen)


# -- the solver -------------------------------------------------------------------------------------


def plan_day(day: date, visits: Sequence[PlannedVisit], workers: Sequence[Worker], *,
             speed_kmh: float = 25.0, time_limit_s: float = 10.0, buffer_minutes: float = 0.0,
             reserve_share: float = 0.0) -> DayPlan:
    """Every worker's route for the day, by OR-Tools' routing solver within `time_limit_s`.

    `buffer_minutes` keeps room for presses: a visit planned to start within that many minutes of
    its window's end (at most half the window) costs each second inside the buffer like a second
    driven, so the plan leaves the windows' last minutes free when it can (a press inserted before
    the visit then pushes it later without making it late). 0: travel alone.

    `reserve_share` keeps that share of each shift on call (`on_call`: spread over the map), as an
    ambulance service keeps coverage: using one of them costs `ON_CALL_COST_S`, so they get planned
    visits only when no one else can take them. `DayPlan.on_call` names them; matching then prefers
    them for presses, as their routes have nothing to disturb (MatchWeights.route_minutes)."""
    reserve = on_call(workers, reserve_share)
    plannable, unplanned = _sorted_out(visits, workers, speed_kmh)
    if not plannable:
        return replace(_assemble(day, [], workers, unplanned, speed_kmh, "ortools"), on_call=reserve)
    n, vehicles = len(plannable), len(workers)
    origin = min([w.shift_start for w in workers] + [v.earliest for v in plannable])

    def seconds(at: datetime) -> int:
        return math.floor((at - origin).total_seconds())

    places: list[Location] = [v.location for v in plannable if v.location is not None]
    places += [w.start for w in workers] * 2  # a start node, then an end node, per worker
    drive = [[math.ceil(drive_minutes(a, b, speed_kmh) * 60) for b in places] for a in places]
    service = [v.duration_minutes * 60 for v in plannable] + [0] * (2 * vehicles)
    horizon = max(seconds(w.shift_end) for w in workers) + 1

    manager = pywrapcp.RoutingIndexManager(n + 2 * vehicles, vehicles, [n + k for k in range(vehicles)],
                                           [n + vehicles + k for k in range(vehicles)])
    routing = pywrapcp.RoutingModel(manager)
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(drive))
    clock_transit = routing.RegisterTransitMatrix(
        [[service[i] + drive[i][j] for j in range(len(places))] for i in range(len(places))])
    routing.AddDimension(clock_transit, horizon, horizon, False, "time")
    clock = routing.GetDimensionOrDie("time")
    index_of: dict[str, set[int]] = {}  # a provider's workers: one per shift
    for k, w in enumerate(workers):
        index_of.setdefault(w.provider_id, set()).add(k)
    for node, visit in enumerate(plannable):
        index = manager.NodeToIndex(node)
        clock.CumulVar(index).SetRange(max(0, seconds(visit.earliest)), seconds(visit.latest))
        if buffer_minutes > 0:  # a second of the buffer used costs as much as a second driven
            room = min(buffer_minutes * 60, (visit.latest - visit.earliest).total_seconds() / 2)
            clock.SetCumulVarSoftUpperBound(index, max(0, seconds(visit.latest) - int(room)), 1)
        routing.AddDisjunction([index], DROP_PENALTY_S)
        allowed = [k for k, w in enumerate(workers) if w.can_do(visit)]
        routing.VehicleVar(index).SetValues([-1, *allowed])  # -1: left out
    for k, worker in enumerate(workers):
        clock.CumulVar(routing.Start(k)).SetRange(seconds(worker.shift_start), seconds(worker.shift_end))
        clock.CumulVar(routing.End(k)).SetMax(seconds(worker.shift_end))
        if worker.provider_id in reserve:
            routing.SetFixedCostOfVehicle(ON_CALL_COST_S, k)
    _prefer(routing, plannable, workers, index_of, n)

    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    solution = routing.SolveWithParameters(parameters)
    if solution is None:  # no first solution in time: a day planned by hand beats none
        fallback = greedy_day(day, visits, workers, speed_kmh=speed_kmh)
        return DayPlan(fallback.day, fallback.routes, fallback.unplanned, fallback.travel_minutes,
                       "greedy (the solver found no solution in time)", fallback.bound_minutes)
    routes: list[list[PlannedVisit]] = []
    for k in range(vehicles):
        index, route = solution.Value(routing.NextVar(routing.Start(k))), []
        while not routing.IsEnd(index):
            route.append(plannable[manager.IndexToNode(index)])
            index = solution.Value(routing.NextVar(index))
        routes.append(route)
    kept = {v.key for route in routes for v in route}
    unplanned.update({v.key: NO_ROOM for v in plannable if v.key not in kept})
    return replace(_assemble(day, routes, workers, unplanned, speed_kmh, "ortools"), on_call=reserve)


def _prefer(routing: pywrapcp.RoutingModel, plannable: Sequence[PlannedVisit], workers: Sequence[Worker],
            index_of: dict[str, set[int]], n: int) -> None:
    """The soft preference: a dimension whose transit out of a visit is PREFERENCE_MINUTES for any
    worker but the resident's preferred provider's (any of its shifts); its span (the sum along a
    route) is costed one to one. Per-vehicle *unary* transits keep this to a vector per preferred
    worker, not a matrix."""
    penalty = int(PREFERENCE_MINUTES * 60)
    preferred = [index_of.get(v.preferred_provider_id or "") for v in plannable]
    if all(p is None for p in preferred):
        return
    size = n + 2 * len(workers)
    others = [penalty if p is not None else 0 for p in preferred] + [0] * (size - n)
    shared = routing.RegisterUnaryTransitVector(others)
    evaluators = []
    for k in range(len(workers)):
        if any(p is not None and k in p for p in preferred):
            own = [penalty if p is not None and k not in p else 0 for p in preferred] + [0] * (size - n)
            evaluators.append(routing.RegisterUnaryTransitVector(own))
        else:
            evaluators.append(shared)
    routing.AddDimensionWithVehicleTransits(evaluators, 0, penalty * n + 1, True, "preference")
    routing.GetDimensionOrDie("preference").SetSpanCostCoefficientForAllVehicles(1)


# -- the baseline -----------------------------------------------------------------------------------


def greedy_day(day: date, visits: Sequence[PlannedVisit], workers: Sequence[Worker], *,
               speed_kmh: float = 25.0, time_limit_s: float = 10.0) -> DayPlan:
    """A nearest-next rota, the baseline: the worker free soonest takes, of the visits left that it
    can do and still keep (window, back by its shift end), the one it can start soonest (nearest in
    time: the drive plus any wait for the window; ties to the shorter drive); a worker with none
    left is done for the day. No search (`time_limit_s` is accepted for a like signature)."""
    plannable, unplanned = _sorted_out(visits, workers, speed_kmh)
    left = {v.key: v for v in plannable}
    routes: list[list[PlannedVisit]] = [[] for _ in workers]
    state = [(w.start, w.shift_start) for w in workers]  # where and when each worker is free
    active = [k for k, w in enumerate(workers) if any(w.can_do(v) for v in plannable)]
    while left and active:
        k = min(active, key=lambda k: (state[k][1], workers[k].provider_id, k))
        worker, (place, free) = workers[k], state[k]
        best: tuple[datetime, float, str] | None = None
        for visit in left.values():
            if not worker.can_do(visit):
                continue
            assert visit.location is not None
            travel = drive_minutes(place, visit.location, speed_kmh)
            start = max(free + timedelta(minutes=travel), visit.earliest)
            back = drive_minutes(visit.location, worker.start, speed_kmh)
            if start > visit.latest or start + timedelta(minutes=visit.duration_minutes + back) > worker.shift_end:
                continue
            if best is None or (start, travel, visit.key) < best:
                best = (start, travel, visit.key)
        if best is None:
            active.remove(k)
            continue
        visit = left.pop(best[2])
        assert visit.location is not None
        routes[k].append(visit)
        state[k] = (visit.location, best[0] + timedelta(minutes=visit.duration_minutes))
    unplanned.update({key: NO_ROOM for key in left})
    return _assemble(day, routes, workers, unplanned, speed_kmh, "greedy")


# -- the bound --------------------------------------------------------------------------------------


def travel_bound(visits: Sequence[PlannedVisit], workers: Sequence[Worker], *, speed_kmh: float = 25.0) -> float:
    """A lower bound on the minutes driven by any plan that holds all of `visits` (and the way back
    of each worker), by the assignment relaxation of the routing problem.

    Why it is a bound: in any plan, each visit is entered exactly once (from its worker's start or
    from the visit before it) and left exactly once (to the next visit or back to the start), and
    each worker's start and end are used once (an unused worker goes from its start straight to its
    end, driving nothing). So every plan is a perfect assignment of "from" nodes (visits and worker
    starts) to "to" nodes (visits and worker ends) whose cost is the plan's driving, using only arcs
    a plan can use: start of w -> visit j if w can do j; visit i -> visit j if some worker can do
    both and i started at its earliest, done, then driven, reaches j by the end of its window; visit
    i -> end of w if w can do i; start of w -> end of w. The cheapest perfect assignment over those
    arcs (it may join visits in loops no route would drive, or hand a visit from one worker to
    another) is therefore no dearer than the best plan. Arc costs are rounded down. Visits that no
    plan can hold (`why_unplannable`) are left out of it; when no perfect assignment exists (visits
    no plan can hold together), the bound falls back to the cheapest arc into each visit.
    """
    held = [v for v in visits if why_unplannable(v, workers, speed_kmh) is None]
    if not held:
        return 0.0
    n, vehicles = len(held), len(workers)
    able = [sum(1 << k for k, w in enumerate(workers) if w.can_do(v)) for v in held]

    def cost(a: Location, b: Location) -> int:
        return math.floor(drive_minutes(a, b, speed_kmh) * _BOUND_SCALE)

    arcs: list[tuple[int, int, int]] = []  # (from, to, cost); from: visits then starts, to: visits then ends
    for i, a in enumerate(held):
        assert a.location is not None
        done = a.earliest + timedelta(minutes=a.duration_minutes)
        for j, b in enumerate(held):
            assert b.location is not None
            if i != j and able[i] & able[j]:
                minutes = drive_minutes(a.location, b.location, speed_kmh)
                if done + timedelta(minutes=minutes) <= b.latest:
                    arcs.append((i, j, cost(a.location, b.location)))
        for k, w in enumerate(workers):
            if able[i] >> k & 1:
                arcs.append((n + k, i, cost(w.start, a.location)))
                arcs.append((i, n + k, cost(a.location, w.start)))
    arcs += [(n + k, n + k, 0) for k in range(vehicles)]
    assignment = linear_sum_assignment.SimpleLinearSumAssignment()
    for tail, head, c in arcs:
        assignment.add_arc_with_cost(tail, head, c)
    if assignment.solve() == assignment.OPTIMAL:
        return float(assignment.optimal_cost()) / _BOUND_SCALE
    cheapest: dict[int, int] = {}
    for _tail, head, c in arcs:
        if head < n:
            cheapest[head] = min(c, cheapest.get(head, c))
    return float(sum(cheapest.values())) / _BOUND_SCALE
