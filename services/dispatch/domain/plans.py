"""Care plans: a resident's recurring visits (meals every day at lunch, a bath every other week,
an escort to a booked appointment), and the visits they ask for on one day.

Times of day are local to the service centre (`DispatchSettings.plan_timezone`); a window is
when the provider should *start* the visit. Emergencies are never planned.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from .matching import Location

PLANNABLE = frozenset({"meal", "bathing", "escort", "mobility"})
MAX_SKILLS = 16
MAX_DURATION_MINUTES = 480
MIN_WINDOW_MINUTES = 15  # a narrower window cannot be kept by anyone who drives through town
MAX_PAUSES = 50  # a plan's pauses kept (past ones are dropped when a new one is added)
MAX_PAUSE_DAYS = 366
MAX_REASON = 500


class Repeat(StrEnum):
    DAILY = "daily"
    WEEKDAYS = "weekdays"  # on the given weekdays (0 Monday .. 6 Sunday), every week
    EVERY_N_WEEKS = "every_n_weeks"  # on the given weekdays, every n-th week counted from `starts_on`
    ONCE = "once"  # on `starts_on` only (a booked hospital appointment)


class PlanError(ValueError):
    """A care plan that cannot be kept as written; the message says why."""


@dataclass(frozen=True)
class Recurrence:
    repeat: Repeat
    starts_on: date
    ends_on: date | None = None  # inclusive; None: until the plan is ended
    weekdays: frozenset[int] = frozenset()
    every_weeks: int = 1

    def __post_init__(self) -> None:
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise PlanError("ends_on must not be before starts_on")
        if any(d not in range(7) for d in self.weekdays):
            raise PlanError("weekdays are 0 (Monday) to 6 (Sunday)")
        if self.repeat in (Repeat.WEEKDAYS, Repeat.EVERY_N_WEEKS) and not self.weekdays:
            raise PlanError(f"a {self.repeat.value} plan needs at least one weekday")
        if self.repeat is Repeat.EVERY_N_WEEKS and not 1 <= self.every_weeks <= 52:
            raise PlanError("every_weeks must be between 1 and 52")
        if self.repeat is Repeat.ONCE and self.ends_on not in (None, self.starts_on):
            raise PlanError("a one-off visit has no end date of its own")

    def occurs_on(self, day: date) -> bool:
        if day < self.starts_on or (self.ends_on is not None and day > self.ends_on):
            return False
        if self.repeat is Repeat.DAILY:
            return True
        if self.repeat is Repeat.ONCE:
            return day == self.starts_on
        if day.weekday() not in self.weekdays:
            return False
        if self.repeat is Repeat.WEEKDAYS:
            return True
        # Weeks are counted from the Monday of the first week, so "every 2 weeks on Tue and Fri"
        # keeps both days in the same week.
        first_monday = self.starts_on - timedelta(days=self.starts_on.weekday())
        return ((day - first_monday).days // 7) % self.every_weeks == 0


@dataclass(frozen=True)
class Pause:
    """Days, both included, on which a plan asks for no visit: the resident is in hospital, or
    away with family. Its visits those days are unplanned with the reason, not silently gone."""

    id: str
    from_day: date
    to_day: date
    reason: str
    actor: str

    def __post_init__(self) -> None:
        if self.to_day < self.from_day:
            raise PlanError("to_day: must not be before from_day")
        if (self.to_day - self.from_day).days >= MAX_PAUSE_DAYS:
            raise PlanError(f"pause: at most {MAX_PAUSE_DAYS} days; end the plan instead")
        if not self.reason.strip() or len(self.reason) > MAX_REASON:
            raise PlanError(f"reason: say why, in 1 to {MAX_REASON} characters")
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in self.reason):
            raise PlanError("reason: one line, without control characters")

    def covers(self, day: date) -> bool:
        return self.from_day <= day <= self.to_day

    @property
    def says(self) -> str:
        """Why a visit of its days is not planned, as the day's unplanned list shows it."""
        return f"care plan paused {self.from_day.isoformat()} to {self.to_day.isoformat()}: {self.reason}"


@dataclass(frozen=True)
class CarePlan:
    id: str
    resident_id: str
    service: str
    recurrence: Recurrence
    window_start: time
    window_end: time
    duration_minutes: int
    skills: frozenset[str] = frozenset()
    preferred_provider_id: str | None = None
    note: str | None = None
    active: bool = True
    pauses: tuple[Pause, ...] = ()  # by first day

    def paused_on(self, day: date) -> Pause | None:
        return next((p for p in self.pauses if p.covers(day)), None)

    def __post_init__(self) -> None:
        if len(self.pauses) > MAX_PAUSES:
            raise PlanError(f"pauses: at most {MAX_PAUSES}")
        if self.service not in PLANNABLE:
            raise PlanError(f"service: {self.service!r} cannot be planned; one of {sorted(PLANNABLE)}")
        start = self.window_start.hour * 60 + self.window_start.minute
        end = self.window_end.hour * 60 + self.window_end.minute
        if end - start < MIN_WINDOW_MINUTES:
            raise PlanError(f"window: must end at least {MIN_WINDOW_MINUTES} minutes after it starts, on the same day")
        if not 1 <= self.duration_minutes <= MAX_DURATION_MINUTES:
            raise PlanError(f"duration_minutes: must be between 1 and {MAX_DURATION_MINUTES}")
        if len(self.skills) > MAX_SKILLS:
            raise PlanError(f"skills: at most {MAX_SKILLS}")


@dataclass(frozen=True)
class PlannedVisit:
    """One visit a plan asks for on one day: start between `earliest` and `latest` (UTC)."""

    plan_id: str
    day: date
    resident_id: str
    service: str
    earliest: datetime
    latest: datetime
    duration_minutes: int
    location: Location | None = None
    skills: frozenset[str] = frozenset()
    preferred_provider_id: str | None = None
    district: str | None = None

    @property
    def key(self) -> str:
        """The visit's identity: one visit per plan and day, whatever replans it."""
        return f"{self.plan_id}:{self.day.isoformat()}"


@dataclass(frozen=True)
class Home:
    """Where a resident lives, as the planner needs it."""

    location: Location | None
    district: str | None = None


def visits_on(
    plans: Iterable[CarePlan], day: date, tz: ZoneInfo, homes: dict[str, Home] | None = None,
) -> list[PlannedVisit]:
    """The visits the active plans ask for on `day` (local), ordered by window then plan id."""
    homes = homes or {}
    visits = []
    for plan in plans:
        if not plan.active or not plan.recurrence.occurs_on(day):
            continue
        home = homes.get(plan.resident_id, Home(None))
        visits.append(PlannedVisit(
            plan_id=plan.id, day=day, resident_id=plan.resident_id, service=plan.service,
            earliest=datetime.combine(day, plan.window_start, tz).astimezone(ZoneInfo("UTC")),
            latest=datetime.combine(day, plan.window_end, tz).astimezone(ZoneInfo("UTC")),
            duration_minutes=plan.duration_minutes, location=home.location, skills=plan.skills,
            preferred_provider_id=plan.preferred_provider_id, district=home.district,
        ))
    visits.sort(key=lambda v: (v.earliest, v.plan_id))
    return visits


@dataclass(frozen=True)
class Worker:
    """A provider's shift as the day planner sees it: where and when it works, what it can do. A
    provider with a split shift (mornings and evenings) is one worker per part, each from and back
    to its start, so no visit is planned in the break; the plan joins them into one route."""

    provider_id: str
    start: Location  # where its day starts and ends
    shift_start: datetime
    shift_end: datetime
    services: frozenset[str]
    skills: frozenset[str] = frozenset()
    districts: frozenset[str] = frozenset()  # empty: serves every district

    def can_do(self, visit: PlannedVisit) -> bool:
        return (visit.service in self.services and visit.skills <= self.skills
                and (not self.districts or visit.district is None or visit.district in self.districts))


@dataclass(frozen=True)
class Stop:
    """One visit on a route, with when the provider is planned to arrive and start."""

    visit: PlannedVisit
    arrive: datetime
    start: datetime  # max(arrive, visit.earliest)
    travel_minutes: float  # from the stop before (or the route's start)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.visit.duration_minutes)


@dataclass(frozen=True)
class DayPlan:
    """The planner's answer for one day."""

    day: date
    routes: dict[str, tuple[Stop, ...]]  # provider id -> its stops in order
    unplanned: dict[str, str] = field(default_factory=dict)  # visit key -> why nobody could take it
    travel_minutes: float = 0.0  # the whole plan, including the way back to each start
    solver: str = ""  # which search produced it ("ortools", "greedy")
    bound_minutes: float | None = None  # a lower bound on travel, when the search gives one
    on_call: frozenset[str] = frozenset()  # workers kept free of planned work for presses (planner.on_call)
