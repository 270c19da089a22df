"""`/api/v1/residents`: enrolment and the resident's whole picture."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Query

from homecare.api.deps import DbConn, DispatcherUser
from homecare.errors import Forbidden

from . import store

# Other packages add to a resident's picture (devices from the gateway, open requests from
# dispatch) without the core importing them: the assembler passes these in.
Detail = Callable[[psycopg.Connection, str], dict[str, Any]]


def residents_router(details: list[Detail] | None = None) -> APIRouter:
    """Routes for residents; `details` contribute extra keys to GET /residents/{id}."""
    router = APIRouter(prefix="/api/v1/residents", tags=["residents"])

    @router.post("", status_code=201, response_model=store.Resident)
    def enrol(body: store.NewResident, conn: DbConn, user: DispatcherUser) -> store.Resident:
        """Enrol a resident; a dispatcher only in one of its own districts (403 otherwise)."""
        if not user.scope.allows(body.district):
            raise Forbidden(f"district: you work for {user.scope.describe()}, not {body.district}")
        return store.enrol(conn, body)

    @router.get("")
    def search(
        conn: DbConn, user: DispatcherUser, q: Annotated[str, Query(max_length=200)] = "",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[store.Resident]:
        """Find residents by name, address, district or id, in the districts you work for."""
        return store.search(conn, q, limit, user.scope.districts)

    @router.get("/{resident_id}")
    def get(resident_id: str, conn: DbConn, user: DispatcherUser) -> dict[str, Any]:
        """The resident, with their devices and open requests; 404 for one of another district."""
        picture = store.get(conn, resident_id, user.scope.districts).model_dump()
        for detail in details or []:
            picture.update(detail(conn, resident_id))
        return picture

    return router
