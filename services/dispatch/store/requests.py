"""Service requests. Status changes are guarded updates: `WHERE status = <expected>`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from homecare.buttons import PressRun
from homecare.contract.models import Service
from homecare.errors import Conflict, NotFound

from ..domain.matching import Location
from ..domain.requests import ACTIVE, STAMPS, Change, ServiceRequest, Source, Status, TimelineEntry
from . import timeline

_ACTIVE = [s.value for s in ACTIVE]
_STAMP_COLUMNS = frozenset(STAMPS.values())


def from_row(row: dict) -> ServiceRequest:
    """The domain view of a `dispatch.requests` row."""
    return ServiceRequest(
        id=row["id"],
        resident_id=row["resident_id"],
        service=Service(row["service"]),
        priority=row["priority"],
        status=Status(row["status"]),
        created_at=row["created_at"],
        assign_due_at=row["assign_due_at"],
        sla_due_at=row["sla_due_at"],
        urgency=row["urgency"],
        provider_id=row["provider_id"],
        device_id=row["device_id"],
        source=Source(row["source"]),
        eta_minutes=row["eta_minutes"],
        assigned_at=row["assigned_at"],
        assign_warn_at=row.get("assign_warn_at"),
        location=Location(row["lat"], row["lon"]) if row.get("lat") is not None else None,
        district=row.get("district"),
        handed_back=row.get("handed_back") or 0,
        plan_visit_key=row.get("plan_visit_key"),
        window_start=row.get("window_start"),
        window_end=row.get("window_end"),
        planned_start=row.get("planned_start"),
        planned_minutes=row.get("planned_minutes"),
        route_seq=row.get("route_seq"),
    )


def insert(
    conn: psycopg.Connection,
    request: ServiceRequest,
    entry: TimelineEntry,
    *,
    source_key: str | None = None,
    note: str | None = None,
    pressed_at: datetime | None = None,
) -> bool:
    """Insert a new request with its first timeline entry; False when its source key, or an
    active request of the same resident and service, already exists."""
    row = conn.execute(
        "INSERT INTO dispatch.requests (id, resident_id, device_id, service, priority, urgency, status,"
        " source, source_key, note, created_at, pressed_at, assign_due_at, sla_due_at, assign_warn_at,"
        " lat, lon, district, plan_visit_key, window_start, window_end, planned_start, planned_minutes, route_seq)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING id",
        (request.id, request.resident_id, request.device_id, request.service.value, request.priority,
         request.urgency, request.status.value, request.source.value, source_key, note,
         request.created_at, pressed_at, request.assign_due_at, request.sla_due_at, request.assign_warn_at,
         request.location.lat if request.location else None, request.location.lon if request.location else None,
         request.district, request.plan_visit_key, request.window_start, request.window_end,
         request.planned_start, request.planned_minutes, request.route_seq),
    ).fetchone()
    if row is None:
        return False
    timeline.append(conn, request.id, entry)
    return True


def _one(conn: psycopg.Connection, where: str, params: tuple, lock: bool) -> ServiceRequest | None:
    # NO KEY UPDATE (here and in every claim below): it serialises our changes of a request as FOR
    # UPDATE would, but lets through the foreign-key checks of rows that only point at it (a
    # timeline entry, an offer), which FOR UPDATE made wait for the holder's commit.
    query = f"SELECT * FROM dispatch.requests WHERE {where}" + (" FOR NO KEY UPDATE" if lock else "")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, params).fetchone()
    return from_row(row) if row else None


def load(conn: psycopg.Connection, request_id: str, *, lock: bool = False) -> ServiceRequest:
    """One request (row-locked when `lock`), or NotFound."""
    request = _one(conn, "id = %s", (request_id,), lock)
    if request is None:
        raise NotFound(f"request {request_id} not found")
    return request


def find_active(
    conn: psycopg.Connection, resident_id: str, service: str, *, lock: bool = True
) -> ServiceRequest | None:
    """The open request of a resident for a service, if any."""
    return _one(conn, "resident_id = %s AND service = %s AND status = ANY(%s)", (resident_id, service, _ACTIVE), lock)


def find_by_source_key(conn: psycopg.Connection, source_key: str) -> ServiceRequest | None:
    """The request an intake message already created, if any."""
    return _one(conn, "source_key = %s", (source_key,), False)


def save(conn: psycopg.Connection, change: Change) -> ServiceRequest:
    """Write a change if the request is still in the state it was read in, else Conflict."""
    r = change.request
    sets = [
        sql.SQL("status = %(status)s, provider_id = %(provider_id)s, urgency = %(urgency)s,"
                " eta_minutes = %(eta)s, assigned_at = %(assigned_at)s, assign_due_at = %(assign_due_at)s,"
                " assign_warn_at = %(assign_warn_at)s, handed_back = %(handed_back)s,"
                " retry_at = CASE WHEN %(status)s::text = 'open' THEN retry_at END, updated_at = now()")
    ]
    stamp = change.stamp
    if stamp and stamp != "assigned_at":
        assert stamp in _STAMP_COLUMNS
        sets.append(sql.SQL("{} = %(at)s").format(sql.Identifier(stamp)))
    query = sql.SQL("UPDATE dispatch.requests SET {} WHERE id = %(id)s AND status = %(expected)s").format(
        sql.SQL(", ").join(sets)
    )
    cur = conn.execute(query, {
        "status": r.status.value, "provider_id": r.provider_id, "urgency": r.urgency, "eta": r.eta_minutes,
        "assigned_at": r.assigned_at, "at": change.entry.at, "id": r.id, "expected": change.from_status.value,
        "assign_due_at": r.assign_due_at, "assign_warn_at": r.assign_warn_at, "handed_back": r.handed_back,
    })
    if cur.rowcount != 1:
        raise Conflict(f"request {r.id} changed meanwhile; it is no longer {change.from_status.value}")
    timeline.append(conn, r.id, change.entry)
    return r


def mark_stuck(conn: psycopg.Connection, request_id: str, run: PressRun) -> None:
    """Mark a request as joined by a stuck button's presses: the run's figures, as they grow."""
    conn.execute(
        "UPDATE dispatch.requests SET stuck_presses = %s, stuck_from = %s, stuck_to = %s WHERE id = %s",
        (run.presses, run.started, run.last, request_id),
    )


def set_acknowledged(conn: psycopg.Connection, request_id: str, at: datetime) -> None:
    """Stamp the first acknowledgement to the resident."""
    conn.execute(
        "UPDATE dispatch.requests SET acknowledged_at = coalesce(acknowledged_at, %s) WHERE id = %s",
        (at, request_id),
    )


def set_ack_shown(conn: psycopg.Connection, request_id: str, at: datetime) -> None:
    """Stamp when the button confirmed it showed the acknowledgement."""
    conn.execute(
        "UPDATE dispatch.requests SET ack_shown_at = coalesce(ack_shown_at, %s) WHERE id = %s", (at, request_id)
    )


def retry_of(conn: psycopg.Connection, request_id: str) -> datetime | None:
    """When a queued request is due for another try (None: not queued)."""
    row = conn.execute("SELECT retry_at FROM dispatch.requests WHERE id = %s", (request_id,)).fetchone()
    if row is None:
        return None
    return row["retry_at"] if isinstance(row, dict) else row[0]


def set_retry(conn: psycopg.Connection, request_id: str, at: datetime | None) -> None:
    """When a queued request is expected to be tried again (the timer walks the whole queue, most
    urgent first, every requeue interval; this records when, and that it is queued)."""
    conn.execute("UPDATE dispatch.requests SET retry_at = %s WHERE id = %s", (at, request_id))


def flag_at_risk(conn: psycopg.Connection, request_id: str, at: datetime) -> bool:
    """Mark a request as at risk of missing its targets, once (rung 1 of the ladder)."""
    cur = conn.execute(
        "UPDATE dispatch.requests SET sla_at_risk_at = %s WHERE id = %s AND sla_at_risk_at IS NULL",
        (at, request_id),
    )
    return cur.rowcount == 1


def flag_late(conn: psycopg.Connection, request_id: str, at: datetime) -> bool:
    """Mark an assigned request as arriving late, once; it counts as at risk from then on."""
    cur = conn.execute(
        "UPDATE dispatch.requests SET late_flagged_at = %s, sla_at_risk_at = coalesce(sla_at_risk_at, %s)"
        " WHERE id = %s AND late_flagged_at IS NULL",
        (at, at, request_id),
    )
    return cur.rowcount == 1


def overdue_waiting(conn: psycopg.Connection, now: datetime, limit: int = 50) -> list[str]:
    """Ids of waiting requests past their assignment target, locked; others' locks are skipped."""
    rows = conn.execute(
        "SELECT id FROM dispatch.requests WHERE status IN ('open', 'offered') AND assign_due_at <= %s"
        " ORDER BY assign_due_at LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()
    return [_first(r) for r in rows]


def warn_due(conn: psycopg.Connection, now: datetime, limit: int = 50) -> list[str]:
    """Ids of waiting requests whose assignment target is near and not yet flagged, locked."""
    rows = conn.execute(
        "SELECT id FROM dispatch.requests WHERE status IN ('open', 'offered') AND sla_at_risk_at IS NULL"
        " AND assign_warn_at <= %s ORDER BY assign_warn_at LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()
    return [_first(r) for r in rows]


def queued(
    conn: psycopg.Connection, limit: int = 50, skip: Iterable[str] = (), kinds_to_skip: Iterable[tuple[str, int]] = (),
) -> list[str]:
    """Ids of queued requests (open, or escalated with no offer out: matching goes on for them),
    most urgent first (priority, urgency, age), locked; those another replica holds, those in
    `skip` and those of a (service, priority) in `kinds_to_skip` are skipped."""
    kinds = list(kinds_to_skip)
    rows = conn.execute(
        "SELECT id FROM dispatch.requests WHERE (status = 'open' OR (status = 'escalated' AND NOT EXISTS ("
        "   SELECT 1 FROM dispatch.offers o WHERE o.request_id = requests.id AND o.status = 'pending')))"
        " AND id <> ALL(%s)"
        " AND NOT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::int[]) AS k(service, priority)"
        "   WHERE k.service = requests.service AND k.priority = requests.priority)"
        " ORDER BY priority, urgency DESC, created_at, id LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
        (list(skip), [k[0] for k in kinds], [k[1] for k in kinds], limit),
    ).fetchall()
    return [_first(r) for r in rows]


def fresh(conn: psycopg.Connection, limit: int = 50) -> list[str]:
    """Ids of open requests never tried yet (no retry planned: not queued), most urgent first,
    locked; those another replica holds are skipped."""
    rows = conn.execute(
        "SELECT id FROM dispatch.requests WHERE status = 'open' AND retry_at IS NULL"
        " ORDER BY priority, urgency DESC, created_at, id LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
        (limit,),
    ).fetchall()
    return [_first(r) for r in rows]


def maybe_late(conn: psycopg.Connection, now: datetime, limit: int = 50) -> list[str]:
    """Ids of assigned requests not yet flagged that miss, or will miss, their arrival target."""
    rows = conn.execute(
        "SELECT id FROM dispatch.requests WHERE status IN ('assigned', 'en_route') AND late_flagged_at IS NULL"
        " AND (sla_due_at <= %s OR assigned_at + make_interval(mins => coalesce(eta_minutes, 0)) > sla_due_at)"
        " ORDER BY sla_due_at LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()
    return [_first(r) for r in rows]


def reannounce_due(
    conn: psycopg.Connection, now: datetime, every: timedelta, services: list[str], limit: int = 50,
) -> list[str]:
    """Ids of escalated requests of these services that nobody has taken and that were not
    announced for `every`, most overdue first, locked."""
    rows = conn.execute(
        "SELECT id FROM dispatch.requests WHERE status IN ('open', 'offered', 'escalated')"
        " AND escalated_at IS NOT NULL AND service = ANY(%s) AND coalesce(reannounced_at, escalated_at) <= %s"
        " ORDER BY coalesce(reannounced_at, escalated_at) LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
        (services, now - every, limit),
    ).fetchall()
    return [_first(r) for r in rows]


def mark_reannounced(conn: psycopg.Connection, request_id: str, at: datetime) -> int:
    """Record one more announcement; how many there have been."""
    row = conn.execute(
        "UPDATE dispatch.requests SET reannounced = reannounced + 1, reannounced_at = %s, updated_at = now()"
        " WHERE id = %s RETURNING reannounced",
        (at, request_id),
    ).fetchone()
    return int(_first(row)) if row else 0


def _first(row):
    return row["id"] if isinstance(row, dict) else row[0]
