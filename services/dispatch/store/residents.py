"""The residents dispatch serves, read from the core's directory."""

from __future__ import annotations

import psycopg

from homecare.errors import NotFound
from homecare.residents import store as residents

from ..domain.matching import Location


def home(conn: psycopg.Connection, resident_id: str) -> tuple[Location | None, str | None]:
    """(where the resident lives, their district), or (None, None) when the directory does not know them."""
    try:
        resident = residents.get(conn, resident_id)
    except NotFound:
        return None, None
    return Location(resident.location.lat, resident.location.lon), resident.district


def check(conn: psycopg.Connection, resident_id: str) -> None:
    """NotFound for a resident the directory does not know."""
    residents.get(conn, resident_id)
