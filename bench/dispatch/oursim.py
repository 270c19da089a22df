"""Our dispatch, simulated: the real domain core (services.dispatch.domain: matching, the
escalation ladder, offers and their time-outs, pre-emption, the queue) driven in simulated time.
What the database and the workers do around the core is mirrored here in memory, step for step
with services/dispatch/usecases; providers answer offers as world.Responses says, and a
dispatcher picks up escalated requests after a minute or two."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.dispatch.domain.escalation import at_risk, decide
from services.dispatch.domain.matching import Candidate, Job, MatchWeights, rank
from services.dispatch.domain.offers import Offer, OfferStatus, answer, new_offer
from services.dispatch.domain.policy import DispatchPolicy
from services.dispatch.domain.requests import (
    ServiceRequest,
    Status,
    assign,
    hand_back,
    open_request,
    press_again,
    queue_key,
    transition,
)
from services.dispatch.domain.sla import assign_overdue
from services.dispatch.domain.workload import ActiveJob, to_hand_back, workload

from .engine import Engine, Fleet, Worker
from .world import Provider, RequestSpec, Responses

TICK = timedelta(seconds=1)  # the timer loop's interval
REQUEUE = timedelta(seconds=3)
REPRESS_AFTER = timedelta(minutes=15)  # a resident still waiting presses again


DISPATCHER_S = (60.0, 150.0)  # a dispatcher picks up an escalated request after this long


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
class OurDispatch:
    specs: list[RequestSpec]
    providers: list[Provider]
    policy: DispatchPolicy = field(default_factory=DispatchPolicy.default)
    weights: MatchWeights = field(default_factory=MatchWeights)
    responses: Responses = field(default_factory=lambda: Responses(0))
    seed: int = 0
    fairness_window: timedelta = timedelta(hours=12)

    def run(self, until: datetime) -> dict[str, Outcome]:
        """Simulate every request to completion (or `until`); outcomes by request id."""
        self.rng = random.Random(self.seed)
        self.engine = Engine(min(s.created for s in self.specs))
        self.fleet = Fleet(self.engine, self.providers, self.weights.speed_kmh, self._arrived, self._done, self._next)
        self.requests: dict[str, ServiceRequest] = {}
        self.by_spec = {s.id: s for s in self.specs}
        self.out = {s.id: Outcome(s) for s in self.specs}
        self.offers: dict[str, Offer] = {}
        self.pending: dict[str, str] = {}  # request -> its pending offer
        self.tried: dict[str, list[str]] = {}  # request -> providers that declined or let it lapse
        self.active: dict[tuple[str, str], str] = {}  # (resident, service) -> open request
        self.waiting: set[str] = set()  # open or offered: what the timer loop looks at
        self.remaining = len(self.specs)
        self._queue_at = self.engine.now - REQUEUE
        for spec in self.specs:
            self.engine.at(spec.created, lambda spec=spec: self._press(spec))
        self.engine.at(self.engine.now, self._tick)
        self.engine.run(until, done=lambda: self.remaining == 0)
        return self.out

    def _put(self, request: ServiceRequest) -> None:
        """Store a request's new state (the database row, in the real service)."""
        self.requests[request.id] = request
        if request.status in (Status.OPEN, Status.OFFERED):
            self.waiting.add(request.id)
        else:
            self.waiting.discard(request.id)

    # -- intake -------------------------------------------------------------------------------

    def _press(self, spec: RequestSpec) -> None:
        now = self.engine.now
        joined = self.active.get((spec.resident.id, spec.service.value))
        if joined is not None:  # coalesced: one more press of the open request (world.requests avoids it)
            self._press_again(joined)
            self.out.pop(spec.id)
            self.remaining -= 1
            return
        policy = self.policy.for_service(spec.service)
        request, _ = open_request(spec.id, spec.resident.id, spec.service, policy, now, "device:sim",
                                  location=spec.location, district=spec.resident.district)
        self._put(request)
        self.active[(spec.resident.id, spec.service.value)] = spec.id
        self.engine.at(now + REPRESS_AFTER, lambda: self._impatient(spec.id))
        self._offer_next(spec.id)

    def _press_again(self, rid: str) -> None:
        request = self.requests[rid]
        self._put(press_again(request, self.engine.now, "device:sim").request)
        self.out[rid].presses += 1

    def _impatient(self, rid: str) -> None:
        if self.requests[rid].status in (Status.OPEN, Status.OFFERED, Status.ESCALATED):
            self._press_again(rid)
            self.engine.at(self.engine.now + REPRESS_AFTER, lambda: self._impatient(rid))

    # -- matching and the ladder (usecases/offering.py) -----------------------------------------

    def _candidates(self, request: ServiceRequest, on_shift_only: bool = True) -> list[Candidate]:
        now = self.engine.now
        out = []
        for w in self.fleet.workers.values():
            if request.service.value not in w.spec.services or (on_shift_only and not w.spec.on_shift(now)):
                continue
            offered = [self.offers[o] for o in self.pending.values() if self.offers[o].provider_id == w.id]
            jobs = [self._active_job(j) for j in w.jobs] + [self._offered_job(o) for o in offered]
            load = workload(jobs, now, request.priority)
            out.append(Candidate(
                w.id, w.spec.name, w.spec.services, w.where(now), w.spec.capacity, w.spec.on_shift(now),
                active=len(w.jobs), pending_offers=sum(1 for o in self.pending.values()
                                                       if self.offers[o].provider_id == w.id),
                visits_with_resident=w.visits[request.resident_id],
                recent_assignments=w.recent(now, self.fairness_window),
                busy_minutes=load.busy_minutes, serving_minutes=load.serving_minutes,
                free_location=load.free_location, preemptible=load.preemptible,
                minutes_left_on_shift=(w.spec.shift_end - now).total_seconds() / 60,
            ))
        return out

    def _active_job(self, rid: str) -> ActiveJob:
        r = self.requests[rid]
        return ActiveJob(rid, r.status, r.priority, r.location, r.assigned_at, r.eta_minutes,
                         self.out[rid].arrived, self.policy.for_service(r.service).expected_service)

    def _offered_job(self, offer: Offer) -> ActiveJob:
        """A pending offer counts as work the provider will probably take (from its offer's ETA)."""
        r = self.requests[offer.request_id]
        return ActiveJob(r.id, Status.ASSIGNED, r.priority, r.location, offer.created_at, offer.eta_minutes, None,
                         self.policy.for_service(r.service).expected_service, held=False)

    def _job(self, request: ServiceRequest, excluded: frozenset[str]) -> Job:
        policy = self.policy.for_service(request.service)
        return Job(request.service.value, request.priority, request.urgency, request.location, excluded,
                   policy.expected_service.total_seconds() / 60, policy.may_preempt)

    def _offer_next(self, rid: str) -> None:
        request, now = self.requests[rid], self.engine.now
        if request.status is Status.ESCALATED:
            return
        policy = self.policy.for_service(request.service)
        tried = self.tried.setdefault(rid, [])
        job = self._job(request, frozenset(tried))
        d = decide(request, policy, len(tried), self._candidates(request), job, self.weights, now)
        if d.at_risk:
            self.out[rid].at_risk = True
        if d.choice is not None:
            victim = None
            if d.choice.preempts:
                worker = self.fleet.workers[d.choice.candidate.provider_id]
                found = to_hand_back([self._active_job(j) for j in worker.jobs], request.priority)
                victim = found.request_id if found else None
            offer = new_offer(f"o-{len(self.offers)}", rid, d.choice, policy, now, victim)
            self.offers[offer.id], self.pending[rid] = offer, offer.id
            self.out[rid].first_offer = self.out[rid].first_offer or now
            self.out[rid].offers += 1
            self._put(transition(request, Status.OFFERED, now, "system", "offer.made").request)
            self._provider_answers(offer)
        elif d.escalate is None and request.status is Status.OFFERED:  # queued: the next walk tries again
            self._put(transition(request, Status.OPEN, now, "system", "queued").request)
        if d.escalate is not None:
            self._escalate(rid)

    def _escalate(self, rid: str) -> None:
        request = self.requests[rid]
        if request.status is Status.ESCALATED:
            return
        self._put(transition(request, Status.ESCALATED, self.engine.now, "system").request)
        self.out[rid].escalated = True
        low, high = DISPATCHER_S
        self.engine.at(self.engine.now + timedelta(seconds=self.rng.uniform(low, high)), lambda: self._dispatcher(rid))

    # -- providers answer (usecases/offering.py accept / decline / expire) ----------------------

    def _provider_answers(self, offer: Offer) -> None:
        outcome, seconds = self.responses.answer(offer.request_id, offer.provider_id)
        if outcome is not None:
            self.engine.at(offer.created_at + timedelta(seconds=seconds), lambda: self._answer(offer.id, outcome))
        self.engine.at(offer.deadline_at, lambda: self._expire(offer.id))

    def _answer(self, offer_id: str, outcome: str) -> None:
        offer, now = self.offers[offer_id], self.engine.now
        if offer.status is not OfferStatus.PENDING or offer.expired_at(now):
            return  # withdrawn meanwhile, or too late: the deadline handles it
        worker = self.fleet.workers[offer.provider_id]
        if outcome == "decline":
            self._close(offer, OfferStatus.DECLINED)
            self._offer_next(offer.request_id)
            return
        if offer.preempts_request_id and len(worker.jobs) >= worker.spec.capacity:
            self._hand_back(worker, offer.preempts_request_id)
        if len(worker.jobs) >= worker.spec.capacity:
            return  # 409 for the provider; the offer lapses at its deadline
        self._close(offer, OfferStatus.ACCEPTED)
        self._assign(offer.request_id, worker, offer.eta_minutes or 1)

    def _expire(self, offer_id: str) -> None:
        offer = self.offers[offer_id]
        if offer.status is OfferStatus.PENDING:
            self._close(offer, OfferStatus.EXPIRED)
            self._offer_next(offer.request_id)

    def _close(self, offer: Offer, status: OfferStatus) -> None:
        self.offers[offer.id] = answer(offer, status, self.engine.now)
        self.pending.pop(offer.request_id, None)
        if status in (OfferStatus.DECLINED, OfferStatus.EXPIRED):
            self.tried.setdefault(offer.request_id, []).append(offer.provider_id)

    def _assign(self, rid: str, worker: Worker, eta: int) -> None:
        now = self.engine.now
        self._put(assign(self.requests[rid], worker.id, eta, now, f"provider:{worker.id}").request)
        self.out[rid].assigned = now
        worker.jobs.append(rid)
        worker.assigned_times.append(now)
        self._plan(worker)

    def _hand_back(self, worker: Worker, rid: str) -> None:
        request = self.requests[rid]
        if rid not in worker.jobs or request.status not in (Status.ASSIGNED, Status.EN_ROUTE):
            return
        if worker.trip is not None and worker.trip.job == rid:
            worker.stop(self.engine.now)
        worker.jobs.remove(rid)
        policy = self.policy.for_service(request.service)
        self._put(hand_back(request, policy, self.engine.now, f"provider:{worker.id}", "pre-empted").request)
        self.out[rid].handed_back += 1

    # -- the dispatcher (usecases/progress.py assign_manually) ----------------------------------

    def _dispatcher(self, rid: str) -> None:
        request = self.requests[rid]
        if request.status is not Status.ESCALATED:
            return
        ranked = rank(self._candidates(request), self._job(request, frozenset()), self.weights)
        if not ranked:
            self.engine.at(self.engine.now + timedelta(minutes=1), lambda: self._dispatcher(rid))
            return
        if rid in self.pending:
            self._close(self.offers[self.pending[rid]], OfferStatus.WITHDRAWN)
        best = ranked[0]
        worker = self.fleet.workers[best.candidate.provider_id]
        if best.preempts:
            victim = to_hand_back([self._active_job(j) for j in worker.jobs], request.priority)
            if victim is not None:
                self._hand_back(worker, victim.request_id)
        self._assign(rid, worker, best.eta_minutes)

    # -- the timer loop (workers/timers.py) -----------------------------------------------------

    def _tick(self) -> None:
        now = self.engine.now
        for rid in list(self.waiting):
            request = self.requests[rid]
            policy = self.policy.for_service(request.service)
            if assign_overdue(request, now):
                self._escalate(rid)
            elif request.assign_warn_at and now >= request.assign_warn_at and at_risk(request, policy, now):
                self.out[rid].at_risk = True
                if policy.escalate_when_at_risk:
                    self._escalate(rid)
        if now - self._queue_at >= REQUEUE:  # the whole queue, most urgent first
            self._queue_at = now
            queued = [self.requests[rid] for rid in self.waiting if self.requests[rid].status is Status.OPEN]
            for request in sorted(queued, key=queue_key):
                if self.requests[request.id].status is Status.OPEN:
                    self._offer_next(request.id)
        if self.remaining:
            self.engine.at(now + TICK, self._tick)

    # -- providers at work ----------------------------------------------------------------------

    def _next(self, worker: Worker) -> str | None:
        """The job a provider does next: an emergency first, then in the order given."""
        if not worker.jobs:
            return None
        return min(worker.jobs, key=lambda j: (self.requests[j].priority > 1, worker.jobs.index(j)))

    def _plan(self, worker: Worker) -> None:
        broken = self.fleet.plan(worker, lambda rid: self.requests[rid].location)
        if broken is not None and self.requests[broken].status is Status.EN_ROUTE:
            self._put(transition(self.requests[broken], Status.ASSIGNED, self.engine.now, "sim").request)
        if worker.trip is not None and self.requests[worker.trip.job].status is Status.ASSIGNED:
            trip_job = worker.trip.job
            self._put(transition(self.requests[trip_job], Status.EN_ROUTE, self.engine.now, "sim").request)

    def _arrived(self, worker: Worker, rid: str) -> float:
        self._put(transition(self.requests[rid], Status.ARRIVED, self.engine.now, "sim").request)
        self.out[rid].arrived = self.engine.now
        return self.by_spec[rid].service_minutes

    def _done(self, worker: Worker, rid: str) -> None:
        request = self.requests[rid]
        self._put(transition(request, Status.COMPLETED, self.engine.now, "sim").request)
        self.out[rid].completed = self.engine.now
        self.remaining -= 1
        worker.visits[request.resident_id] += 1
        self.active.pop((request.resident_id, request.service.value), None)
        self._plan(worker)
