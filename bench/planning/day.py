"""A simulated day with planned routes and presses, matched by the product's route-aware matching.

Providers drive the routes `plan_day` gave them (from home at their shift start, waiting at a door
for its window, staying each visit's duration). Presses come at bench.dispatch's times; each is
matched with the product's `rank()` (services/dispatch/domain/matching.py) over every provider as
a `Candidate` built from where it is and what it holds: the presses it holds before its next
planned visit are its queue (`busy_minutes`, `free_location`), the rest of its day is its
`route` (planned visits with their windows; presses further down the route with an open window,
so a press inserted before them simply delays them). The best candidate is offered the press and
answers as world.Responses says (yes within half a minute mostly, sometimes no, sometimes
silence until the offer times out, then the next candidate); on a yes the product scores the
provider again at that moment and the press goes where `Scored.position` says (an emergency
first). Planned visits after it shift on. When everyone asked has said no, a dispatcher assigns
the best one after DISPATCHER_S. With `routes` empty this is the same day without plans: the
same presses, fleet and answers.

Not simulated: the request lifecycle around matching (intake, offers, timers, the store), which
the dispatch benchmark drives; here the question is what routes do to matching."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace

from bench.dispatch.engine import Engine
from bench.dispatch.world import Provider, RequestSpec, Responses
from services.dispatch.domain.escalation import first_in_time
from services.dispatch.domain.matching import Candidate, Job, Location, MatchWeights, Upcoming, rank
from services.dispatch.domain.planner import drive_minutes
from services.dispatch.domain.plans import DayPlan
from services.dispatch.domain.policy import DispatchPolicy

REQUEUE = timedelta(seconds=10)  # nobody can take it now: matched again this much later
DISPATCHER_S = timedelta(seconds=90)  # everyone asked said no: a dispatcher assigns by hand
FAIRNESS_WINDOW = timedelta(hours=12)
OPEN = 1e9  # the window of a press further down a route: it never becomes "late"


@dataclass
class Item:
    """A stop on a provider's agenda: a planned visit or a press."""

    id: str
    location: Location
    minutes: float  # how long it really takes
    expected: float  # what dispatch expects it to take
    earliest: datetime | None = None  # planned: the start window
    latest: datetime | None = None
    press: RequestSpec | None = None


@dataclass
class Agent:
    spec: Provider
    position: Location
    agenda: list[Item] = field(default_factory=list)  # not yet started, in order
    serving: Item | None = None
    serving_since: datetime | None = None
    target: Item | None = None  # driving to or waiting at agenda[0]
    trip: tuple[Location, datetime, datetime, int] | None = None  # origin, depart, arrive, token
    pending: bool = False  # an offer is out to it
    driven: float = 0.0  # minutes driven
    driven_to_planned: float = 0.0  # of which towards planned visits (a broken-off trip counts where it was going)
    assigned: list[datetime] = field(default_factory=list)
    tokens: itertools.count = field(default_factory=itertools.count)

    def where(self, now: datetime) -> Location:
        if self.trip is None or self.target is None:
            return self.position
        origin, depart, arrive, _ = self.trip
        total = (arrive - depart).total_seconds()
        done = 1.0 if total <= 0 else min(1.0, (now - depart).total_seconds() / total)
        d = self.target.location
        return Location(origin.lat + (d.lat - origin.lat) * done, origin.lon + (d.lon - origin.lon) * done)


@dataclass
class Outcome:
    """What the day did: per planned visit its start, per press its arrival, and the driving."""

    planned_start: dict[str, datetime] = field(default_factory=dict)
    press_arrival: dict[str, datetime] = field(default_factory=dict)
    press_provider: dict[str, str] = field(default_factory=dict)
    driven_minutes: float = 0.0  # including each provider's drive home at the end
    driven_to_planned_minutes: float = 0.0  # the legs into planned visits (from wherever the provider was)
    offers: int = 0
    by_hand: int = 0
    positions: list[int] = field(default_factory=list)  # Scored.position of each accepted routine press
    emergencies_making_late: int = 0


class Day:
    def __init__(self, providers: list[Provider], presses: list[RequestSpec], plan: DayPlan | None,
                 responses: Responses, weights: MatchWeights | None = None, policy: DispatchPolicy | None = None):
        self.weights = weights or MatchWeights()
        self.policy = policy or DispatchPolicy.default()
        self.responses = responses
        self.presses = presses
        self.agents = {p.id: Agent(p, p.home) for p in providers}
        self.out = Outcome()
        if plan is not None:
            for pid, stops in plan.routes.items():
                for stop in stops:
                    v = stop.visit
                    assert v.location is not None
                    self.agents[pid].agenda.append(Item(v.key, v.location, v.duration_minutes, v.duration_minutes,
                                                        v.earliest, v.latest))
        start = min([p.shift_start for p in providers] + [s.created for s in presses])
        self.engine = Engine(start)

    def run(self, until: datetime) -> Outcome:
        for agent in self.agents.values():
            self.engine.at(agent.spec.shift_start, lambda agent=agent: self._advance(agent))
        for spec in self.presses:
            self.engine.at(spec.created, lambda spec=spec: self._offer(spec, frozenset()))
        self.engine.run(until)
        for agent in self.agents.values():
            if agent.driven:
                agent.driven += drive_minutes(agent.where(self.engine.now), agent.spec.home, self.weights.speed_kmh)
            self.out.driven_minutes += agent.driven
            self.out.driven_to_planned_minutes += agent.driven_to_planned
        return self.out

    # -- providers ---------------------------------------------------------------------------------

    def _advance(self, agent: Agent) -> None:
        """Head for the first thing on the agenda, unless already on the way or at it."""
        now = self.engine.now
        if agent.serving is not None or now < agent.spec.shift_start:
            return
        nxt = agent.agenda[0] if agent.agenda else None
        if agent.target is not None and agent.target is nxt:
            return
        if agent.trip is not None:  # broken off: count the part driven
            agent.position = agent.where(now)
            self._count(agent, (now - agent.trip[1]).total_seconds() / 60)
            agent.trip = None
        agent.target = nxt
        if nxt is None:
            return
        minutes = drive_minutes(agent.position, nxt.location, self.weights.speed_kmh)
        token = next(agent.tokens)
        agent.trip = (agent.position, now, now + timedelta(minutes=minutes), token)
        self.engine.at(agent.trip[2], lambda: self._arrive(agent, token))

    def _arrive(self, agent: Agent, token: int) -> None:
        if agent.trip is None or agent.trip[3] != token or agent.target is None:
            return  # re-planned meanwhile
        item, now = agent.target, self.engine.now
        self._count(agent, (now - agent.trip[1]).total_seconds() / 60)
        agent.position, agent.trip = item.location, None
        if item.press is not None:
            self.out.press_arrival.setdefault(item.press.id, now)
        if item.earliest is not None and now < item.earliest:
            self.engine.at(item.earliest, lambda: self._start(agent, item))  # waits at the door
        else:
            self._start(agent, item)

    @staticmethod
    def _count(agent: Agent, minutes: float) -> None:
        agent.driven += minutes
        if agent.target is not None and agent.target.press is None:
            agent.driven_to_planned += minutes

    def _start(self, agent: Agent, item: Item) -> None:
        if agent.target is not item or agent.trip is not None or agent.serving is not None:
            return  # left the door for something inserted before it
        now = self.engine.now
        agent.agenda.remove(item)
        agent.target, agent.serving, agent.serving_since = None, item, now
        if item.press is None:
            self.out.planned_start[item.id] = now
        self.engine.at(now + timedelta(minutes=item.minutes), lambda: self._done(agent))

    def _done(self, agent: Agent) -> None:
        agent.serving = agent.serving_since = None
        self._advance(agent)

    # -- matching ----------------------------------------------------------------------------------

    def _job(self, spec: RequestSpec, excluded: frozenset[str]) -> Job:
        policy = self.policy.for_service(spec.service)
        return Job(spec.service.value, policy.priority, location=spec.location, excluded=excluded,
                   service_minutes=policy.expected_service.total_seconds() / 60, may_preempt=policy.may_preempt)

    def candidate(self, agent: Agent) -> tuple[Candidate, int]:
        """The provider as matching sees it now, and how many presses lead its agenda (the queue
        before its route)."""
        now, speed = self.engine.now, self.weights.speed_kmh
        here = agent.where(now)
        held = [i for i in agent.agenda if i.press is not None]
        if agent.serving is not None and agent.serving.press is not None:
            held.append(agent.serving)
        serving = 0.0
        if agent.serving is not None and agent.serving_since is not None:
            serving = max(0.0, agent.serving.expected - (now - agent.serving_since).total_seconds() / 60)
        lead = 0
        busy, place = serving, here
        while lead < len(agent.agenda) and agent.agenda[lead].press is not None:
            item = agent.agenda[lead]
            busy += drive_minutes(place, item.location, speed) + item.expected
            place, lead = item.location, lead + 1
        route = tuple(
            Upcoming(i.id, i.location, (i.earliest - now).total_seconds() / 60,
                     (i.latest - now).total_seconds() / 60, i.expected)
            if i.earliest is not None and i.latest is not None else Upcoming(i.id, i.location, 0.0, OPEN, i.expected)
            for i in agent.agenda[lead:])
        p = agent.spec
        return Candidate(
            p.id, p.name, p.services, here, p.capacity, on_shift=p.on_shift(now), active=len(held),
            pending_offers=int(agent.pending),
            recent_assignments=sum(1 for t in agent.assigned if t >= now - FAIRNESS_WINDOW),
            busy_minutes=busy, serving_minutes=serving,
            free_location=place if (lead or agent.serving is not None) else None,
            minutes_left_on_shift=(p.shift_end - now).total_seconds() / 60, route=route,
        ), lead

    def _offer(self, spec: RequestSpec, excluded: frozenset[str]) -> None:
        now = self.engine.now
        pool = [self.candidate(a)[0] for a in self.agents.values() if spec.service.value in a.spec.services]
        ranked = rank(pool, self._job(spec, excluded), self.weights)
        if not ranked:
            if excluded and rank(pool, self._job(spec, frozenset()), self.weights):
                self.engine.at(now + DISPATCHER_S, lambda: self._by_hand(spec))
            else:
                self.engine.at(now + REQUEUE, lambda: self._offer(spec, excluded))
            return
        # As the product's ladder picks (escalation.first_in_time): the best-ranked one in time.
        due = SimpleNamespace(sla_due_at=spec.created + self.policy.for_service(spec.service).arrive_within)
        agent = self.agents[first_in_time(ranked, due, now).candidate.provider_id]  # type: ignore[arg-type]
        agent.pending = True
        self.out.offers += 1
        answer, seconds = self.responses.answer(spec.id, agent.spec.id)
        timeout = self.policy.for_service(spec.service).offer_timeout
        later = now + (timeout if answer is None else timedelta(seconds=min(seconds, timeout.total_seconds())))

        def answered() -> None:
            agent.pending = False
            if answer != "accept" or not self._take(agent, spec):
                self._offer(spec, excluded | {agent.spec.id})

        self.engine.at(later, answered)

    def _by_hand(self, spec: RequestSpec) -> None:
        """The dispatcher assigns the best provider matching ranks (nobody is asked)."""
        pool = [self.candidate(a)[0] for a in self.agents.values() if spec.service.value in a.spec.services]
        for choice in rank(pool, self._job(spec, frozenset()), self.weights):
            if self._take(self.agents[choice.candidate.provider_id], spec):
                self.out.by_hand += 1
                return
        self.engine.at(self.engine.now + REQUEUE, lambda: self._offer(spec, frozenset()))

    def _take(self, agent: Agent, spec: RequestSpec) -> bool:
        """The provider takes the press where matching places it now; False if it no longer can."""
        candidate, lead = self.candidate(agent)
        job = self._job(spec, frozenset())
        scored = rank([candidate], job, self.weights)
        if not scored:
            return False
        policy = self.policy.for_service(spec.service)
        item = Item(spec.id, spec.location, spec.service_minutes, policy.expected_service.total_seconds() / 60,
                    press=spec)
        if job.may_preempt:
            agent.agenda.insert(0, item)
            self.out.emergencies_making_late += bool(scored[0].late)
        else:
            agent.agenda.insert(lead + scored[0].position, item)
            self.out.positions.append(scored[0].position)
        agent.assigned.append(self.engine.now)
        self.out.press_provider[spec.id] = agent.spec.id
        self._advance(agent)
        return True
