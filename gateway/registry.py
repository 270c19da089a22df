"""Provisioned devices. Data functions take a connection and do not commit."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel

from homecare.auth import hash_secret
from homecare.contract import DeviceKind
from homecare.errors import Conflict, Invalid, NotFound
from homecare.shards import DEFAULT_SHARD
from homecare.topics import DEVICE_ID_PATTERN, is_valid_device_id

DeviceStateName = Literal["never_seen", "online", "offline", "silent"]

_COLUMNS = (
    "id, kind, resident_id, shard, online, state, last_seen, battery, fw, rssi, report_interval_s,"
    " created_at, revoked_at"
)


class Device(BaseModel):
    """A provisioned device as operators see it (never its secret)."""

    id: str
    kind: DeviceKind
    resident_id: str
    shard: str  # the broker shard the device uses, for life (homecare/shards.py)
    online: bool
    state: DeviceStateName
    last_seen: datetime | None = None
    battery: float | None = None
    fw: str | None = None
    rssi: int | None = None
    report_interval_s: int = 10
    created_at: datetime
    revoked_at: datetime | None = None
    # Flood control: messages dropped over the device's budget, and when the last one was.
    throttled_messages: int = 0
    last_throttled_at: datetime | None = None
    # Rejected messages by reason code (schema, range, rate, ...): filled for one device only.
    rejected: dict[str, int] = {}


@dataclass(frozen=True)
class DeviceRef:
    """What the edge needs to know of an active device."""

    id: str
    kind: DeviceKind
    resident_id: str
    shard: str = DEFAULT_SHARD


def new_secret() -> str:
    """A device secret: 32 random URL-safe characters."""
    return secrets.token_urlsafe(24)


def provision(
    conn: psycopg.Connection, device_id: str, kind: DeviceKind, resident_id: str,
    shard: str = DEFAULT_SHARD,
) -> tuple[Device, str]:
    """Register a device for a resident on a broker shard; returns it and its secret, which is
    never shown again."""
    if not is_valid_device_id(device_id):
        raise Invalid(f"id: {device_id!r} does not match {DEVICE_ID_PATTERN}")
    kind = DeviceKind(kind)
    with conn.cursor(row_factory=dict_row) as cur:
        if cur.execute("SELECT 1 FROM registry.residents WHERE id = %s", (resident_id,)).fetchone() is None:
            raise NotFound(f"resident {resident_id} not found")
        secret = new_secret()
        row = cur.execute(
            "INSERT INTO gateway.devices (id, kind, resident_id, shard, secret_hash)"
            f" VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}",
            (device_id, kind.value, resident_id, shard, hash_secret(secret)),
        ).fetchone()
    if row is None:
        raise Conflict(f"device {device_id} already exists")
    return Device(**row), secret


# Reading devices for operators: with their throttling, from the rejection tallies.
_READ = (
    "SELECT d.*, coalesce(r.count, 0) AS throttled_messages, r.last_at AS last_throttled_at"
    f" FROM (SELECT {_COLUMNS} FROM gateway.devices) d"
    " LEFT JOIN gateway.rejections r ON r.device_id = d.id AND r.code = 'rate'"
)


# Devices of residents of some districts (a dispatcher's scope, homecare.auth.Scope).
_OF_DISTRICTS = "d.resident_id IN (SELECT id FROM registry.residents WHERE district = ANY(%s))"


def get(conn: psycopg.Connection, device_id: str, districts: frozenset[str] | None = None) -> Device:
    """One device, revoked or not, with its rejections by reason; or NotFound, also for a device
    of a resident outside `districts` (None: all), so its existence does not leak."""
    scoped = f" AND {_OF_DISTRICTS}" if districts is not None else ""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"{_READ} WHERE d.id = %s{scoped}",
                          (device_id, *([sorted(districts)] if districts is not None else []))).fetchone()
        if row is None:
            raise NotFound(f"device {device_id} not found")
        rejected = cur.execute(
            "SELECT code, count FROM gateway.rejections WHERE device_id = %s", (device_id,)
        ).fetchall()
    return Device(**row, rejected={r["code"]: r["count"] for r in rejected})


def residents_of_devices(conn: psycopg.Connection, device_ids: Iterable[str]) -> dict[str, str]:
    """The resident of each given device (revoked ones too: their old messages still name them),
    in one statement; unknown ids are left out."""
    ids = sorted({i for i in device_ids if i})
    if not ids:
        return {}
    rows = conn.execute("SELECT id, resident_id FROM gateway.devices WHERE id = ANY(%s)", (ids,)).fetchall()
    return {(r["id"] if isinstance(r, dict) else r[0]): (r["resident_id"] if isinstance(r, dict) else r[1])
            for r in rows}


def devices_of(conn: psycopg.Connection, resident_id: str) -> list[Device]:
    """The active (not revoked) devices of a resident, by id."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"{_READ} WHERE d.resident_id = %s AND d.revoked_at IS NULL ORDER BY d.id",
            (resident_id,),
        ).fetchall()
    return [Device(**r) for r in rows]


def devices_of_residents(conn: psycopg.Connection, resident_ids: list[str]) -> dict[str, list[Device]]:
    """The active devices of many residents in one statement, by resident, each by id; residents
    without a device are absent."""
    out: dict[str, list[Device]] = {}
    if not resident_ids:
        return out
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"{_READ} WHERE d.resident_id = ANY(%s) AND d.revoked_at IS NULL ORDER BY d.id",
            (list(resident_ids),),
        ).fetchall()
    for row in rows:
        out.setdefault(row["resident_id"], []).append(Device(**row))
    return out


def beds_of(conn: psycopg.Connection, resident_ids: list[str]) -> dict[str, list[str]]:
    """The active bed ids of many residents in one query, by resident; residents without a bed are
    absent."""
    if not resident_ids:
        return {}
    out: dict[str, list[str]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT id, resident_id FROM gateway.devices"
            " WHERE resident_id = ANY(%s) AND kind = 'bed' AND revoked_at IS NULL ORDER BY id",
            (list(resident_ids),),
        ).fetchall()
    for row in rows:
        out.setdefault(row["resident_id"], []).append(row["id"])
    return out


def beds_per_district(conn: psycopg.Connection, within: frozenset[str] | None = None) -> dict[str, int]:
    """How many active beds each district's residents have (of `within`; None: all; districts
    without beds are absent)."""
    scoped = " AND r.district = ANY(%s)" if within is not None else ""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT r.district, count(*) AS beds FROM gateway.devices d"
            " JOIN registry.residents r ON r.id = d.resident_id"
            f" WHERE d.kind = 'bed' AND d.revoked_at IS NULL{scoped} GROUP BY r.district",
            [sorted(within)] if within is not None else [],
        ).fetchall()
    return {r["district"]: r["beds"] for r in rows}


def list_devices(
    conn: psycopg.Connection, *, kind: DeviceKind | None = None, limit: int = 100, offset: int = 0,
    districts: frozenset[str] | None = None,
) -> list[Device]:
    """Active devices (of residents of `districts`; None: all), by id, a page at a time."""
    where, params = "d.revoked_at IS NULL", []
    if kind is not None:
        where += " AND d.kind = %s"
        params.append(DeviceKind(kind).value)
    if districts is not None:
        where += f" AND {_OF_DISTRICTS}"
        params.append(sorted(districts))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"{_READ} WHERE {where} ORDER BY d.id LIMIT %s OFFSET %s",
            (*params, limit, offset),
        ).fetchall()
    return [Device(**r) for r in rows]


def never_connected(conn: psycopg.Connection, provisioned_before: datetime, limit: int = 1000) -> list[Device]:
    """Active devices provisioned before the given time that never connected, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"{_READ} WHERE d.state = 'never_seen' AND d.revoked_at IS NULL AND d.created_at < %s"
            " ORDER BY d.created_at LIMIT %s",
            (provisioned_before, limit),
        ).fetchall()
    return [Device(**r) for r in rows]


def revoke(conn: psycopg.Connection, device_id: str) -> Device:
    """Decommission a device: it goes offline (its undelivered commands expire at their deadline,
    in dispatch). Idempotent."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE gateway.devices SET revoked_at = coalesce(revoked_at, now()), online = false,"
            " state = CASE WHEN state = 'never_seen' THEN state ELSE 'offline' END,"
            " state_changed_at = CASE WHEN state IN ('never_seen', 'offline') THEN state_changed_at"
            " ELSE now() END"
            f" WHERE id = %s RETURNING {_COLUMNS}",
            (device_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"device {device_id} not found")
    return Device(**row)


def lookup(conn: psycopg.Connection, device_id: str) -> DeviceRef | None:
    """The active device with this id, or None when unknown or revoked."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT kind, resident_id, shard FROM gateway.devices WHERE id = %s AND revoked_at IS NULL",
            (device_id,),
        ).fetchone()
    if row is None:
        return None
    return DeviceRef(device_id, DeviceKind(row["kind"]), row["resident_id"], row["shard"])


def active_per_shard(conn: psycopg.Connection) -> dict[str, int]:
    """How many active (not revoked) devices each shard has: what placement goes by."""
    rows = conn.execute(
        "SELECT shard, count(*) FROM gateway.devices WHERE revoked_at IS NULL GROUP BY shard"
    ).fetchall()
    return {r["shard"] if isinstance(r, dict) else r[0]: r["count"] if isinstance(r, dict) else r[1]
            for r in rows}


def set_report_interval(conn: psycopg.Connection, device_id: str, seconds: int) -> None:
    """The device applied a `config` command: expect its telemetry this often (the silence sweep
    allows `silent_after_intervals` of them)."""
    conn.execute("UPDATE gateway.devices SET report_interval_s = %s WHERE id = %s", (seconds, device_id))
