"""Matching: which qualified, on-shift provider with free capacity should get the next offer.

Every term of the cost is in minutes of travel, so weights read as "a fully loaded provider is
worth 20 minutes of extra driving". Lower cost wins; ties go to the lower provider id, so the
ranking is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

EARTH_RADIUS_KM = 6371.0088


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
    urgency_factor: float = 0.25  # per urgency level, how much more travel time weighs
    load_minutes: float = 20.0  # cost of a provider at full capacity
    fairness_minutes: float = 5.0  # per recent assignment above the least busy candidate
    continuity_minutes: float = 10.0  # bonus per earlier visit to this resident
    continuity_cap: int = 3  # visits beyond this add no bonus

    def __post_init__(self) -> None:
        if self.speed_kmh <= 0:
            raise ValueError("speed_kmh must be positive")


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


def travel_minutes(origin: Location, destination: Location | None, weights: MatchWeights) -> float:
    """Estimated travel time: straight-line distance at the configured speed."""
    if destination is None:
        return weights.fallback_travel_minutes
    return haversine_km(origin, destination) / weights.speed_kmh * 60.0


def eta_minutes(minutes: float) -> int:
    """Whole minutes the resident is told; never zero, someone still has to come to the door."""
    return max(1, math.ceil(minutes - 1e-9))


def why_not(candidate: Candidate, job: Job) -> str | None:
    """Why a provider cannot take the job, or None when it can."""
    if candidate.provider_id in job.excluded:
        return "already declined or let an offer expire"
    if job.service not in candidate.services:
        return f"does not provide {job.service}"
    if not candidate.on_shift:
        return "off shift"
    if candidate.free_capacity <= 0:
        return "no free capacity"
    return None


def rank(candidates: Iterable[Candidate], job: Job, weights: MatchWeights | None = None) -> list[Scored]:
    """Qualified candidates, best first."""
    weights = weights or MatchWeights()
    eligible = [c for c in candidates if why_not(c, job) is None]
    if not eligible:
        return []
    least_busy = min(c.recent_assignments for c in eligible)
    travel_weight = 1.0 + weights.urgency_factor * job.urgency_level
    scored = []
    for c in eligible:
        minutes = travel_minutes(c.location, job.location, weights)
        parts = {
            "travel": minutes * travel_weight,
            "load": weights.load_minutes * (c.active + c.pending_offers) / c.capacity,
            "fairness": weights.fairness_minutes * (c.recent_assignments - least_busy),
            "continuity": -weights.continuity_minutes * min(c.visits_with_resident, weights.continuity_cap),
        }
        scored.append(Scored(c, minutes, eta_minutes(minutes), sum(parts.values()), parts))
    scored.sort(key=lambda s: (s.cost, s.candidate.provider_id))
    return scored
