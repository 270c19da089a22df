"""Enrols the scenario's homes and providers through the operator API (as an admin would)."""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from .api import ApiError, OperatorApi
from .care import care_plans, plan_body, provider_skills, shift_of
from .population import ProviderPlan, ResidentPlan
from .roster import DeviceCredentials, EnrolledProvider, EnrolledResident, Roster
from .scenario import CareMix

log = logging.getLogger(__name__)


def new_run_tag() -> str:
    """A short random tag that keeps this run's device ids and logins apart from others'."""
    return secrets.token_hex(3)


def device_ids(run_tag: str, index: int) -> tuple[str, str]:
    """(bed id, button id) of a home, e.g. `bed-3fa9c1-00007`, `btn-3fa9c1-00007`."""
    return f"bed-{run_tag}-{index:05d}", f"btn-{run_tag}-{index:05d}"


def provider_username(run_tag: str, index: int) -> str:
    return f"provider-{run_tag}-{index:04d}"


def resident_body(plan: ResidentPlan) -> dict[str, Any]:
    """The `POST /api/v1/residents` body of a generated resident."""
    return {
        "name": plan.name,
        "address": plan.address,
        "district": plan.district,
        "location": {"lat": plan.lat, "lon": plan.lon},
        "contacts": [
            {"name": c.name, "phone": c.phone, "relation": c.relation,
             **({"email": c.email, "notify": c.notify} if c.email else {})}
            for c in plan.contacts
        ],
    }


def provider_body(plan: ProviderPlan) -> dict[str, Any]:
    """The `POST /api/v1/providers` body of a generated provider."""
    return {
        "name": plan.name,
        "services": [s.value for s in plan.services],
        "location": {"lat": plan.lat, "lon": plan.lon},
        "capacity": plan.capacity,
        "skills": list(provider_skills(plan)),
    }


def enrol_home(api: OperatorApi, plan: ResidentPlan, run_tag: str) -> EnrolledResident:
    """A resident with a bed and a button."""
    resident = api.enrol_resident(resident_body(plan))
    bed_id, button_id = device_ids(run_tag, plan.index)
    bed = api.provision_device(bed_id, "bed", resident["id"])
    button = api.provision_device(button_id, "button", resident["id"])
    return EnrolledResident(
        index=plan.index, id=resident["id"], name=plan.name, district=plan.district, lat=plan.lat,
        lon=plan.lon,
        bed=DeviceCredentials(id=bed_id, kind="bed", resident_id=resident["id"], secret=bed["secret"],
                              mqtt_url=bed.get("mqtt_url") or ""),
        button=DeviceCredentials(id=button_id, kind="button", resident_id=resident["id"], secret=button["secret"],
                                 mqtt_url=button.get("mqtt_url") or ""),
    )


def enrol_provider(api: OperatorApi, plan: ProviderPlan, run_tag: str) -> EnrolledProvider:
    """A provider and its own login."""
    provider = api.register_provider(provider_body(plan))
    username, password = provider_username(run_tag, plan.index), secrets.token_urlsafe(12)
    api.create_user(username, password, "provider", provider["id"])
    return EnrolledProvider(
        index=plan.index, id=provider["id"], name=plan.name, services=list(plan.services), lat=plan.lat,
        lon=plan.lon, capacity=plan.capacity, username=username, password=password,
    )


def provision(
    api: OperatorApi,
    run_tag: str,
    homes: list[ResidentPlan],
    providers: list[ProviderPlan],
    workers: int = 4,
) -> Roster:
    """Providers first (so the first press finds someone), then the homes, a few at a time."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provision") as pool:
        enrolled_providers = list(pool.map(lambda p: enrol_provider(api, p, run_tag), providers))
        enrolled_homes = list(pool.map(lambda h: enrol_home(api, h, run_tag), homes))
    log.info(
        "provisioned %d homes (%d devices) and %d providers",
        len(enrolled_homes), 2 * len(enrolled_homes), len(enrolled_providers), extra={"run_tag": run_tag},
    )
    return Roster(run_tag=run_tag, residents=enrolled_homes, providers=enrolled_providers)


NOT_THERE = (404, 405)  # a platform without care plans


def provision_care(
    api: OperatorApi, roster: Roster, homes: list[ResidentPlan], providers: list[ProviderPlan], seed: int,
    mix: CareMix, tz: tzinfo, now: datetime | None = None, workers: int = 4,
) -> Roster:
    """Planned care for the enrolled homes: the providers' shifts on the days to plan, every
    home's care plans (`care.py`), then the platform plans each day's routes. A platform without
    care plans (404 on the first plan) is left as it is. Fills `roster.care_plans` and `planned_days`."""
    if mix.share <= 0 or not roster.residents:
        return roster
    now = now or datetime.now(tz)
    today = now.astimezone(tz).date()
    days = [today + timedelta(days=n) for n in range(mix.plan_days)]
    provider_ids = {p.index: p.id for p in roster.providers}
    if mix.shifts:
        _plan_shifts(api, roster, providers, days, tz, now)
    resident_ids = {r.index: r.id for r in roster.residents}
    specs = [p for p in care_plans(homes, providers, seed, today, mix) if p.resident_index in resident_ids]
    if not specs:
        return roster
    try:  # the first alone: it tells whether the platform has care plans at all
        first = api.add_care_plan(resident_ids[specs[0].resident_index], plan_body(specs[0], provider_ids))
    except ApiError as exc:
        if exc.status in NOT_THERE:
            log.warning("the platform has no care plans (%s): the homes get none", exc.status)
            return roster
        raise
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="care") as pool:
        rest = list(pool.map(
            lambda p: api.add_care_plan(resident_ids[p.resident_index], plan_body(p, provider_ids)), specs[1:]))
    roster.care_plans = [first["id"], *(p["id"] for p in rest)]
    for day in days:
        try:
            run = api.plan_day(day.isoformat())
        except ApiError as exc:
            # A scenario whose time zone is not the platform's (`utc_offset_hours` against
            # HOMECARE_DISPATCH_PLAN_TIMEZONE) may name a day the platform calls yesterday.
            if exc.status != 422:
                raise
            log.warning("day %s not planned: %s", day, exc.detail)
            continue
        roster.planned_days.append(day.isoformat())
        log.info("planned %s: %s", day, {k: v for k, v in run.items() if not isinstance(v, list | dict)})
    log.info("gave %d homes %d care plans, planned %d day(s)", len({p.resident_index for p in specs}),
             len(roster.care_plans), len(days), extra={"run_tag": roster.run_tag})
    return roster


def _plan_shifts(api: OperatorApi, roster: Roster, providers: list[ProviderPlan], days: list[date], tz: tzinfo,
                 now: datetime) -> None:
    """Each provider's early, day or late shift on each day; a shift already over is skipped."""
    plans = {p.index: p for p in providers}
    for enrolled in roster.providers:
        plan = plans.get(enrolled.index)
        if plan is None:
            continue
        for day in days:
            start, end = shift_of(plan, day, tz)
            if end <= now:
                continue
            try:
                api.plan_shift(enrolled.id, start.isoformat(), end.isoformat())
            except ApiError as exc:
                if exc.status in NOT_THERE:
                    return
                raise
