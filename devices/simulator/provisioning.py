"""Enrols the scenario's homes and providers through the operator API (as an admin would)."""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .api import OperatorApi
from .population import ProviderPlan, ResidentPlan
from .roster import DeviceCredentials, EnrolledProvider, EnrolledResident, Roster

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
