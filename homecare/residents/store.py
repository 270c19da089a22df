"""Residents: data functions take a connection and do not commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated, Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import AfterValidator, BaseModel, Field

from homecare.api.types import (
    District,
    Email,
    Flag,
    Latitude,
    Line,
    Longitude,
    Name,
    Note,
    Phone,
    no_control_characters,
)
from homecare.errors import NotFound


class Location(BaseModel):
    lat: Latitude
    lon: Longitude


class Contact(BaseModel):
    name: Name
    phone: Phone | None = None
    relation: Annotated[str, Field(max_length=100), AfterValidator(no_control_characters)] | None = None
    email: Email | None = None
    # The resident agreed that this contact is told of emergencies and critical alerts (by the
    # notification rules that name "family"); never without it.
    notify: Flag = False


class NewResident(BaseModel):
    name: Name
    address: Line
    district: District
    location: Location
    notes: Note | None = None
    contacts: list[Contact] = Field(default_factory=list, max_length=10)


class Resident(NewResident):
    id: str


def new_id(prefix: str) -> str:
    """A short random id with a readable prefix, e.g. `res-3f9a1c2b7d4e`."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _from_row(row: dict[str, Any]) -> Resident:
    # Built without validation: rows stored before the bounds were tightened must still read.
    return Resident.model_construct(
        id=row["id"], name=row["name"], address=row["address"], district=row["district"],
        location=Location(lat=row["lat"], lon=row["lon"]), notes=row["notes"],
        contacts=[Contact.model_construct(**c) for c in row["contacts"]],
    )


def enrol(conn: psycopg.Connection, body: NewResident, resident_id: str | None = None) -> Resident:
    """Enrol a resident; returns it with its id."""
    rid = resident_id or new_id("res")
    conn.execute(
        "INSERT INTO registry.residents (id, name, address, district, lat, lon, notes, contacts)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (rid, body.name, body.address, body.district, body.location.lat, body.location.lon,
         body.notes, Jsonb([c.model_dump() for c in body.contacts])),
    )
    return Resident(id=rid, **body.model_dump())


def get(conn: psycopg.Connection, resident_id: str, districts: frozenset[str] | None = None) -> Resident:
    """One resident, or NotFound; also NotFound for one outside `districts` (a dispatcher's
    scope, homecare.auth.Scope; None: all), so its existence does not leak."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM registry.residents WHERE id = %s", (resident_id,)).fetchone()
    if row is None or (districts is not None and row["district"] not in districts):
        raise NotFound(f"resident {resident_id} not found")
    return _from_row(row)


def search(
    conn: psycopg.Connection, text: str = "", limit: int = 50, districts: frozenset[str] | None = None,
) -> list[Resident]:
    """Residents whose name, address or district contains the text (of `districts`; None: all)."""
    pattern = f"%{text.lower()}%"
    scoped = " AND district = ANY(%s)" if districts is not None else ""
    extra = [sorted(districts)] if districts is not None else []
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM registry.residents WHERE (lower(name) LIKE %s OR lower(address) LIKE %s"
            f" OR lower(district) LIKE %s OR id = %s){scoped} ORDER BY name LIMIT %s",
            (pattern, pattern, pattern, text, *extra, limit),
        ).fetchall()
    return [_from_row(r) for r in rows]


def many(conn: psycopg.Connection, resident_ids: Iterable[str]) -> dict[str, Resident]:
    """The given residents by id, in one query; unknown ids are left out (a day's routes, a roster)."""
    ids = sorted({i for i in resident_ids if i})
    if not ids:
        return {}
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute("SELECT * FROM registry.residents WHERE id = ANY(%s)", (ids,)).fetchall()
    return {r["id"]: _from_row(r) for r in rows}


def names(conn: psycopg.Connection, resident_ids: Iterable[str]) -> dict[str, str]:
    """Names of the given residents by id, in one query; unknown ids are left out."""
    ids = sorted({i for i in resident_ids if i})
    if not ids:
        return {}
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            "SELECT id, name FROM registry.residents WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    return {r["id"]: r["name"] for r in rows}


def districts_of(conn: psycopg.Connection, resident_ids: Iterable[str]) -> dict[str, str]:
    """The district of each given resident, by id; unknown ids are left out."""
    ids = sorted({i for i in resident_ids if i})
    if not ids:
        return {}
    rows = conn.execute("SELECT id, district FROM registry.residents WHERE id = ANY(%s)", (ids,)).fetchall()
    return {(r["id"] if isinstance(r, dict) else r[0]): (r["district"] if isinstance(r, dict) else r[1])
            for r in rows}


def in_district(conn: psycopg.Connection, district: str, limit: int = 1000) -> list[Resident]:
    """The residents of one district (exact name), by name."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM registry.residents WHERE district = %s ORDER BY name, id LIMIT %s", (district, limit)
        ).fetchall()
    return [_from_row(r) for r in rows]


def districts(conn: psycopg.Connection, within: frozenset[str] | None = None) -> dict[str, int]:
    """Every district that has residents (of `within`; None: all), with how many, by name."""
    where = " WHERE district = ANY(%s)" if within is not None else ""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(
            f"SELECT district, count(*) AS residents FROM registry.residents{where}"
            " GROUP BY district ORDER BY district",
            ([sorted(within)] if within is not None else []),
        ).fetchall()
    return {r["district"]: r["residents"] for r in rows}
