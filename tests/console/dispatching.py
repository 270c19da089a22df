"""Test data made through the residents directory and the dispatch use cases, never by SQL."""

from __future__ import annotations

import uuid

from homecare.contract.models import Service
from homecare.residents import store as residents
from services.dispatch.domain.matching import Location
from services.dispatch.store import providers
from services.dispatch.usecases.context import Dispatch
from services.dispatch.usecases.intake import phoned
from services.dispatch.usecases.progress import assign_manually, cancel

CTX = Dispatch()
ACTOR = "dispatcher:console-tests"


def new_resident(pool, name: str | None = None, district: str = "Test", contacts=()) -> tuple[str, str]:
    """(id, name) of a newly enrolled resident."""
    name = name or f"Resident {uuid.uuid4().hex[:6]}"
    body = residents.NewResident(
        name=name, address="1 Test Street", district=district,
        location=residents.Location(lat=31.2, lon=121.5),
        contacts=[residents.Contact(**c) for c in contacts],
    )
    with pool.connection() as conn:
        return residents.enrol(conn, body).id, name


def open_request(pool, resident_id: str, service: str = "meal") -> str:
    """A phoned-in request (it may be offered or escalated at once); returns its id."""
    with pool.connection() as conn:
        intake = phoned(conn, CTX, resident_id, Service(service), "test call", ACTOR)
    assert intake.outcome == "created", intake
    return intake.request_id


def cancel_request(pool, request_id: str) -> None:
    with pool.connection() as conn:
        cancel(conn, CTX, request_id, "test over", ACTOR)


def new_provider(
    pool, services: list[str], name: str | None = None, on_shift: bool = False,
    location: tuple[float, float] = (31.2, 121.5),
) -> tuple[str, str]:
    """(id, name) of a provider; off shift by default, so it takes no automatic offers."""
    pid, name = f"p-{uuid.uuid4().hex[:8]}", name or f"Carer {uuid.uuid4().hex[:4]}"
    with pool.connection() as conn:
        providers.insert(conn, pid, name, services, Location(*location), capacity=5, on_shift=on_shift)
    return pid, name


def set_shift(pool, provider_id: str, on_shift: bool) -> None:
    with pool.connection() as conn:
        providers.set_on_shift(conn, provider_id, on_shift)


def went_on_shift(pool, provider_id: str, at) -> None:
    """The provider went on shift at `at` (its last sign of life, unless it was on shift already)."""
    with pool.connection() as conn:
        providers.set_on_shift(conn, provider_id, True, at)


def last_seen(pool, provider_id: str):
    with pool.connection() as conn:
        return providers.get(conn, provider_id)["last_seen_at"]


def get_request(pool, request_id: str) -> dict:
    from services.dispatch import queries

    with pool.connection() as conn:
        return queries.get_request(conn, request_id)


def assign(pool, request_id: str, provider_id: str) -> None:
    with pool.connection() as conn:
        assign_manually(conn, CTX, request_id, provider_id, ACTOR)
