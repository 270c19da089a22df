"""What our dispatch is compared with, on the same requests, providers, shifts and visit lengths:

- nearest-available greedy: the oldest waiting request (emergencies first) goes at once to the
  nearest idle qualified provider on shift; nobody declines, nobody is slow to answer;
- hindsight optimum: time is cut into slices; all requests of a slice are known at its start
  (the real visit lengths too) and assigned with scipy's linear_sum_assignment to minimise the
  sum of press-to-arrival times, given where each provider will be and when it will be free;
  a slice with more requests than providers is solved again for the rest, chaining them.
All three follow the same operating rules: qualifications, shifts (a routine visit ends at most
15 minutes after the shift), and capacity (a provider holds at most `capacity` jobs from the
moment it is given one until that visit is done; greedy only uses idle providers).
Answers come from the same world.Responses as ours meets: a provider sets off once it has said
yes, after the time that provider takes for that request; one who would decline or not answer
is never chosen (hindsight knows), so the baselines never lose time on a failed offer.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from scipy.optimize import linear_sum_assignment

from homecare.contract.models import Service
from services.dispatch.domain.matching import Location

from .engine import drive_minutes
from .world import Provider, RequestSpec, Responses

INFEASIBLE = 1e9
# The operating rule ours follows too: a routine visit must end within this long after the shift.
OVERRUN = timedelta(minutes=15)


def fits_shift(provider: Provider, spec: RequestSpec, arrive: datetime) -> bool:
    """Whether a visit arriving then ends in time for the provider's shift (emergencies always go)."""
    if spec.service is Service.EMERGENCY:
        return True
    return arrive + timedelta(minutes=spec.service_minutes) <= provider.shift_end + OVERRUN


@dataclass
class Slot:
    """A provider as a plan sees it: free from `free_at`, at `location`."""

    spec: Provider
    free_at: datetime
    location: Location
    done_at: list[datetime] = field(default_factory=list)  # when each job given to it ends

    def holds(self, at: datetime) -> int:
        """Jobs given to it and not yet done at that moment."""
        return sum(1 for t in self.done_at if t > at)


def _priority(spec: RequestSpec) -> int:
    return 1 if spec.service is Service.EMERGENCY else 2


def _drive(origin: Location, spec: RequestSpec, speed_kmh: float) -> timedelta:
    return timedelta(minutes=drive_minutes(origin, spec.location, speed_kmh))


def _yes(responses: Responses, spec: RequestSpec, provider: Provider) -> timedelta | None:
    """How long the provider takes to say yes to the request; None if it would not."""
    outcome, seconds = responses.answer(spec.id, provider.id)
    return timedelta(seconds=seconds) if outcome == "accept" else None


def greedy(
    specs: list[RequestSpec], providers: list[Provider], speed_kmh: float, responses: Responses
) -> dict[str, datetime]:
    """Arrival time per request under nearest-available dispatch."""
    slots = [Slot(p, p.shift_start, p.home) for p in providers]
    arrivals: dict[str, datetime] = {}
    events = sorted({s.created for s in specs} | {p.shift_start for p in providers})
    heapq.heapify(events)
    pending = list(specs)
    waiting: list[RequestSpec] = []
    while events and (pending or waiting):
        now = heapq.heappop(events)
        while pending and pending[0].created <= now:
            waiting.append(pending.pop(0))
        waiting.sort(key=lambda s: (_priority(s), s.created))
        for spec in list(waiting):
            idle = [s for s in slots if s.spec.on_shift(now) and s.free_at <= now
                    and spec.service.value in s.spec.services and _yes(responses, spec, s.spec) is not None
                    and fits_shift(s.spec, spec, now + _drive(s.location, spec, speed_kmh))]
            if not idle:
                continue
            slot = min(idle, key=lambda s: (drive_minutes(s.location, spec.location, speed_kmh), s.spec.id))
            depart = now + _yes(responses, spec, slot.spec)
            arrive = depart + timedelta(minutes=drive_minutes(slot.location, spec.location, speed_kmh))
            arrivals[spec.id] = arrive
            slot.free_at, slot.location = arrive + timedelta(minutes=spec.service_minutes), spec.location
            heapq.heappush(events, slot.free_at)
            waiting.remove(spec)
    return arrivals


def _cost(
    slot: Slot, spec: RequestSpec, speed_kmh: float, given: datetime, responses: Responses
) -> tuple[float, datetime]:
    """(minutes from the press to arrival, arrival) if the slot is given the request at `given`."""
    if spec.service.value not in slot.spec.services or slot.holds(given) >= slot.spec.capacity:
        return INFEASIBLE, spec.created
    yes = _yes(responses, spec, slot.spec)
    if yes is None:
        return INFEASIBLE, spec.created
    depart = max(slot.free_at, given + yes, slot.spec.shift_start)
    if depart >= slot.spec.shift_end:
        return INFEASIBLE, spec.created
    arrive = depart + timedelta(minutes=drive_minutes(slot.location, spec.location, speed_kmh))
    if not fits_shift(slot.spec, spec, arrive):
        return INFEASIBLE, spec.created
    return (arrive - spec.created).total_seconds() / 60, arrive


def hindsight_optimal(
    specs: list[RequestSpec], providers: list[Provider], speed_kmh: float, responses: Responses,
    slice_minutes: float = 10.0,
) -> dict[str, datetime]:
    """Arrival time per request under the per-slice hindsight assignment."""
    slots = [Slot(p, p.shift_start, p.home) for p in providers]
    arrivals: dict[str, datetime] = {}
    if not specs:
        return arrivals
    start = min(s.created for s in specs)
    width = timedelta(minutes=slice_minutes)
    carried: list[RequestSpec] = []
    k = 0
    while len(arrivals) < len(specs):
        lo, hi = start + k * width, start + (k + 1) * width
        remaining = carried + [s for s in specs if lo <= s.created < hi]
        k += 1
        while remaining:
            given = [max(spec.created, lo) for spec in remaining]  # a request carried over waits for its slice
            costs = np.array([[_cost(slot, spec, speed_kmh, at, responses)[0] for slot in slots]
                              for spec, at in zip(remaining, given, strict=True)])
            rows, cols = linear_sum_assignment(costs)
            placed = set()
            for i, j in zip(rows, cols, strict=True):
                if costs[i, j] >= INFEASIBLE:
                    continue
                spec, slot = remaining[i], slots[j]
                _, arrive = _cost(slot, spec, speed_kmh, given[i], responses)
                arrivals[spec.id] = arrive
                slot.free_at, slot.location = arrive + timedelta(minutes=spec.service_minutes), spec.location
                slot.done_at.append(slot.free_at)
                placed.add(i)
            if not placed:
                break  # nobody can take these in this slice: try again in the next
            remaining = [s for i, s in enumerate(remaining) if i not in placed]
        carried = remaining
        if k > 24 * 60 / slice_minutes * 3:
            raise RuntimeError(f"{len(carried)} requests could never be served")
    return arrivals
