"""Two districts side by side, made through the directory, the registry, dispatch's and telemetry's
own code (never by SQL): each with a resident, a bed and a button, an open request, an alert and
a provider placed there. What a dispatcher of one district must never see of the other is listed
in `District.secrets`."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from services.dispatch.store import providers

from .alerting import raise_alert
from .dispatching import new_provider, new_resident, open_request
from .vitals import provision


@dataclass(frozen=True)
class District:
    name: str
    resident_id: str
    resident_name: str
    bed_id: str
    button_id: str
    request_id: str
    alert_id: str
    provider_id: str
    provider_name: str
    plan_id: str = ""  # a care plan of its resident, once `plan_a_day` made one

    @property
    def secrets(self) -> list[str]:
        """Every id and name of this district a page or an answer could give away."""
        return [s for s in (self.name, self.resident_id, self.resident_name, self.bed_id, self.button_id,
                            self.request_id, self.alert_id, self.provider_id, self.provider_name, self.plan_id) if s]

    @property
    def ids(self) -> dict[str, str]:
        """Path parameters of the API, as this district's things."""
        return {"resident_id": self.resident_id, "device_id": self.bed_id, "request_id": self.request_id,
                "alert_id": self.alert_id, "provider_id": self.provider_id, "plan_id": self.plan_id}


def district(pool, label: str) -> District:
    """A district named `<label> <random>` with one of everything; its provider is off shift (it
    takes no offers of other tests) and placed in it."""
    tag = uuid.uuid4().hex[:8]
    name = f"{label} {tag}"
    resident_id, resident_name = new_resident(pool, f"Resident {label} {tag}", district=name)
    bed = provision(pool, resident_id, "bed")
    button = provision(pool, resident_id, "button")
    request_id = open_request(pool, resident_id, "meal")
    alert_id = raise_alert(pool, resident_id, device_id=bed, summary=f"Suspected fall of {resident_name}")
    provider_id, provider_name = new_provider(pool, ["meal"], name=f"Carer {label} {tag}")
    with pool.connection() as conn:
        providers.set_districts(conn, provider_id, [name])
    return District(name, resident_id, resident_name, bed, button, request_id, alert_id, provider_id, provider_name)


def leaks(text: str, other: District) -> list[str]:
    """The other district's ids and names found in a page or an answer."""
    return [secret for secret in other.secrets if secret in text]


def plan_a_day(pool, *districts: District) -> tuple[date, list[District]]:
    """A day nobody else plans, with a care plan of each district's resident that day, each
    district's provider on shift that day, and the day planned (routes and the unplanned)."""
    from services.dispatch.store import shifts
    from services.dispatch.store.transactions import PostgresTransactions
    from services.dispatch.usecases import plans
    from services.dispatch.usecases.context import Dispatch

    day = date(2040, 1, 1) + timedelta(days=random.randrange(365 * 50))
    ctx = Dispatch(plan_time_limit_s=1.0)
    planned = []
    with pool.connection() as conn:
        for d in districts:
            plan = plans.create_plan(conn, ctx, d.resident_id, {
                "service": "meal", "repeat": "once", "starts_on": day, "window_start": time(11, 0),
                "window_end": time(13, 0), "duration_minutes": 20}, "test")
            start = datetime.combine(day, time(0, 0), UTC)
            shifts.add(conn, d.provider_id, start, start + timedelta(hours=23))
            planned.append(replace(d, plan_id=plan.id))
    plans.plan_day(PostgresTransactions(pool), ctx, day, "test")
    return day, planned
