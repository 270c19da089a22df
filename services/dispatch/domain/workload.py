"""A provider's workload: when it will be free, where it will be, what it could hand back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .matching import Location
from .requests import Status

NOT_STARTED = frozenset({Status.ASSIGNED, Status.EN_ROUTE})


@dataclass(frozen=True)
class ActiveJob:
    """A request a provider holds."""

    request_id: str
    status: Status
    priority: int
    location: Location | None
    assigned_at: datetime | None
    eta_minutes: int | None
    arrived_at: datetime | None
    service_time: timedelta
    held: bool = True  # False: a pending offer, counted as work the provider will probably take

    def finishes_at(self, now: datetime) -> datetime:
        """When the provider should be done with it: arrival (or now, when late) plus the visit."""
        if self.status is Status.ARRIVED and self.arrived_at is not None:
            return max(now, self.arrived_at + self.service_time)
        expected = now
        if self.assigned_at is not None and self.eta_minutes is not None:
            expected = max(now, self.assigned_at + timedelta(minutes=self.eta_minutes))
        return expected + self.service_time


@dataclass(frozen=True)
class Workload:
    busy_minutes: float  # until every job is done
    serving_minutes: float  # until the visit in progress is done
    free_location: Location | None  # where the last job ends
    preemptible: int  # jobs not started that a job of the given priority outranks


def _minutes(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds() / 60.0)


def workload(jobs: Iterable[ActiveJob], now: datetime, priority: int) -> Workload:
    """The workload of a provider holding `jobs`, as seen by a job of `priority`."""
    jobs = list(jobs)
    if not jobs:
        return Workload(0.0, 0.0, None, 0)
    ends = [(job.finishes_at(now), job) for job in jobs]
    last_end, last = max(ends, key=lambda e: (e[0], e[1].request_id))
    serving = [end for end, job in ends if job.status is Status.ARRIVED]
    return Workload(
        busy_minutes=_minutes(last_end - now),
        serving_minutes=_minutes(max(serving) - now) if serving else 0.0,
        free_location=last.location,
        preemptible=sum(1 for job in jobs if job.held and job.status in NOT_STARTED and job.priority > priority),
    )


def to_hand_back(jobs: Iterable[ActiveJob], priority: int) -> ActiveJob | None:
    """The job a pre-empted provider hands back: the least urgent not started, the latest taken."""
    options = [j for j in jobs if j.held and j.status in NOT_STARTED and j.priority > priority]
    if not options:
        return None
    return max(options, key=lambda j: (j.priority, j.assigned_at.timestamp() if j.assigned_at else 0.0, j.request_id))
