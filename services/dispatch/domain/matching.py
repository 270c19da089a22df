"""Matching: which qualified, on-shift provider with room should get the next offer.

Every term of the cost is in minutes, so weights read as "a fully loaded provider is worth four
minutes of extra driving". The main term is the predicted arrival (wait for the provider to be
free + travel), multiplied by the job's urgency weight; load, fairness, continuity of care and
pre-emption add or subtract minutes. Lower cost wins; ties go to the lower provider id, so the
ranking is deterministic. A provider with a planned route takes the job where no planned visit
becomes late (`placements`); `tradeoff` shows the faster answers that would. See
services/dispatch/README.md, "Matching".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

EARTH_RADIUS_KM = 6371.0088

NOT_QUALIFIED = "does not provide"
OFF_SHIFT = "off shift"
NO_CAPACITY = "no free capacity"
SHIFT_ENDS = "shift ends before the job would be done"
EXCLUDED = "already declined or let an offer expire"
UNREACHABLE = "unreachable: its app has gone quiet"  # see domain/presence.py
PLANS_LATE = "would make planned visits late"  # no place on its route keeps every planned visit in its window
# Reasons that pass with time: the request may wait for these providers instead of escalating.
TEMPORARY = (NO_CAPACITY, SHIFT_ENDS, PLANS_LATE)


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


def haversine_km(a: Location, b: Location) -> float:
    """Great-circle distance in kilometres."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class MatchWeights:
    """Knobs of the matcher; see the module docstring for the unit."""

    speed_kmh: float = 25.0  # door-to-door average in town, parking included
    fallback_travel_minutes: float = 30.0  # when the resident's location is unknown
    urgency_factor: float = 0.25  # per urgency level, how much more the arrival time weighs
    # A minute of waiting for a busy provider against a minute of driving: below 1, a provider
    # finishing nearby is preferred to a free one further away, which stays free for the next
    # request (tuned with bench.dispatch).
    wait_factor: float = 0.6
    load_minutes: float = 4.0  # cost of a provider at full capacity (the wait itself is in the arrival)
    fairness_minutes: float = 1.0  # per recent assignment above the least busy candidate ...
    fairness_cap: int = 5  # ... counting at most this many
    continuity_minutes: float = 2.0  # bonus per earlier visit to this resident ...
    continuity_cap: int = 3  # ... counting at most this many visits ...
    continuity_slack_minutes: float = 8.0  # ... and only when at most this much later than the fastest
    preempt_minutes: float = 10.0  # cost of pulling a provider off a routine job
    shift_overrun_minutes: float = 15.0  # a routine job may end this long after the provider's shift
    # A routine job goes before planned visits only where each still starts this long before its
    # window ends: presses take longer than expected (bench.planning at the usual presses: planned
    # visits on time 94.6 % / 92.0 % with none, 99.5 % / 99.5 % with 10 minutes).
    plan_margin_minutes: float = 10.0
    # Cost of a routine job that makes planned visits start later than planned on a provider's
    # route: a provider whose route it leaves alone (an on-call responder) is preferred when nearly
    # as fast.
    route_minutes: float = 0.0

    def __post_init__(self) -> None:
        if self.speed_kmh <= 0:
            raise ValueError("speed_kmh must be positive")


@dataclass(frozen=True)
class Upcoming:
    """A planned visit on a provider's route not yet started: it must start inside its window.
    Times are minutes from now."""

    request_id: str
    location: Location | None
    earliest_minutes: float
    latest_minutes: float
    service_minutes: float
    label: str = ""  # who would be late, as the dispatcher reads it ("meal for Li Hua")


@dataclass(frozen=True)
class Candidate:
    """A provider as the matcher sees it, with its current load."""

    provider_id: str
    name: str
    services: frozenset[str]
    location: Location
    capacity: int
    on_shift: bool = True
    active: int = 0  # requests assigned and not finished
    pending_offers: int = 0
    visits_with_resident: int = 0  # completed requests for this resident
    recent_assignments: int = 0  # assignments in the fairness window
    busy_minutes: float = 0.0  # until every job it holds is expected to be done
    serving_minutes: float = 0.0  # until the job it is at now is expected to be done
    free_location: Location | None = None  # where its last job ends (None: where it is now)
    preemptible: int = 0  # jobs it holds, not yet started, that the job at hand outranks
    minutes_left_on_shift: float | None = None  # None: no scheduled end
    reachable: bool = True  # its app was heard from within the presence time-out (domain/presence.py)
    route: tuple[Upcoming, ...] = ()  # its planned visits not yet started, in route order
    districts: frozenset[str] = frozenset()  # where it serves; none: not yet placed (domain/districts.py)

    @property
    def free_capacity(self) -> int:
        return self.capacity - self.active - self.pending_offers


@dataclass(frozen=True)
class Job:
    """What needs a provider."""

    service: str
    priority: int  # 1 most urgent .. 5
    urgency: int = 1  # raised by every extra press
    location: Location | None = None
    excluded: frozenset[str] = frozenset()  # providers that declined or let an offer expire
    service_minutes: float = 0.0  # expected time on site
    may_preempt: bool = False  # may take a provider off a routine job (and goes first in its queue)

    @property
    def urgency_level(self) -> int:
        """0 for the least urgent; each priority step and each extra press adds one."""
        return max(0, 5 - self.priority) + max(0, self.urgency - 1)


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    travel_minutes: float
    eta_minutes: int
    cost: float
    parts: dict[str, float] = field(default_factory=dict)
    preempts: bool = False  # the provider must hand back a routine job to take this one
    wait_minutes: float = 0.0  # until the provider can set off
    position: int = 0  # where on the provider's route the job goes: before route[position] (0: next)
    late: tuple[tuple[str, float], ...] = ()  # (request id, minutes late) of planned visits it makes late


@dataclass(frozen=True)
class Placement:
    """Where a job goes on a provider's route and what that does to the planned visits after it."""

    position: int  # before route[position]; len(route): after the last planned visit
    wait: float  # minutes until the provider sets off for the job
    travel: float  # minutes of driving to it
    late: tuple[tuple[str, float], ...] = ()  # planned visits it makes late: (request id, minutes late)
    squeezed: bool = False  # it leaves a planned visit less than the margin before its window ends
    moves: bool = False  # some planned visit after it starts later than it would without the job


def travel_minutes(origin: Location, destination: Location | None, weights: MatchWeights) -> float:
    """Estimated travel time: straight-line distance at the configured speed."""
    if destination is None:
        return weights.fallback_travel_minutes
    return haversine_km(origin, destination) / weights.speed_kmh * 60.0


def eta_minutes(minutes: float) -> int:
    """Whole minutes the resident is told; never zero, someone still has to come to the door."""
    return max(1, math.ceil(minutes - 1e-9))


def _preempts(candidate: Candidate, job: Job) -> bool:
    # One pre-emptive offer at a time per provider: a pending offer means it is being asked already.
    if candidate.free_capacity > 0 or not job.may_preempt:
        return False
    return candidate.preemptible > 0 and not candidate.pending_offers


def arrival(candidate: Candidate, job: Job, weights: MatchWeights) -> tuple[float, float]:
    """(minutes until the provider can set off, minutes of travel) for this job.

    A job that may pre-empt goes first: the provider finishes the visit it is at, then comes
    from where it is. Any other job waits for the provider's queue and starts where it ends."""
    if job.may_preempt:
        return candidate.serving_minutes, travel_minutes(candidate.location, job.location, weights)
    origin = candidate.free_location or candidate.location
    return candidate.busy_minutes, travel_minutes(origin, job.location, weights)


def _leg(origin: Location | None, destination: Location | None, weights: MatchWeights) -> float:
    """Travel between two places, either of which may be unknown (then the fallback)."""
    if origin is None:
        return weights.fallback_travel_minutes
    return travel_minutes(origin, destination, weights)


def _starts(origin: Location | None, free: float, route: tuple[Upcoming, ...], weights: MatchWeights) -> list[float]:
    """When each planned visit starts if the provider sets off from `origin` at `free` and drives the
    route in order, waiting for a window when early."""
    starts = []
    for stop in route:
        start = max(free + _leg(origin, stop.location, weights), stop.earliest_minutes)
        starts.append(start)
        origin, free = stop.location, start + stop.service_minutes
    return starts


def _late_by(route: tuple[Upcoming, ...], starts: list[float], margin: float = 0.0) -> list[float]:
    """Per planned visit, how long after its window's end (less `margin`) it starts."""
    return [max(0.0, start - stop.latest_minutes + margin) for stop, start in zip(route, starts, strict=True)]


def placements(candidate: Candidate, job: Job, weights: MatchWeights | None = None) -> list[Placement]:
    """Every place the job could go on the candidate's route, with the planned visits each makes late.

    Without a route this is the one place `arrival` gives. A routine job may go before any planned
    visit not yet started, or after the last: the provider does the jobs it holds, then drives the
    route, and sets off for the job when the visit before it is done (or when its held jobs are,
    before the first). The visits after the job move on by the detour, less any wait for a window
    they had. An emergency goes first, whatever the route (position 0): the provider finishes the
    visit it is at, comes, then goes back to its held jobs (they take as long as before) and its
    route. A visit counts as made late only by what the job adds: one already late is listed only if
    the job makes it later (with its lateness after the job); likewise `squeezed` says the job
    pushes a visit into the last `plan_margin_minutes` of its window (or further into them)."""
    weights = weights or MatchWeights()
    route = candidate.route
    margin = weights.plan_margin_minutes
    origin: Location | None = candidate.free_location or candidate.location
    free = candidate.busy_minutes
    current = _starts(origin, free, route, weights)
    before, tight = _late_by(route, current), _late_by(route, current, margin)

    def placed(position: int, wait: float, travel: float, starts: list[float]) -> Placement:
        after = _late_by(route[position:], starts)
        late = tuple((stop.request_id, round(minutes, 1))
                     for stop, minutes, was in zip(route[position:], after, before[position:], strict=True)
                     if minutes > was + 1e-6)
        squeezed = margin > 0 and any(
            m > was + 1e-6 for m, was in zip(_late_by(route[position:], starts, margin), tight[position:], strict=True))
        moves = any(start > was + 1e-6 for start, was in zip(starts, current[position:], strict=True))
        return Placement(position, wait, travel, late, squeezed, moves)

    if job.may_preempt:
        wait, travel = arrival(candidate, job, weights)
        done = wait + travel + job.service_minutes
        held = candidate.busy_minutes - candidate.serving_minutes
        # With held jobs left it goes back to them (from where they end); else on from the emergency.
        resume = (origin, done + held) if held > 0 else (job.location, done)
        return [placed(0, wait, travel, _starts(resume[0], resume[1], route, weights))]
    out = []
    for position in range(len(route) + 1):
        if position:
            stop = route[position - 1]
            origin, free = stop.location, current[position - 1] + stop.service_minutes
        travel = _leg(origin, job.location, weights)
        done = free + travel + job.service_minutes
        out.append(placed(position, free, travel, _starts(job.location, done, route[position:], weights)))
    return out


def placement(candidate: Candidate, job: Job, weights: MatchWeights | None = None, *, keep_plans: bool = True
              ) -> Placement | None:
    """Where the job goes on the candidate's route: the place it is reached soonest (ties: earlier on
    the route) among those that end within the shift (plus the overrun) and, when `keep_plans`,
    make no planned visit late nor squeeze one into its window's last `plan_margin_minutes`. None:
    there is no such place. An emergency is never refused for plans or the shift: it goes first."""
    weights = weights or MatchWeights()
    options = [p for p in placements(candidate, job, weights)
               if job.may_preempt or not ((keep_plans and (p.late or p.squeezed))
                                          or _ends_shift(candidate, job, weights, p))]
    return min(options, key=lambda p: (p.wait + p.travel, p.position), default=None)


def why_not(candidate: Candidate, job: Job, weights: MatchWeights | None = None) -> str | None:
    """Why a provider cannot take the job, or None when it can."""
    if candidate.provider_id in job.excluded:
        return EXCLUDED
    if job.service not in candidate.services:
        return f"{NOT_QUALIFIED} {job.service}"
    if not candidate.on_shift:
        return OFF_SHIFT
    if not candidate.reachable:
        return UNREACHABLE
    if candidate.free_capacity <= 0 and not _preempts(candidate, job):
        return NO_CAPACITY
    weights = weights or MatchWeights()
    if _ends_shift(candidate, job, weights, Placement(0, *arrival(candidate, job, weights))):
        return SHIFT_ENDS
    if candidate.route and placement(candidate, job, weights) is None:
        # Going next would fit the shift (above) but make planned visits late, and no later place is both.
        return PLANS_LATE
    return None


def _ends_shift(candidate: Candidate, job: Job, weights: MatchWeights, place: Placement) -> bool:
    """A routine job that would end after the shift plus the overrun allowance (emergencies may)."""
    if candidate.minutes_left_on_shift is None or job.may_preempt:
        return False
    return (place.wait + place.travel + job.service_minutes
            > candidate.minutes_left_on_shift + weights.shift_overrun_minutes)


def rank(candidates: Iterable[Candidate], job: Job, weights: MatchWeights | None = None) -> list[Scored]:
    """Candidates that can take the job, best first; each scored where the job goes on its route."""
    weights = weights or MatchWeights()
    eligible = []
    for c in candidates:
        place = placement(c, job, weights) if why_not(c, job, weights) is None else None
        if place is not None:
            eligible.append((c, place))
    return _scored(eligible, job, weights)


def tradeoff(candidates: Iterable[Candidate], job: Job, weights: MatchWeights | None = None) -> list[Scored]:
    """The faster answers matching does not give because they would make planned visits late: each
    candidate refused only for that (PLANS_LATE), and each that `rank` places later on its route
    than it could reach the job, scored as if allowed at the place it reaches the job soonest (within
    its shift), with `late` saying who would be late and by how much. The dispatcher may still
    choose one of them. Best first; empty for an emergency (it is never held back for plans)."""
    weights = weights or MatchWeights()
    faster = []
    for c in candidates:
        reason = why_not(c, job, weights)
        if job.may_preempt or reason not in (None, PLANS_LATE):
            continue
        soonest = placement(c, job, weights, keep_plans=False)
        allowed = placement(c, job, weights) if reason is None else None
        if soonest is not None and soonest.late and (
                allowed is None or soonest.wait + soonest.travel < allowed.wait + allowed.travel):
            faster.append((c, soonest))
    return _scored(faster, job, weights)


def _scored(eligible: list[tuple[Candidate, Placement]], job: Job, weights: MatchWeights) -> list[Scored]:
    if not eligible:
        return []
    least_busy = min(c.recent_assignments for c, _ in eligible)
    urgency_weight = 1.0 + weights.urgency_factor * job.urgency_level
    fastest = min(p.wait + p.travel for _, p in eligible)
    scored = []
    for c, place in eligible:
        wait, travel = place.wait, place.travel
        known = c.visits_with_resident > 0 and wait + travel <= fastest + weights.continuity_slack_minutes
        preempts = _preempts(c, job)
        parts = {
            "travel": travel * urgency_weight,
            "wait": wait * urgency_weight * weights.wait_factor,
            "load": weights.load_minutes * min(1.0, (c.active + c.pending_offers) / c.capacity),
            "fairness": weights.fairness_minutes * min(c.recent_assignments - least_busy, weights.fairness_cap),
            "continuity": -weights.continuity_minutes * min(c.visits_with_resident, weights.continuity_cap)
            if known else 0.0,
            "preempt": weights.preempt_minutes if preempts else 0.0,
            "route": weights.route_minutes if place.moves and not job.may_preempt else 0.0,
        }
        scored.append(Scored(c, travel, eta_minutes(wait + travel), sum(parts.values()), parts, preempts, wait,
                             place.position, place.late))
    scored.sort(key=lambda s: (s.cost, s.candidate.provider_id))
    return scored
