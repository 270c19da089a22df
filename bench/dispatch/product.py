"""Our dispatch over simulated days: the product's own use cases and timer loop
(services.dispatch: intake, offering, progress, workers.timers) on the in-memory repositories,
with the simulation's clock injected. Nothing of dispatch is re-implemented here; this module
plays the world around it:

- residents press their button (`intake.button_pressed`), and press again every 15 minutes while
  nobody has been assigned;
- the timer loop runs as in the service: woken at once by a press (`offer_fresh`), and a full
  `tick` every simulated second (offer time-outs, SLA clocks, the queue, shifts);
- providers answer each offer as world.Responses says (`accept_offer`, `decline_offer`), drive to
  their jobs (engine.Fleet), send their app's heartbeat and report where they are every 30 s as
  their app does (`providers.heartbeat`, `providers.move`), and report en route, arrived and
  completed (`progress.advance`); the simulated apps never go away;
- a dispatcher picks up an escalated request after a minute or two and assigns the best provider
  with room that matching ranks (`progress.assign_manually`), as the console's candidate list shows.

What the service does around the use cases (the log, the broker, the outbox publisher) is not
simulated: the live part of the benchmark (live.py) measures that path on real servers."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from homecare.contract.models import DeviceKind
from homecare.errors import Conflict
from homecare.internal import DeviceEvent
from services.dispatch.domain.matching import MatchWeights, rank
from services.dispatch.domain.offers import OfferStatus
from services.dispatch.domain.policy import DispatchPolicy
from services.dispatch.domain.requests import ServiceRequest, Status
from services.dispatch.store.memory import MemoryRepositories, MemoryTransactions
from services.dispatch.usecases import intake, offering, pool, progress
from services.dispatch.usecases import providers as provider_moves
from services.dispatch.usecases.context import in_memory
from services.dispatch.workers.timers import TimerLoop

from .engine import Engine, Fleet, Worker
from .world import Provider, RequestSpec, Responses

TICK = timedelta(seconds=1)  # the service's timer interval (DispatchSettings.timer_interval_s)
REQUEUE = timedelta(seconds=3)  # DispatchSettings.requeue_s
REPRESS_AFTER = timedelta(minutes=15)  # a resident still waiting presses again
POSITION_EVERY = timedelta(seconds=30)  # a provider's app beats and reports where it is this often
DISPATCHER_S = (60.0, 150.0)  # a dispatcher picks up an escalated request after this long
_HELD = (Status.ASSIGNED, Status.EN_ROUTE, Status.ARRIVED)


@dataclass
class Outcome:
    """What happened to one request."""

    spec: RequestSpec
    first_offer: datetime | None = None
    assigned: datetime | None = None
    arrived: datetime | None = None
    completed: datetime | None = None
    escalated: bool = False
    at_risk: bool = False
    handed_back: int = 0
    offers: int = 0
    presses: int = 1


@dataclass
class ProductDispatch:
    specs: list[RequestSpec]
    providers: list[Provider]
    policy: DispatchPolicy = field(default_factory=DispatchPolicy.default)
    weights: MatchWeights = field(default_factory=MatchWeights)
    responses: Responses = field(default_factory=lambda: Responses(0))
    seed: int = 0
    fairness_window: timedelta = timedelta(hours=12)

    def run(self, until: datetime) -> dict[str, Outcome]:
        """Simulate every request to completion (or `until`); outcomes by spec id."""
        self.rng = random.Random(self.seed)
        start = min([s.created for s in self.specs] + [p.shift_start for p in self.providers])
        self.engine = Engine(start)
        self.ctx = in_memory(lambda: self.engine.now, policy=self.policy, weights=self.weights,
                             fairness_window=self.fairness_window, requeue=REQUEUE)
        self.repos: MemoryRepositories = self.ctx.repos  # type: ignore[assignment]
        self.timers = TimerLoop(MemoryTransactions(), self.ctx)
        self.fleet = Fleet(self.engine, self.providers, self.weights.speed_kmh, self._arrived, self._done, self._next)
        self.out = {s.id: Outcome(s) for s in self.specs}
        self.spec_of: dict[str, str] = {}  # request id -> spec id
        self._offers_seen = 0
        self._with_dispatcher: set[str] = set()
        self._events = itertools.count()
        self.remaining = len(self.specs)
        self._populate()
        for spec in self.specs:
            self.engine.at(spec.created, lambda spec=spec: self._press(spec))
        self.engine.at(start, self._tick)
        self.engine.at(start, self._report_positions)
        self.engine.run(until, done=lambda: self.remaining == 0)
        self._collect()
        return self.out

    def _populate(self) -> None:
        """The directory, the providers (off shift) and their planned shifts, as an operator enters them."""
        for spec in self.specs:
            r = spec.resident
            self.repos.residents.add(r.id, r.location, r.district)
        for p in self.providers:
            self.repos.providers.insert(None, p.id, p.name, sorted(p.services), p.home, p.capacity, on_shift=False)
            self.repos.shifts.add(None, p.id, p.shift_start, p.shift_end)

    # -- the resident ----------------------------------------------------------------------------

    def _press(self, spec: RequestSpec, request_id: str | None = None) -> None:
        now = self.engine.now
        event = DeviceEvent(device_id=f"btn-{spec.resident.id}", device_kind=DeviceKind.BUTTON,
                            resident_id=spec.resident.id, event_id=f"e{next(self._events)}", ts=now,
                            type="button.pressed", received_at=now, service=spec.service)
        result = intake.button_pressed(None, self.ctx, event)
        if result.outcome == "created" and result.request_id:
            self.spec_of[result.request_id] = spec.id
            request_id = result.request_id
        elif request_id is None:  # the same need still open from hours ago: the press joined it
            self.out.pop(spec.id)
            self.remaining -= 1
            return
        else:
            self.out[spec.id].presses += 1
        self.timers.offer_fresh(now)  # the intake wakes the timer loop for a new request
        self._after()
        self.engine.at(now + REPRESS_AFTER, lambda: self._impatient(spec, request_id))

    def _impatient(self, spec: RequestSpec, request_id: str) -> None:
        if self.repos.requests.load(None, request_id).status in (Status.OPEN, Status.OFFERED, Status.ESCALATED):
            self._press(spec, request_id)

    # -- the service's timer loop -----------------------------------------------------------------

    def _tick(self) -> None:
        self.timers.tick(self.engine.now)
        self._after()
        if self.remaining:
            self.engine.at(self.engine.now + TICK, self._tick)

    def _after(self) -> None:
        """After any use case ran: providers see the offers made, workers follow what dispatch
        changed (a job handed back), and escalated requests reach a dispatcher."""
        offers = self.repos.offers.rows
        if len(offers) > self._offers_seen:
            for offer in itertools.islice(offers.values(), self._offers_seen, None):
                self._provider_sees(offer.id)
            self._offers_seen = len(offers)
        for worker in self.fleet.workers.values():
            kept = [j for j in worker.jobs if self._holds(worker, j)]
            if kept != worker.jobs:  # handed back for an emergency: off to the next job
                worker.jobs = kept
                if worker.serving is None:
                    self._plan(worker)
        for rid in self.repos.requests.live - self._with_dispatcher:
            if self.repos.requests.rows[rid].request.status is Status.ESCALATED:
                self._with_dispatcher.add(rid)
                low, high = DISPATCHER_S
                self.engine.at(self.engine.now + timedelta(seconds=self.rng.uniform(low, high)),
                               lambda rid=rid: self._dispatcher(rid))

    def _holds(self, worker: Worker, rid: str) -> bool:
        r = self.repos.requests.rows[rid].request
        return r.provider_id == worker.id and r.status in _HELD

    # -- providers --------------------------------------------------------------------------------

    def _provider_sees(self, offer_id: str) -> None:
        offer = self.repos.offers.rows[offer_id]
        outcome, seconds = self.responses.answer(self.spec_of[offer.request_id], offer.provider_id)
        if outcome is not None:
            self.engine.at(offer.created_at + timedelta(seconds=seconds), lambda: self._answer(offer_id, outcome))

    def _answer(self, offer_id: str, outcome: str) -> None:
        offer = self.repos.offers.rows[offer_id]
        if offer.status is not OfferStatus.PENDING or offer.expired_at(self.engine.now):
            return  # withdrawn meanwhile, or too late: the time-out moved on
        actor = f"provider:{offer.provider_id}"
        try:
            if outcome == "decline":
                offering.decline_offer(None, self.ctx, offer_id, offer.provider_id, actor)
            else:
                request = offering.accept_offer(None, self.ctx, offer_id, offer.provider_id, actor)
                self._take(self.fleet.workers[offer.provider_id], request)
        except Conflict:
            pass  # no room any more (the app shows the 409); the offer lapses at its deadline
        self._after()

    def _take(self, worker: Worker, request: ServiceRequest) -> None:
        """The provider took a request; a job it gave back for it (an emergency's) is dropped."""
        worker.jobs = [j for j in worker.jobs if self._holds(worker, j)] + [request.id]
        self._plan(worker)

    def _report_positions(self) -> None:
        now = self.engine.now
        for worker in self.fleet.workers.values():
            if self.repos.providers.rows[worker.id]["on_shift"]:
                provider_moves.heartbeat(None, self.ctx, worker.id)  # the app is there: offers keep coming
            if worker.trip is not None:
                provider_moves.move(None, self.ctx, worker.id, worker.where(now), by_provider=True)
        if self.remaining:
            self.engine.at(now + POSITION_EVERY, self._report_positions)

    def _next(self, worker: Worker) -> str | None:
        """The job a provider does next: an emergency first, then in the order given."""
        if not worker.jobs:
            return None
        rows = self.repos.requests.rows
        return min(worker.jobs, key=lambda j: (rows[j].request.priority > 1, worker.jobs.index(j)))

    def _plan(self, worker: Worker) -> None:
        self.fleet.plan(worker, lambda rid: self.repos.requests.rows[rid].request.location)
        trip = worker.trip
        if trip is not None and self.repos.requests.rows[trip.job].request.status is Status.ASSIGNED:
            progress.advance(None, self.ctx, trip.job, Status.EN_ROUTE, f"provider:{worker.id}", worker.id)
            provider_moves.move(None, self.ctx, worker.id, trip.origin)

    def _arrived(self, worker: Worker, rid: str) -> float:
        progress.advance(None, self.ctx, rid, Status.ARRIVED, f"provider:{worker.id}", worker.id)
        provider_moves.move(None, self.ctx, worker.id, worker.position)
        return self.out[self.spec_of[rid]].spec.service_minutes

    def _done(self, worker: Worker, rid: str) -> None:
        progress.advance(None, self.ctx, rid, Status.COMPLETED, f"provider:{worker.id}", worker.id)
        self.remaining -= 1
        self._plan(worker)
        self._after()

    # -- the dispatcher ---------------------------------------------------------------------------

    def _dispatcher(self, rid: str) -> None:
        """The console lists the candidates as matching ranks them; the dispatcher assigns the
        best one with room, or looks again in a minute."""
        request, now = self.repos.requests.load(None, rid), self.engine.now
        if request.status is not Status.ESCALATED:
            self._with_dispatcher.discard(rid)
            return
        ranked = rank(pool.candidates(None, self.ctx, request, now), pool.job_of(None, self.ctx, request, frozenset()),
                      self.weights)
        for choice in ranked:
            c = choice.candidate
            if c.active >= c.capacity:
                continue
            try:
                assigned = progress.assign_manually(None, self.ctx, rid, c.provider_id, "dispatcher:bench",
                                                    override_shift=False)
            except Conflict:
                continue
            self._take(self.fleet.workers[c.provider_id], assigned)
            self._after()
            return
        self.engine.at(now + timedelta(minutes=1), lambda: self._dispatcher(rid))

    # -- what happened --------------------------------------------------------------------------

    def _collect(self) -> None:
        """Each request's story, read back from the product's own timeline."""
        for rid, spec_id in self.spec_of.items():
            out, row = self.out[spec_id], self.repos.requests.rows[rid]
            for entry in self.repos.timeline.entries(None, rid):
                if entry.kind == "offer.made":
                    out.offers += 1
                    out.first_offer = out.first_offer or entry.at
                elif entry.kind == "assigned":
                    out.assigned = entry.at  # the last assignment: the one that was served
                elif entry.kind == "arrived":
                    out.arrived = entry.at
                elif entry.kind == "completed":
                    out.completed = entry.at
                elif entry.kind == "escalated":
                    out.escalated = True
            out.at_risk = row.sla_at_risk_at is not None
            out.handed_back = row.request.handed_back
