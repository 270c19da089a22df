"""A small discrete-event engine and the providers' side of the simulation: they drive to their
jobs in order (an emergency first), serve for the visit's real duration, and move on."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.dispatch.domain.matching import Location, haversine_km

from .world import Provider


class Engine:
    """Events in time order; ties keep the order they were scheduled in."""

    def __init__(self, start: datetime):
        self.now = start
        self._heap: list = []
        self._seq = itertools.count()

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (max(when, self.now), next(self._seq), action))

    def run(self, until: datetime, done: Callable[[], bool] = lambda: False) -> None:
        while self._heap and not done():
            when, _, action = heapq.heappop(self._heap)
            if when > until:
                break
            self.now = when
            action()


def drive_minutes(a: Location, b: Location, speed_kmh: float) -> float:
    """Door to door, the same model the matcher uses (straight line at an average town speed)."""
    return haversine_km(a, b) / speed_kmh * 60.0


@dataclass
class Trip:
    origin: Location
    destination: Location
    depart: datetime
    arrive: datetime
    job: str
    token: int


@dataclass
class Worker:
    """A provider in the simulation: where it is, the jobs it holds, what it has done."""

    spec: Provider
    position: Location
    jobs: list[str] = field(default_factory=list)  # requests held, in the order they were given
    trip: Trip | None = None
    serving: str | None = None
    visits: Counter = field(default_factory=Counter)  # completed visits per resident
    assigned_times: list[datetime] = field(default_factory=list)
    busy_minutes: float = 0.0  # driving and visiting, for utilisation
    _tokens: itertools.count = field(default_factory=itertools.count)

    @property
    def id(self) -> str:
        return self.spec.id

    def where(self, now: datetime) -> Location:
        """Current position: on a trip, part of the way there."""
        if self.trip is None:
            return self.position
        total = (self.trip.arrive - self.trip.depart).total_seconds()
        done = 1.0 if total <= 0 else min(1.0, (now - self.trip.depart).total_seconds() / total)
        o, d = self.trip.origin, self.trip.destination
        return Location(o.lat + (d.lat - o.lat) * done, o.lon + (d.lon - o.lon) * done)

    def stop(self, now: datetime) -> str | None:
        """Break off the current trip where it is; the job it was driving to, if any."""
        if self.trip is None:
            return None
        self.position, job, self.trip = self.where(now), self.trip.job, None
        return job

    def recent(self, now: datetime, window: timedelta) -> int:
        return sum(1 for t in self.assigned_times if t >= now - window)


class Fleet:
    """Moves workers between jobs; tells the dispatcher when one arrives and when one is done."""

    def __init__(self, engine: Engine, providers: list[Provider], speed_kmh: float,
                 on_arrive: Callable[[Worker, str], float], on_done: Callable[[Worker, str], None],
                 first_job: Callable[[Worker], str | None]):
        self.engine = engine
        self.speed = speed_kmh
        self.workers = {p.id: Worker(p, p.home) for p in providers}
        self._on_arrive, self._on_done, self._first_job = on_arrive, on_done, first_job

    def plan(self, worker: Worker, locations: Callable[[str], Location]) -> str | None:
        """Drive to the job that should come next, unless already on the way or at a visit.
        Returns the job whose trip was broken off (to put it back to `assigned`)."""
        if worker.serving is not None:
            return None
        nxt = self._first_job(worker)
        if worker.trip is not None and worker.trip.job == nxt:
            return None
        now = self.engine.now
        broken = worker.stop(now)
        if nxt is None:
            return broken
        destination = locations(nxt)
        minutes = drive_minutes(worker.position, destination, self.speed)
        token = next(worker._tokens)
        worker.trip = Trip(worker.position, destination, now, now + timedelta(minutes=minutes), nxt, token)
        worker.busy_minutes += minutes
        self.engine.at(worker.trip.arrive, lambda: self._arrive(worker, token))
        return broken

    def _arrive(self, worker: Worker, token: int) -> None:
        if worker.trip is None or worker.trip.token != token:
            return  # re-planned meanwhile
        job = worker.trip.job
        worker.position, worker.trip, worker.serving = worker.trip.destination, None, job
        minutes = self._on_arrive(worker, job)
        worker.busy_minutes += minutes
        self.engine.at(self.engine.now + timedelta(minutes=minutes), lambda: self._done(worker, job))

    def _done(self, worker: Worker, job: str) -> None:
        worker.serving = None
        worker.jobs.remove(job)
        self._on_done(worker, job)
