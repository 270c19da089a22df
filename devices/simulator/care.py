"""The simulated city's planned care: who has which care plan, the providers' skills and shifts
(pure, seeded, no I/O; `provisioning.py` sends them through the operator API).

The mix follows what a district service centre runs: a lunch delivered every day between 11:00
and 13:00 to most registered residents, a bath every week or two on a weekday, help getting up
or to bed on some weekdays, and now and then an escort to a booked hospital appointment. Times
of day are local to the city (the platform's plan time zone).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from homecare.contract import Service

from .population import ProviderPlan, ResidentPlan
from .scenario import CareMix

# Skills a plan may ask for and the providers who have them.
BATH_LIFT = "bath_lift"  # a hoist for a resident who cannot step into the tub
WHEELCHAIR = "wheelchair"  # pushing a wheelchair to and through a hospital
DEMENTIA = "dementia_care"

# What each kind of provider can do beyond its services, by the name's template (population.py).
_SKILLS_BY_LABEL = {
    "Bathing Aides": (BATH_LIFT,),
    "Home Nursing": (BATH_LIFT, DEMENTIA),
    "Escort Volunteers": (WHEELCHAIR,),
    "Emergency Response": (WHEELCHAIR,),
}

# A care package is reviewed every quarter: recurring plans end then (and ask for no visits on
# the far-off days other runs or tests plan).
REVIEW_AFTER = timedelta(weeks=13)

# Shifts (local start, end): an early, a day and a late shift, taken in turn.
SHIFTS: tuple[tuple[time, time], ...] = ((time(7, 0), time(15, 30)), (time(8, 30), time(17, 30)),
                                         (time(11, 0), time(20, 0)))


@dataclass(frozen=True)
class PlanSpec:
    """One care plan of a simulated resident, before it has the platform's ids."""

    resident_index: int
    service: Service
    repeat: str  # "daily", "weekdays", "every_n_weeks" or "once"
    starts_on: date
    window_start: time
    window_end: time
    duration_minutes: int
    weekdays: tuple[int, ...] = ()
    every_weeks: int = 1
    skills: tuple[str, ...] = ()
    preferred_provider: int | None = None  # a provider's index in the scenario
    note: str | None = None


def provider_skills(provider: ProviderPlan) -> tuple[str, ...]:
    """The skills of a generated provider (a caregiver's depend on its index: seeded, stable)."""
    for label, skills in _SKILLS_BY_LABEL.items():
        if label in provider.name:
            return skills
    return (DEMENTIA,) if provider.index % 3 == 0 else ()


def shift_of(provider: ProviderPlan, day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The provider's shift on `day` (aware datetimes): early, day and late shifts in turn."""
    start, end = SHIFTS[provider.index % len(SHIFTS)]
    return datetime.combine(day, start, tz), datetime.combine(day, end, tz)


def _able(providers: list[ProviderPlan], service: Service, skills: tuple[str, ...]) -> list[ProviderPlan]:
    return [p for p in providers if service in p.services and set(skills) <= set(provider_skills(p))]


def _weekday(rng: random.Random) -> int:
    return rng.randrange(5)  # Monday to Friday: the bathing aides do not work weekends


def plans_of(home: ResidentPlan, providers: list[ProviderPlan], seed: int, today: date,
             mix: CareMix) -> list[PlanSpec]:
    """The care plans of one home (none for a home outside the mix's share)."""
    rng = random.Random(f"care:{seed}:{home.index}")
    if rng.random() >= mix.share:
        return []
    out: list[PlanSpec] = []
    i = home.index
    if rng.random() < mix.lunch:
        out.append(PlanSpec(i, Service.MEAL, "daily", today, time(11, 0), time(13, 0), 15,
                            note="lunch from the community canteen"))
    if rng.random() < mix.bath:
        skills = (BATH_LIFT,) if rng.random() < 0.3 else ()
        morning = rng.random() < 0.5
        window = (time(9, 0), time(11, 30)) if morning else (time(14, 0), time(16, 30))
        weekly = rng.random() < 0.5
        out.append(PlanSpec(i, Service.BATHING, "weekdays" if weekly else "every_n_weeks", today, *window, 40,
                            weekdays=(_weekday(rng),), every_weeks=1 if weekly else 2, skills=skills))
    if rng.random() < mix.mobility:
        getting_up = rng.random() < 0.6
        window = (time(7, 30), time(9, 0)) if getting_up else (time(18, 0), time(19, 30))
        days = (0, 1, 2, 3, 4, 5, 6) if rng.random() < 0.4 else (0, 2, 4)
        out.append(PlanSpec(i, Service.MOBILITY, "daily" if len(days) == 7 else "weekdays", today, *window, 20,
                            weekdays=() if len(days) == 7 else days,
                            note="help getting up" if getting_up else "help getting ready for bed"))
    if rng.random() < mix.escort:
        on = today + timedelta(days=rng.choice((0, 0, 1, 2, 3, 5, 8)))
        hour = rng.choice((8, 9, 13, 14))
        skills = (WHEELCHAIR,) if rng.random() < 0.4 else ()
        out.append(PlanSpec(i, Service.ESCORT, "once", on, time(hour, 0), time(hour, 45), 90, skills=skills,
                            note=rng.choice(("Ruijin Hospital, cardiology", "Zhongshan Hospital, eye clinic",
                                             "Huashan Hospital, follow-up", "community clinic, blood test"))))
    if not out:  # every home in the share has a plan: at least the lunch
        out.append(PlanSpec(i, Service.MEAL, "daily", today, time(11, 0), time(13, 0), 15,
                            note="lunch from the community canteen"))
    # A quarter of the plans ask for a provider the resident knows (one who can do it).
    return [_prefer(p, providers, rng) for p in out]


def _prefer(plan: PlanSpec, providers: list[ProviderPlan], rng: random.Random) -> PlanSpec:
    able = _able(providers, plan.service, plan.skills)
    if not able or rng.random() >= 0.25:
        return plan
    return PlanSpec(**{**plan.__dict__, "preferred_provider": rng.choice(able).index})


def care_plans(homes: list[ResidentPlan], providers: list[ProviderPlan], seed: int, today: date,
               mix: CareMix) -> list[PlanSpec]:
    """Every home's care plans, in home order; the same for the same seed and day."""
    return [plan for home in homes for plan in plans_of(home, providers, seed, today, mix)]


def plan_body(plan: PlanSpec, provider_ids: dict[int, str]) -> dict[str, Any]:
    """The `POST /api/v1/residents/{id}/care-plans` body of a plan."""
    body: dict[str, Any] = {
        "service": plan.service.value,
        "repeat": plan.repeat,
        "starts_on": plan.starts_on.isoformat(),
        **({"ends_on": (plan.starts_on + REVIEW_AFTER).isoformat()} if plan.repeat != "once" else {}),
        "window_start": plan.window_start.strftime("%H:%M"),
        "window_end": plan.window_end.strftime("%H:%M"),
        "duration_minutes": plan.duration_minutes,
        "skills": list(plan.skills),
    }
    if plan.weekdays:
        body["weekdays"] = list(plan.weekdays)
    if plan.repeat == "every_n_weeks":
        body["every_weeks"] = plan.every_weeks
    if plan.preferred_provider is not None and plan.preferred_provider in provider_ids:
        body["preferred_provider_id"] = provider_ids[plan.preferred_provider]
    if plan.note:
        body["note"] = plan.note
    return body
