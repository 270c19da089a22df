"""Matching: which qualified, on-shift provider with room should get the next offer.

Every term of the cost is in minutes, so weights read as "a fully loaded provider is worth four
minutes of extra driving". The main term is the predicted arrival (wait for the provider to be
free + travel), multiplied by the job's urgency weight; load, fairness, continuity of care and
pre-emption add or subtract minutes. Lower cost wins; ties go to the lower provider id, so the
ranking is deterministic. See services/dispatch/README.md, "Matching".
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
# Reasons that pass with time: the request may wait for these providers instead of escalating.
TEMPORARY = (NO_CAPACITY, SHIFT_ENDS)


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
    if candidate.minutes_left_on_shift is not None and not job.may_preempt:
        wait, travel = arrival(candidate, job, weights)
        if wait + travel + job.service_minutes > candidate.minutes_left_on_shift + weights.shift_overrun_minutes:
            return SHIFT_ENDS
    return None


def rank(candidates: Iterable[Candidate], job: Job, weights: MatchWeights | None = None) -> list[Scored]:
    """Candidates that can take the job, best first."""
    weights = weights or MatchWeights()
    eligible = [c for c in candidates if why_not(c, job, weights) is None]
    if not eligible:
        return []
    least_busy = min(c.recent_assignments for c in eligible)
    urgency_weight = 1.0 + weights.urgency_factor * job.urgency_level
    timings = {c.provider_id: arrival(c, job, weights) for c in eligible}
    fastest = min(wait + travel for wait, travel in timings.values())
    scored = []
    for c in eligible:
        wait, travel = timings[c.provider_id]
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
        }
        scored.append(Scored(c, travel, eta_minutes(wait + travel), sum(parts.values()), parts, preempts, wait))
    scored.sort(key=lambda s: (s.cost, s.candidate.provider_id))
    return scored
