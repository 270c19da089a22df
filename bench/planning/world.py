"""The district day of the planning benchmark: bench.dispatch's residents, providers and presses,
plus care plans for the residents and skills for the providers.

Plans are the product's own `CarePlan`s (validated by the domain) and the day's visits come from
`visits_on`, in UTC (the simulated clock has no zone, as in bench.dispatch). What a plan asks for:

- a lunch meal every day for MEAL_SHARE of the residents, in a 90-minute window starting between
  10:30 and 12:00, 10-15 minutes at the door;
- a bath every week or every other week on one weekday for BATH_SHARE, in a two-hour morning or
  afternoon window, 30-40 minutes, a third of them needing a hoist;
- mobility help (getting up, a walk) on three given weekdays for MOBILITY_SHARE, 07:30-09:30 or
  15:00-17:00, 15-20 minutes;
- an escort to a booked hospital appointment on the day itself for ESCORT_SHARE, a one-hour window
  between 08:00 and 15:00, 45-90 minutes, half of them in a wheelchair.

Volumes are ours. The presses are bench.dispatch's usual ones by default (`--press-load 1.0`); on
this fleet (a day shift beside early and late, for the lunch meals) they alone ask more than the
fleet has at 7h and 18h, and with the plans the fleet's day (7-22h) is about three quarters busy
against half without: the benchmark reports the load hour by hour (`hourly_load`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bench.dispatch import world as city
from services.dispatch.domain.plans import CarePlan, Home, PlannedVisit, Recurrence, Repeat, Worker, visits_on

UTC = ZoneInfo("UTC")
DAY: date = city.DAY0.date()  # a Tuesday
MEAL_SHARE, BATH_SHARE, MOBILITY_SHARE, ESCORT_SHARE = 0.30, 0.20, 0.10, 0.03
HOIST, WHEELCHAIR = "hoist", "wheelchair"


@dataclass(frozen=True)
class District:
    """Everything a run needs about the day, the same for every mode compared."""

    residents: list[city.Resident]
    providers: list[city.Provider]
    workers: list[Worker]
    plans: list[CarePlan]
    visits: list[PlannedVisit]
    presses: list[city.RequestSpec]


def _at(hour: float) -> time:
    return time(int(hour), round((hour % 1) * 60))


def care_plans(people: list[city.Resident], rng: random.Random, day: date = DAY,
               meal_share: float = MEAL_SHARE) -> list[CarePlan]:
    plans = []
    for person in people:
        def plan(kind: str, recurrence: Recurrence, start_h: float, hours: float, minutes: int,
                 skills: frozenset[str] = frozenset(), person: city.Resident = person) -> None:
            plans.append(CarePlan(f"plan-{len(plans):04d}", person.id, kind, recurrence, _at(start_h),
                                  _at(start_h + hours), minutes, skills))

        if rng.random() < meal_share:
            plan("meal", Recurrence(Repeat.DAILY, day), rng.choice([10.5, 11.0, 11.5, 12.0]), 1.5, rng.randint(10, 15))
        if rng.random() < BATH_SHARE:
            every = rng.choice([1, 2])
            plan("bathing", Recurrence(Repeat.EVERY_N_WEEKS, day, weekdays=frozenset({rng.randrange(7)}),
                                       every_weeks=every),
                 rng.choice([9.0, 14.0]), 2.0, rng.randint(30, 40),
                 frozenset({HOIST}) if rng.random() < 1 / 3 else frozenset())
        if rng.random() < MOBILITY_SHARE:
            plan("mobility", Recurrence(Repeat.WEEKDAYS, day, weekdays=frozenset(rng.sample(range(7), 3))),
                 rng.choice([7.5, 15.0]), 2.0, rng.randint(15, 20))
        if rng.random() < ESCORT_SHARE:
            plan("escort", Recurrence(Repeat.ONCE, day), rng.choice([8.0, 9.0, 10.0, 13.0, 14.0]) + rng.random(),
                 1.0, rng.randint(45, 90), frozenset({WHEELCHAIR}) if rng.random() < 0.5 else frozenset())
    return plans


def workers_of(providers: list[city.Provider]) -> list[Worker]:
    """The planner's view of the fleet: every other provider trained on a hoist, one in three with
    a wheelchair-accessible car; each starts and ends its day at home."""
    out = []
    for i, p in enumerate(sorted(providers, key=lambda p: p.id)):
        skills = ({HOIST} if i % 2 == 0 else set()) | ({WHEELCHAIR} if i % 3 == 0 else set())
        out.append(Worker(p.id, p.home, p.shift_start, p.shift_end, p.services, frozenset(skills)))
    return out


# (name, start hour, hours, share of the fleet): bench.dispatch's early, late and night shifts with
# a day shift between them, as a centre that plans lunch meals staffs its middle of the day.
SHIFTS = (("early", 6.5, 8.0, 0.3), ("day", 9.5, 8.0, 0.3), ("late", 13.5, 8.5, 0.3), ("night", 22.0, 9.0, 0.1))


def fleet_of(count: int, rng: random.Random, day: datetime = city.DAY0) -> list[city.Provider]:
    """bench.dispatch's providers (homes, services, capacity as there: `city.providers`) on SHIFTS."""
    out = []
    for p in city.providers(count, rng, day):
        if p.id.endswith("n") or p.shift_start < day:  # the night crew, as in bench.dispatch
            out.append(p)
            continue
        _, start_h, hours, _ = SHIFTS[_slot(int(p.id.removeprefix("p-")), count)]
        start = day + timedelta(hours=start_h)
        out.append(replace(p, shift_start=start, shift_end=start + timedelta(hours=hours)))
    return out


def _slot(i: int, count: int) -> int:
    """Which daytime shift provider i works: the first 30 % early, the next 30 % day, then late."""
    bounds = [round(sum(s[3] for s in SHIFTS[:k + 1]) * count) for k in range(3)]
    return next((k for k, bound in enumerate(bounds) if i < bound), 2)


def district(seed: int, residents: int = 500, providers: int = 40, press_load: float = 1.0,
             meal_share: float = MEAL_SHARE) -> District:
    """The day of `seed`: the same residents, fleet and presses as bench.dispatch's day of that
    seed (at `press_load`), and the care plans drawn after them."""
    rng = random.Random(seed)
    people = city.residents(residents, rng)
    fleet = fleet_of(providers, rng)
    presses = city.requests(people, rng, press_load)
    plans = care_plans(people, random.Random(f"plans:{seed}"), meal_share=meal_share)
    homes = {p.id: Home(p.location, p.district) for p in people}
    return District(people, fleet, workers_of(fleet), plans, visits_on(plans, DAY, UTC, homes), presses)
