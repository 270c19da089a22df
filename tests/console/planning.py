"""Care plans, shifts and planned days for console tests, made through dispatch's interface and
use cases (never by SQL), on a day of their own far ahead so other tests' shifts stay out of it."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.dispatch import interface as dispatch
from services.dispatch.usecases.providers import plan_shift

from .dispatching import ACTOR, CTX

ZONE = ZoneInfo("Asia/Shanghai")


def desk_of(pool, client, district: str = "Test"):
    """The client signed in as a dispatcher of `district` (the test residents': "Test")."""
    from homecare.auth import Role

    from .conftest import make_user, sign_in

    assert sign_in(client, make_user(pool, Role.DISPATCHER, districts=(district,))).status_code == 303
    return client


def a_day_of_its_own() -> date:
    """A random weekday years ahead: no other test's shift falls on it."""
    day = date(2040, 1, 1) + timedelta(days=random.randrange(3000))  # dispatch's plan tests use 2030-2038
    return day + timedelta(days=(7 - day.weekday()) % 7)  # a Monday


def shift(pool, provider_id: str, day: date, start: time = time(8), end: time = time(16)) -> None:
    """A planned shift of the provider on `day` (the centre's local times)."""
    with pool.connection() as conn:
        plan_shift(conn, CTX, provider_id, datetime.combine(day, start, ZONE), datetime.combine(day, end, ZONE))


def care_plan(pool, resident_id: str, day: date, service: str = "meal", start: time = time(11),
              end: time = time(13), **fields) -> str:
    """A care plan of the resident that asks for a visit once on `day`; its id."""
    body = {"service": service, "repeat": "once", "starts_on": day, "window_start": start, "window_end": end,
            "duration_minutes": 20, **fields}
    with pool.connection() as conn:
        return dispatch.save_care_plan(conn, CTX, resident_id, body, ACTOR)["id"]


QUICK = replace(CTX, plan_time_limit_s=1.0)  # the day planner's search stops after a second


def plan(pool, day: date) -> dict:
    """Plan the day now (the run)."""
    with pool.connection() as conn:
        return dispatch.plan_day_now(conn, QUICK, day, ACTOR)
