"""An offline reference for the dispatch benchmark: the whole day known in advance, routed with
OR-Tools' routing solver and improved by an exact ruin-and-recreate search, within a time limit,
with a provable lower bound so the benchmark can report an optimality gap.

The model (the baselines' operating rules, with hindsight of every request and visit length):
- each provider shift is a vehicle, at the provider's home from `shift_start`;
- request j may go to provider p only if p is qualified and would say yes (`Responses`);
- p sets off for j at the earliest at created_j + delay_pj (its answer time), and not before its
  previous visit is done; a provider of capacity 1 holds one job at a time, so it is offered the
  next only once the current visit is done and sets off at max(end of visit, created_j) + delay_pj
  (the rule of `baselines.hindsight_optimal`; with instant answers the two coincide);
- it drives in a straight line (`engine.drive_minutes`) and stays the real `service_minutes`;
- every visit arrives before `shift_end`; a routine one ends by `shift_end + OVERRUN`
  (`baselines.fits_shift`); an emergency may run over. (The hindsight baseline only asks that the
  provider *sets off* before `shift_end`: this model is that much stricter at the end of a shift.)
- objective: the sum over requests of arrival - created, i.e. the mean press -> arrival.

What the routing solver sees, and why it is not enough alone. "Sets off after created + delay" is a
release date on the *departure*: the earliest arrival at j is created_j + delay_pj + the drive from
wherever p comes from, so it depends on the arc into j. OR-Tools' dimensions only take time windows
per node and transits per arc, which cannot state it (cumul-dependent transits could, but are not
exposed in Python); a window on the arrival at created_j alone would let providers set off before the
press. The routing model (`_model`) therefore gets, per request, the window W_j = created_j + delay +
drive in, from the provider and predecessor of the incumbent routes, and counts the wait as
(A_j - W_j) + the arc's drive and delay: exact for the incumbent (its objective is its sum of waits),
exact for any predecessor when the provider is idle at the press, but off by the difference in drive
when a move gives a busy provider another predecessor, an error that runs on down the route. The
routing rounds (guided local search from the incumbent, windows rebuilt each round) get ROUTING_SHARE
of the time limit; every result is re-timed exactly and kept only if better. On a full benchmark day
they barely improve on the first solution (a percent or two in a minute: the search soon trades on
its own errors). An exact ruin-and-recreate search (`_Timetable`, `_ruin_and_recreate`: take out
5-20 related requests, put each back where it adds least waiting, simulated annealing) has the rest
of the time and does nearly all of the improvement (ROUTING_SHARE = 1 gives the routing solver alone;
0, the exact search alone). Reported arrivals always come from `retime`, the exact rules above,
whichever search found the routes.

Units: the searches work in whole seconds, every duration rounded *up* (drives, visits, answer times,
presses); routes that fit in whole seconds fit exactly, and exact timing only makes them earlier.

The lower bound (`lower_bound_s`, a network-flow relaxation solved as an LP) uses the exact data and
is independent of the searches.
"""

from __future__ import annotations

import bisect
import logging
import math
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import scipy.sparse as sparse
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from scipy.optimize import linprog

from homecare.contract.models import Service

from .baselines import OVERRUN, _yes
from .engine import drive_minutes
from .world import Provider, RequestSpec, Responses

log = logging.getLogger(__name__)

OVERRUN_S = OVERRUN.total_seconds()
# What leaving a servable request unserved costs a search: more than any day's waiting.
DROP_PENALTY = 10**10
# Share of the time limit given to the routing solver's rounds, and the longest round; the exact
# ruin-and-recreate search has the rest (1.0: the routing solver alone).
ROUTING_SHARE, ROUND_S = 0.1, 5.0
# Ruin and recreate: requests taken out per move, how a press minute compares with a drive second
# when choosing related requests, and the annealing temperature (seconds of total wait) at the start.
RUIN = (5, 20)
PRESS_GAP_WEIGHT = 0.1
START_TEMPERATURE_S = 120.0
CYCLE_S = 15.0


@dataclass
class Reference:
    arrivals: dict[str, datetime]  # spec.id -> arrival, re-timed exactly under the rules
    mean_arrival_min: float  # mean press->arrival over served requests
    lower_bound_min: float  # a provable lower bound on that mean
    gap: float  # (mean_arrival_min - lower_bound_min) / mean_arrival_min
    dropped: int
    solve_s: float
    status: str  # the routing status name (of the last routing round)


@dataclass(frozen=True)
class Day:
    """A day as arrays, in seconds from `origin`: requests j (N of them) and provider shifts v (V)."""

    origin: datetime
    created: np.ndarray  # (N,) the press
    service: np.ndarray  # (N,) visit length
    emergency: np.ndarray  # (N,) bool: may run over the shift
    drive: np.ndarray  # (N, N) from request k's door to request j's
    home_drive: np.ndarray  # (V, N) from provider v's home to request j
    delay: np.ndarray  # (V, N) v's answer time for j; inf where v may not take j (skills, would not say yes)
    start: np.ndarray  # (V,) shift start
    end: np.ndarray  # (V,) shift end
    single: np.ndarray  # (V,) bool: capacity 1

    @property
    def allowed(self) -> np.ndarray:
        return np.isfinite(self.delay)

    @property
    def release(self) -> np.ndarray:
        """(V, N) the earliest moment v may set off for j."""
        return self.created[None, :] + self.delay

    def whole_seconds(self) -> Day:
        """The same day with every time rounded up to a whole second (what the searches work in)."""
        up = np.ceil
        return replace(self, created=up(self.created), service=up(self.service), drive=up(self.drive),
                       home_drive=up(self.home_drive), delay=up(self.delay), start=up(self.start),
                       end=np.floor(self.end))


def day_of(specs: list[RequestSpec], providers: list[Provider], speed_kmh: float, responses: Responses) -> Day:
    """The arrays of a day, from the benchmark's own objects (same drive model, same answers)."""
    origin = min([p.shift_start for p in providers] + [s.created for s in specs])

    def seconds(at: datetime) -> float:
        return (at - origin).total_seconds()

    def delay(spec: RequestSpec, provider: Provider) -> float:
        if spec.service.value not in provider.services:
            return math.inf
        yes = _yes(responses, spec, provider)
        return math.inf if yes is None else yes.total_seconds()

    doors, n, vehicles = [s.location for s in specs], len(specs), len(providers)
    return Day(
        origin=origin,
        created=np.array([seconds(s.created) for s in specs], dtype=float),
        service=np.array([s.service_minutes * 60 for s in specs], dtype=float),
        emergency=np.array([s.service is Service.EMERGENCY for s in specs], dtype=bool),
        drive=np.array([[drive_minutes(a, b, speed_kmh) * 60 for b in doors] for a in doors],
                       dtype=float).reshape(n, n),
        home_drive=np.array([[drive_minutes(p.home, b, speed_kmh) * 60 for b in doors] for p in providers],
                            dtype=float).reshape(vehicles, n),
        delay=np.array([[delay(s, p) for s in specs] for p in providers], dtype=float).reshape(vehicles, n),
        start=np.array([seconds(p.shift_start) for p in providers], dtype=float),
        end=np.array([seconds(p.shift_end) for p in providers], dtype=float),
        single=np.array([p.capacity <= 1 for p in providers], dtype=bool),
    )


# -- exact timing of routes ---------------------------------------------------------------------


def _fits(day: Day, v: int, j: int, arrive: float) -> bool:
    """Arrives before the shift ends and, unless an emergency, is done by the end plus the overrun."""
    return bool(arrive < day.end[v] and (day.emergency[j] or arrive + day.service[j] <= day.end[v] + OVERRUN_S))


def _arrival(day: Day, v: int, previous: int | None, free: float, j: int) -> float:
    """When v, free from `free` at `previous` (None: at home, not yet holding a job), arrives at j."""
    created, delay = day.created[j], day.delay[v, j]
    if previous is None:
        return max(free, created + delay) + day.home_drive[v, j]
    if day.single[v]:  # offered only once the visit is done, then takes its time to say yes
        return max(free, created) + delay + day.drive[previous, j]
    return max(free, created + delay) + day.drive[previous, j]


def retime(day: Day, routes: list[list[int]]) -> tuple[np.ndarray, list[list[int]]]:
    """Arrivals (nan where not served) of the routes under the exact rules, and the routes as
    driven: a stop that is not allowed or would break the shift is left out (the provider goes on
    to the next from where it was), so whatever comes in, what comes out is feasible."""
    arrival = np.full(len(day.created), np.nan)
    driven = []
    for v, route in enumerate(routes):
        previous, free, kept = None, day.start[v], []
        for j in route:
            if not day.allowed[v, j]:
                continue
            at = _arrival(day, v, previous, free, j)
            if not _fits(day, v, j, at):
                continue
            arrival[j], previous, free = at, j, at + day.service[j]
            kept.append(j)
        driven.append(kept)
    return arrival, driven


def sum_of_waits(day: Day, routes: list[list[int]]) -> float:
    """Sum over the served requests of arrival - created, the routes timed exactly in `day`."""
    arrival, _ = retime(day, routes)
    served = ~np.isnan(arrival)
    return float(np.sum(arrival[served] - day.created[served]))


def _score(day: Day, routes: list[list[int]]) -> tuple[int, float]:
    """(requests left out, sum of waits): how the searches' results are compared."""
    arrival, _ = retime(day, routes)
    served = ~np.isnan(arrival)
    return int((~served).sum()), float(np.sum(arrival[served] - day.created[served]))


def _earliest_append(day: Day) -> list[list[int]]:
    """A first solution: in press order, each request to the provider that would arrive first if
    the request were added at the end of its route (exact timing)."""
    vehicles = len(day.start)
    routes: list[list[int]] = [[] for _ in range(vehicles)]
    free, previous = day.start.copy(), [None] * vehicles
    for j in np.argsort(day.created, kind="stable"):
        best, best_at = None, math.inf
        for v in np.flatnonzero(day.allowed[:, j]):
            at = _arrival(day, v, previous[v], free[v], j)
            if at < best_at and _fits(day, v, j, at):
                best, best_at = v, at
        if best is not None:
            routes[best].append(int(j))
            previous[best], free[best] = int(j), best_at + day.service[j]
    return routes


# -- the routing solver's rounds ----------------------------------------------------------------


def _windows(day: Day, routes: list[list[int]]) -> np.ndarray:
    """Per request, the earliest arrival the solver is told (W_j): created + delay + drive in, from
    the provider and predecessor the routes give it; for a request they leave out, the earliest any
    provider could set off plus the shortest drive in."""
    n, release = len(day.created), day.release
    in_drive = np.minimum(np.where(day.allowed, day.home_drive, np.inf).min(axis=0, initial=np.inf),
                          np.where(np.eye(n, dtype=bool), np.inf, day.drive).min(axis=0, initial=np.inf))
    window = np.where(day.allowed, release, np.inf).min(axis=0, initial=np.inf) + in_drive
    for v, route in enumerate(routes):
        for i, j in enumerate(route):
            from_ = day.home_drive[v, j] if i == 0 else day.drive[route[i - 1], j]
            window[j] = release[v, j] + from_
    return window


@dataclass
class _Model:
    routing: pywrapcp.RoutingModel
    manager: pywrapcp.RoutingIndexManager
    nodes: np.ndarray  # the requests the model holds (those some provider may serve), in node order


def _transits(day: Day, nodes: np.ndarray) -> np.ndarray:
    """(n + 2V)^2 transit seconds between model nodes: requests, then a start and an end per vehicle."""
    n, vehicles = len(nodes), len(day.start)
    service = day.service[nodes]
    transit = np.zeros((n + 2 * vehicles, n + 2 * vehicles))
    transit[:n, :n] = service[:, None] + day.drive[np.ix_(nodes, nodes)]
    transit[n:n + vehicles, :n] = day.home_drive[:, nodes]
    # Into the end: the last visit arrives before shift end (end cumul <= shift end + OVERRUN) and a
    # routine one is over by shift end + OVERRUN; earlier visits end before the last one starts.
    last = np.where(day.emergency[nodes], OVERRUN_S + 1, np.maximum(service, OVERRUN_S + 1))
    transit[:n, n + vehicles:] = last[:, None]
    return transit


def _model(day: Day, allowed: np.ndarray, window: np.ndarray) -> _Model:
    """The routing model of a round, in the whole-second day.

    Time: one dimension, cumul at a request = arrival A_j >= W_j, transit = visit at the origin +
    drive (+ the answer time for capacity-1 providers, asked only once done), slack = waiting. Cost
    of request j served by v right after i: (A_j - W_j) through a soft upper bound at W_j, plus
    drive_ij + delay_vj as the arc cost. When v is idle at the press, truly A_j = created_j +
    delay_vj + drive_ij and the solver, which has A_j = W_j, counts drive_ij + delay_vj: the wait,
    whatever i and v. When v is busy, the true wait is A_j - created_j and the solver counts
    A_j - W_j + drive_ij + delay_vj, exact when i and v are those W_j was built from. So the
    objective of the incumbent is exactly its sum of waits (+ DROP_PENALTY per request left out)."""
    nodes = np.flatnonzero(allowed.any(axis=0))
    n, vehicles = len(nodes), len(day.start)
    manager = pywrapcp.RoutingIndexManager(n + 2 * vehicles, vehicles, [n + v for v in range(vehicles)],
                                           [n + vehicles + v for v in range(vehicles)])
    routing = pywrapcp.RoutingModel(manager)
    transit = _transits(day, nodes)
    delay = np.where(allowed[:, nodes], day.delay[:, nodes], 0.0)  # (V, n)
    into = np.zeros_like(transit)  # the drive into each request
    origin_service = np.concatenate([day.service[nodes], np.zeros(vehicles)])
    into[:n + vehicles, :n] = transit[:n + vehicles, :n] - origin_service[:, None]
    shared = routing.RegisterTransitMatrix(transit.astype(np.int64).tolist())
    evaluators, costs = [], {}
    for v in range(vehicles):
        if day.single[v] and delay[v].any():
            own = transit.copy()
            own[:n, :n] += delay[v][None, :]
            evaluators.append(routing.RegisterTransitMatrix(own.astype(np.int64).tolist()))
        else:
            evaluators.append(shared)
        key = delay[v].tobytes()
        if key not in costs:  # vehicles that answer alike (all, with instant answers) share a matrix
            cost = into.copy()
            cost[:n + vehicles, :n] += delay[v][None, :]
            costs[key] = routing.RegisterTransitMatrix(cost.astype(np.int64).tolist())
        routing.SetArcCostEvaluatorOfVehicle(costs[key], v)
    horizon = int(max(day.end.max() + OVERRUN_S, window[nodes].max(initial=0)) + 1)
    routing.AddDimensionWithVehicleTransits(evaluators, horizon, horizon, False, "time")
    clock = routing.GetDimensionOrDie("time")
    for node, j in enumerate(nodes):
        index = manager.NodeToIndex(node)
        clock.CumulVar(index).SetMin(int(window[j]))
        clock.SetCumulVarSoftUpperBound(index, int(window[j]), 1)
        routing.AddDisjunction([index], DROP_PENALTY)
        routing.VehicleVar(index).SetValues([-1] + [int(v) for v in np.flatnonzero(allowed[:, j])])  # -1: dropped
    for v in range(vehicles):
        limit = int(day.end[v] + OVERRUN_S)
        clock.CumulVar(routing.Start(v)).SetRange(int(day.start[v]), limit)
        clock.CumulVar(routing.End(v)).SetMax(limit)
    return _Model(routing, manager, nodes)


def _routes_of(model: _Model, solution: pywrapcp.Assignment) -> list[list[int]]:
    routes = []
    for v in range(model.manager.GetNumberOfVehicles()):
        index, route = solution.Value(model.routing.NextVar(model.routing.Start(v))), []
        while not model.routing.IsEnd(index):
            route.append(int(model.nodes[model.manager.IndexToNode(index)]))
            index = solution.Value(model.routing.NextVar(index))
        routes.append(route)
    return routes


def _parameters(seconds: float, solutions: int | None = None) -> pywrapcp.RoutingSearchParameters:
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
    if solutions is not None:
        parameters.solution_limit = solutions
    return parameters


def _anchored(day: Day, allowed: np.ndarray, routes: list[list[int]]) -> tuple[_Model, pywrapcp.Assignment]:
    model = _model(day, allowed, _windows(day, routes))
    node_of = {int(j): node for node, j in enumerate(model.nodes)}
    indices = [[model.manager.NodeToIndex(node_of[j]) for j in route] for route in routes]
    start = model.routing.ReadAssignmentFromRoutes(indices, True)
    if start is None:
        raise RuntimeError("the routing model refuses routes that fit the rules")
    return model, start


def routing_objective(day: Day, allowed: np.ndarray, routes: list[list[int]]) -> tuple[int, list[list[int]]]:
    """The routing solver's objective for `routes` (feasible in the whole-second `day`) in the model
    anchored on them, and the routes of the solution it reports (for checking the model)."""
    model, start = _anchored(day, allowed, routes)
    solution = model.routing.SolveFromAssignmentWithParameters(start, _parameters(10.0, solutions=1))
    return solution.ObjectiveValue(), _routes_of(model, solution)


def improve(day: Day, allowed: np.ndarray, routes: list[list[int]], seconds: float
            ) -> tuple[list[list[int]], str, int]:
    """One routing round from `routes` (feasible in the whole-second `day`), windows anchored on
    them. Returns its routes as driven under the rules, the routing status and its objective."""
    model, start = _anchored(day, allowed, routes)
    solution = model.routing.SolveFromAssignmentWithParameters(start, _parameters(seconds))
    status = routing_enums_pb2.RoutingSearchStatus.Value.Name(model.routing.status())
    if solution is None:
        return routes, status, -1
    _, driven = retime(day, _routes_of(model, solution))
    return driven, status, solution.ObjectiveValue()


# -- ruin and recreate with exact timing ---------------------------------------------------------


class _Timetable:
    """Routes timed exactly (in the whole-second day), to try insertions and removals quickly, with
    a checkpoint to roll a move back. Plain lists: this is the hot loop."""

    def __init__(self, day: Day, routes: list[list[int]]):
        self.created, self.service = day.created.tolist(), day.service.tolist()
        self.emergency = day.emergency.tolist()
        self.drive, self.home, self.delay = day.drive.tolist(), day.home_drive.tolist(), day.delay.tolist()
        self.start, self.end, self.single = day.start.tolist(), day.end.tolist(), day.single.tolist()
        self.options = [np.flatnonzero(day.allowed[:, j]).tolist() for j in range(len(self.created))]
        self.routes = [list(r) for r in routes]
        self.arrive: list[list[float]] = [[] for _ in routes]
        self.cost = [0.0] * len(routes)
        self.where: dict[int, int] = {}
        self.unserved = {j for j in range(len(self.created)) if self.options[j]}
        self._saved: dict[int, tuple[list[int], list[float], float]] = {}
        self._saved_unserved: set[int] = set()
        for v in range(len(routes)):
            self._retime(v)
        self.unserved -= set(self.where)  # the rest: servable, and in no route

    def total(self) -> float:
        return sum(self.cost) + DROP_PENALTY * len(self.unserved)

    def _at(self, v: int, previous: int | None, free: float, j: int) -> float:
        created, delay = self.created[j], self.delay[v][j]
        if previous is None:
            return max(free, created + delay) + self.home[v][j]
        if self.single[v]:
            return max(free, created) + delay + self.drive[previous][j]
        return max(free, created + delay) + self.drive[previous][j]

    def _fits(self, v: int, j: int, at: float) -> bool:
        return at < self.end[v] and (self.emergency[j] or at + self.service[j] <= self.end[v] + OVERRUN_S)

    def _retime(self, v: int) -> list[int]:
        """Times route v again; stops that no longer fit (their provider came from elsewhere) leave it."""
        kept, arrive, dropped, previous, free, cost = [], [], [], None, self.start[v], 0.0
        for j in self.routes[v]:
            at = self._at(v, previous, free, j)
            if not self._fits(v, j, at):
                dropped.append(j)
                self.where.pop(j, None)
                continue
            kept.append(j)
            arrive.append(at)
            self.where[j] = v
            cost += at - self.created[j]
            previous, free = j, at + self.service[j]
        self.routes[v], self.arrive[v], self.cost[v] = kept, arrive, cost
        return dropped

    def _touch(self, v: int) -> None:
        if v not in self._saved:
            self._saved[v] = (list(self.routes[v]), list(self.arrive[v]), self.cost[v])

    def checkpoint(self) -> None:
        self._saved, self._saved_unserved = {}, set(self.unserved)

    def rollback(self) -> None:
        for v, (route, arrive, cost) in self._saved.items():
            for j in self.routes[v]:
                self.where.pop(j, None)
            self.routes[v], self.arrive[v], self.cost[v] = route, arrive, cost
        for v in self._saved:
            for j in self.routes[v]:
                self.where[j] = v
        self.unserved = self._saved_unserved
        self.checkpoint()

    def remove(self, requests: list[int]) -> None:
        """Takes the requests out (into `unserved`), with any stop that no longer fits without them."""
        by_vehicle: dict[int, set[int]] = {}
        for j in requests:
            if j in self.where:
                by_vehicle.setdefault(self.where[j], set()).add(j)
        for v, gone in by_vehicle.items():
            self._touch(v)
            for j in gone:
                self.where.pop(j)
            self.routes[v] = [j for j in self.routes[v] if j not in gone]
            self.unserved.update(gone)
            self.unserved.update(self._retime(v))

    def _insertion(self, v: int, position: int, j: int) -> float | None:
        """Change of v's sum of waits if j is put at `position` of its route; None if anything breaks.
        (`_at` and `_fits` written out: this runs millions of times.)"""
        route, arrive, service, created = self.routes[v], self.arrive[v], self.service, self.created
        end, overrun_end, emergency = self.end[v], self.end[v] + OVERRUN_S, self.emergency
        previous = route[position - 1] if position else None
        free = arrive[position - 1] + service[previous] if previous is not None else self.start[v]
        at = self._at(v, previous, free, j)
        if not (at < end and (emergency[j] or at + service[j] <= overrun_end)):
            return None
        change, previous, free = at - created[j], j, at + service[j]
        single, delay, drive = self.single[v], self.delay[v], self.drive
        for i in range(position, len(route)):
            k = route[i]
            if single:
                at = max(free, created[k]) + delay[k] + drive[previous][k]
            else:
                at = max(free, created[k] + delay[k]) + drive[previous][k]
            if at == arrive[i]:
                break  # from here on the route runs as before
            if not (at < end and (emergency[k] or at + service[k] <= overrun_end)):
                return None
            change += at - arrive[i]
            previous, free = k, at + service[k]
        return change

    def insert_best(self, j: int) -> bool:
        """Puts j where it adds the least waiting; False if it fits nowhere."""
        best, spot, created = math.inf, None, self.created[j]
        for v in self.options[j]:
            route, arrive = self.routes[v], self.arrive[v]
            # Two shortcuts that hold but for a rare exception (a stop put in can bring the next ones
            # forward, by less than a drive): put before a stop reached ahead of created_j +
            # service_j - best, j would hold it up by more than the best found; put after a visit
            # that ends past created_j + best, j alone would wait longer than that.
            first = bisect.bisect_right(arrive, created + self.service[j] - best) if best < math.inf else 0
            for position in range(first, len(route) + 1):
                if position and arrive[position - 1] + self.service[route[position - 1]] - created >= best:
                    break
                change = self._insertion(v, position, j)
                if change is not None and change < best:
                    best, spot = change, (v, position)
        if spot is None:
            return False
        v, position = spot
        self._touch(v)
        self.routes[v].insert(position, j)
        self.unserved.discard(j)
        self.unserved.update(self._retime(v))  # nothing leaves: the insertion was checked
        return True


def _related(day: Day) -> np.ndarray:
    """(N, N) for each request, all requests from the most related: near, and pressed near in time."""
    relatedness = day.drive + PRESS_GAP_WEIGHT * np.abs(day.created[:, None] - day.created[None, :])
    return np.argsort(relatedness, axis=1, kind="stable")


def _ruin_and_recreate(day: Day, routes: list[list[int]], seconds: float, rng: random.Random) -> list[list[int]]:
    """Simulated annealing over moves "take out a few related requests, put each back where it
    costs least" (in press order, a little shuffled), all timed exactly, in cycles of about
    CYCLE_S that each start again from the best routes and cool down from START_TEMPERATURE_S
    (so a longer search is more cycles, not a slower cooling). Returns the best routes."""
    related = _related(day)
    table = _Timetable(day, routes)
    servable = [j for j in range(len(day.created)) if table.options[j]]
    best, best_routes = table.total(), [list(r) for r in table.routes]
    if not servable:
        return best_routes
    started, cycles = time.monotonic(), max(1, round(seconds / CYCLE_S))
    for cycle in range(cycles):
        cycle_end = started + seconds * (cycle + 1) / cycles
        table = _Timetable(day, best_routes)
        current = table.total()
        while (left := cycle_end - time.monotonic()) > 0:
            temperature = START_TEMPERATURE_S * left / (seconds / cycles)
            seed = rng.choice(servable)
            table.checkpoint()
            table.remove([int(j) for j in related[seed][:rng.randint(*RUIN)]])
            for j in sorted(table.unserved, key=lambda j: table.created[j] + rng.uniform(0, 600)):
                table.insert_best(j)
            total = table.total()
            if total <= current or rng.random() < math.exp((current - total) / temperature):
                current = total
                table.checkpoint()
                if total < best:
                    best, best_routes = total, [list(r) for r in table.routes]
            else:
                table.rollback()
    return best_routes


# -- the lower bound ----------------------------------------------------------------------------


def earliest_arrivals(day: Day, sweeps: int = 3) -> np.ndarray:
    """(V, N) a lower bound EA on when v can arrive at j if v serves j; inf where v cannot serve j.

    Proof. v sets off for j no earlier than d0 = max(created_j + delay_vj, shift_start_v). It comes
    either from home (arriving at >= d0 + home_drive) or from a request k it served just before,
    arriving at >= max(d0, A_k + service_k) + drive_kj where A_k >= EA[v, k], any valid bound on v's
    arrival at k. So EA'[v, j] = min(home option, min over k of that) is again valid; start from
    EA = d0 and sweep a few times. v cannot serve j at all when it could not set off before its shift
    ends, or when a routine visit could not end by shift end + OVERRUN even arriving at EA: those
    pairs get inf (valid also under the hindsight baseline's looser "sets off before the shift ends").
    The capacity-1 rule only delays departures, so ignoring it keeps the bound valid."""
    depart = np.maximum(day.release, day.start[:, None])
    can = day.allowed & (depart < day.end[:, None])
    ea = np.where(can, depart, np.inf)
    not_self = ~np.eye(len(day.created), dtype=bool)
    for _ in range(sweeps):
        nxt = np.where(can, depart + day.home_drive, np.inf)
        for v in range(len(day.start)):
            ready = ea[v] + day.service  # (k,) the earliest v is done at k
            via = np.maximum(ready[:, None], depart[v][None, :]) + day.drive  # (k, j)
            via = np.where(np.isfinite(ready)[:, None] & not_self, via, np.inf)
            nxt[v] = np.minimum(nxt[v], via.min(axis=0, initial=np.inf))
        fits = day.emergency[None, :] | (nxt + day.service[None, :] <= day.end[:, None] + OVERRUN_S)
        can = can & fits & np.isfinite(nxt)
        ea = np.where(can, np.maximum(ea, nxt), np.inf)
    return ea


def _arc_costs(day: Day, ea: np.ndarray, vehicles: list[int]) -> np.ndarray:
    """(N, N) for arc k -> j (j served right after k by one of `vehicles`): a lower bound on
    arrival_j, min over those vehicles of max(EA[v, k] + service_k, release_vj) + drive_kj."""
    depart = np.maximum(day.release, day.start[:, None])
    best = np.full(day.drive.shape, np.inf)
    for v in vehicles:
        ready = ea[v] + day.service
        via = np.maximum(ready[:, None], depart[v][None, :]) + day.drive
        reachable = np.isfinite(ea[v])
        best = np.minimum(best, np.where(reachable[:, None] & reachable[None, :], via, np.inf))
    np.fill_diagonal(best, np.inf)
    return best


def _flow_bound(day: Day, ea: np.ndarray, counted: np.ndarray) -> float | None:
    """The LP of `lower_bound_s`; None if the LP solver fails (the caller then falls back)."""
    n, vehicles = len(day.created), len(day.start)
    shifts: dict[tuple[float, float], list[int]] = {}
    for v in range(vehicles):
        shifts.setdefault((day.start[v], day.end[v]), []).append(v)
    depart = np.maximum(day.release, day.start[:, None])
    costs, heads, columns, rows, signs = [], [], [], [], []  # columns/rows/signs: the <= constraints
    conservation, homes = 0, len(shifts) * n  # row blocks of the <= constraints
    count = 0

    def add_arcs(tails_row: np.ndarray | None, home_row: int | None, js: np.ndarray, arrive: np.ndarray, c: int):
        nonlocal count
        ids = np.arange(count, count + len(js))
        count += len(js)
        costs.append(np.where(counted[js], arrive - day.created[js], 0.0))
        heads.append(js)
        # conservation per shift class at every request: what leaves it <= what came into it
        columns.extend([ids, ids])
        rows.extend([conservation + c * n + js,
                     conservation + c * n + tails_row if tails_row is not None else np.full(len(js), home_row)])
        signs.extend([-np.ones(len(js)), np.ones(len(js))])

    for c, members in enumerate(shifts.values()):
        arcs = _arc_costs(day, ea, members)
        ks, js = np.nonzero(np.isfinite(arcs))
        add_arcs(ks, None, js, arcs[ks, js], c)
        for v in members:
            js = np.flatnonzero(np.isfinite(ea[v]))
            add_arcs(None, homes + v, js, depart[v, js] + day.home_drive[v, js], c)
    if count == 0:
        return 0.0
    heads_all = np.concatenate(heads)
    into = sparse.csr_matrix((np.ones(count), (heads_all, np.arange(count))), shape=(n, count))
    servable = np.isfinite(ea).any(axis=0)
    must = counted & servable
    a_ub = sparse.vstack([
        sparse.csr_matrix((np.concatenate(signs), (np.concatenate(rows), np.concatenate(columns))),
                          shape=(homes + vehicles, count)),
        into[~must],  # a request not counted may be served (at most once) and lead on to others
    ])
    b_ub = np.concatenate([np.zeros(homes), np.ones(vehicles), np.ones(int((~must).sum()))])
    result = linprog(np.concatenate(costs), A_ub=a_ub, b_ub=b_ub, A_eq=into[must], b_eq=np.ones(int(must.sum())),
                     bounds=(0, None), method="highs")
    return float(result.fun) if result.status == 0 else None


def lower_bound_s(day: Day, served: np.ndarray | None = None) -> float:
    """A lower bound on the sum of press -> arrival seconds over the `served` requests (default:
    all that some provider could serve), for any schedule under the rules that serves them.

    Relaxation: in any schedule, give each served request j the arc from its predecessor on its
    provider's route (that provider's home, or the request served just before) labelled with the
    provider's shift class (same start and end). Then every request counted has one arc in; at every
    request, per shift class, at most as many arcs leave as come in (a route goes on with the same
    provider); each home has at most one arc out. And j's wait is at least the arc's cost: from home,
    max(created_j + delay_vj, shift_start_v) + home_drive_vj - created_j (exact for a first visit);
    after k, min over the class of max(EA[v, k] + service_k, created_j + delay_vj) + drive_kj -
    created_j (`earliest_arrivals`). The cheapest such flow, an LP (HiGHS), is therefore at most the
    true sum. What it ignores: when the predecessor itself really arrived (only its bound EA), which
    provider of the class drives (skills and answers are taken from the best of the class), the
    capacity-1 rule, and that a flow may close into a cycle (costly, as one arc of it goes back in
    time). Falls back to sum_j min_v EA[v, j] - created_j if the LP fails. A millisecond per request
    and a millionth are taken off for the LP solver's tolerances."""
    ea = earliest_arrivals(day)
    servable = np.isfinite(ea).any(axis=0)
    counted = servable if served is None else served & servable
    if not counted.any():
        return 0.0
    alone = float(np.sum(np.min(ea[:, counted], axis=0) - day.created[counted]))
    flow = _flow_bound(day, ea, counted)
    bound = alone if flow is None else max(alone, flow)
    return bound - 1e-6 * abs(bound) - 1e-3 * int(counted.sum())


# -- the whole search ---------------------------------------------------------------------------


def plan(day: Day, time_limit_s: float, seed: int = 0) -> tuple[list[list[int]], str]:
    """The best routes found within about `time_limit_s`: the first solution, routing rounds for
    ROUTING_SHARE of the time (at least one round unless it is 0), then ruin and recreate; all in
    the whole-second day. Logs (debug) the mean wait after each phase."""
    deadline = time.monotonic() + time_limit_s
    whole = day.whole_seconds()
    allowed = whole.allowed & np.isfinite(earliest_arrivals(day))  # pairs that can never fit are no options
    whole = replace(whole, delay=np.where(allowed, whole.delay, np.inf))
    _, best = retime(whole, _earliest_append(whole))
    best_score, status = _score(whole, best), "ROUTING_NOT_SOLVED"
    _log_phase("first solution", whole, best_score)
    routing_until, routes = time.monotonic() + ROUTING_SHARE * time_limit_s, best
    while ROUTING_SHARE > 0 and allowed.any():
        left = routing_until - time.monotonic()
        routes, status, _ = improve(whole, allowed, routes, max(0.1, min(ROUND_S, left)))  # on from the last
        if (score := _score(whole, routes)) < best_score:
            best, best_score = routes, score
        if left <= ROUND_S:
            break
    _log_phase(f"routing rounds ({status})", whole, best_score)
    if ROUTING_SHARE < 1 and (left := deadline - time.monotonic()) > 0:
        routes = _ruin_and_recreate(whole, best, left, random.Random(seed))
        if (score := _score(whole, routes)) < best_score:
            best, best_score = routes, score
        _log_phase("ruin and recreate", whole, best_score)
    return best, status


def _log_phase(phase: str, day: Day, score: tuple[int, float]) -> None:
    served = len(day.created) - score[0]
    log.debug("%s: mean wait %.3f min, %d left out", phase, score[1] / max(1, served) / 60, score[0])


def solve(specs: list[RequestSpec], providers: list[Provider], speed_kmh: float, responses: Responses,
          time_limit_s: float = 60.0) -> Reference:
    """The reference arrivals of a day, their mean, a lower bound on the best mean and the gap. The
    lower bound's LP (a second or two on a full day) comes on top of the time limit."""
    started = time.monotonic()
    if not specs or not providers:
        return Reference({}, 0.0, 0.0, 0.0, len(specs), time.monotonic() - started, "ROUTING_NOT_SOLVED")
    day = day_of(specs, providers, speed_kmh, responses)
    routes, status = plan(day, time_limit_s)
    arrival, driven = retime(day, routes)
    assert driven == routes, "routes that fit in whole seconds fit exactly"
    served = ~np.isnan(arrival)
    mean = float(np.mean(arrival[served] - day.created[served])) / 60 if served.any() else 0.0
    bound = max(0.0, lower_bound_s(day, served) / max(1, int(served.sum())) / 60)
    return Reference(
        arrivals={specs[j].id: day.origin + timedelta(seconds=float(arrival[j])) for j in np.flatnonzero(served)},
        mean_arrival_min=mean,
        lower_bound_min=bound,
        gap=(mean - bound) / mean if mean > 0 else 0.0,
        dropped=int((~served).sum()),
        solve_s=time.monotonic() - started,
        status=status,
    )
