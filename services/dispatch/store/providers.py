"""Providers (caregivers or teams) and their current load."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from homecare.errors import NotFound

from ..domain.matching import Candidate, Location

# Requests with a provider: held work, and its route's planned visits not yet started.
_BUSY = "('assigned', 'en_route', 'arrived')"
# Requests that hold a provider's capacity: a planned visit not yet started is its route, not work
# in hand (matching sees it as `Candidate.route`); it holds capacity once the provider sets off.
_ROUTE_AHEAD = timedelta(hours=24)  # how far ahead a provider's planned route counts for matching
_HOLDS = "(status IN ('en_route', 'arrived') OR (status = 'assigned' AND source <> 'plan'))"


def insert(
    conn: psycopg.Connection, provider_id: str, name: str, services: list[str], location: Location,
    capacity: int, on_shift: bool = True,
) -> dict:
    """Register a provider; returns its row. Registered on shift counts as a sign of life."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "INSERT INTO dispatch.providers (id, name, services, lat, lon, capacity, on_shift, last_seen_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END) RETURNING *",
            (provider_id, name, services, location.lat, location.lon, capacity, on_shift, on_shift),
        ).fetchone()


def get(conn: psycopg.Connection, provider_id: str, *, lock: bool = False) -> dict:
    """One provider (row-locked when `lock`, which serialises capacity checks), or NotFound."""
    query = "SELECT * FROM dispatch.providers WHERE id = %s" + (" FOR NO KEY UPDATE" if lock else "")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, (provider_id,)).fetchone()
    if row is None:
        raise NotFound(f"provider {provider_id} not found")
    return row


def list_all(conn: psycopg.Connection) -> list[dict]:
    """Every provider with its number of active requests, by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT p.*, (SELECT count(*) FROM dispatch.requests r WHERE r.provider_id = p.id"
            f" AND {_HOLDS}) AS active FROM dispatch.providers p ORDER BY p.name, p.id"
        ).fetchall()


def roster(conn: psycopg.Connection) -> list[dict]:
    """Every provider's row, by id."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM dispatch.providers ORDER BY id").fetchall()


def set_on_shift(conn: psycopg.Connection, provider_id: str, on_shift: bool, at: datetime | None = None) -> dict:
    """Start or end a provider's shift. Going on shift (from off) is a sign of life at `at` (None:
    the database's clock): nobody is unreachable the moment their shift begins."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE dispatch.providers SET on_shift = %(on)s, last_seen_at = CASE WHEN %(on)s AND NOT on_shift"
            " THEN greatest(last_seen_at, coalesce(%(at)s, now())) ELSE last_seen_at END WHERE id = %(id)s RETURNING *",
            {"on": on_shift, "at": at, "id": provider_id},
        ).fetchone()
    if row is None:
        raise NotFound(f"provider {provider_id} not found")
    return row


def seen(conn: psycopg.Connection, provider_id: str, at: datetime) -> dict:
    """A sign of life from the provider's app (a heartbeat, an answer, a step) at `at`; a late
    one never moves it back."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE dispatch.providers SET last_seen_at = greatest(last_seen_at, %s) WHERE id = %s RETURNING *",
            (at, provider_id),
        ).fetchone()
    if row is None:
        raise NotFound(f"provider {provider_id} not found")
    return row


def candidates(
    conn: psycopg.Connection, service: str, resident_id: str, recent_since: datetime
) -> list[Candidate]:
    """On-shift providers of a service with load and history, without workload timing (kept for
    callers written against phase 1; matching uses `states` through usecases.pool)."""
    return [
        Candidate(
            provider_id=s.row["id"], name=s.row["name"], services=frozenset(s.row["services"]),
            location=Location(s.row["lat"], s.row["lon"]), capacity=s.row["capacity"], on_shift=s.row["on_shift"],
            active=sum(j.held and not j.on_route for j in s.jobs), pending_offers=s.pending_offers,
            visits_with_resident=s.visits_with_resident,
            recent_assignments=s.recent_assignments,
        )
        for s in states(conn, service, resident_id, recent_since, datetime.now(UTC))
    ]


def set_skills(conn: psycopg.Connection, provider_id: str, skills: list[str]) -> dict:
    """What the provider can do beyond its services (care plans ask for skills)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE dispatch.providers SET skills = %s WHERE id = %s RETURNING *", (sorted(set(skills)), provider_id),
        ).fetchone()
    if row is None:
        raise NotFound(f"provider {provider_id} not found")
    return row


def try_lock(conn: psycopg.Connection, provider_id: str, wait_ms: int = 150) -> bool:
    """Lock a provider row for this transaction, waiting at most `wait_ms` for another transaction
    to let go; False when it did not (the caller picks someone else). The short wait also breaks a
    lock cycle between two matchers at once, where waiting for ever would deadlock."""
    row = conn.execute(  # the common case, free: one round trip
        "SELECT id FROM dispatch.providers WHERE id = %s FOR NO KEY UPDATE SKIP LOCKED", (provider_id,)
    ).fetchone()
    if row is not None:
        return True
    try:
        with conn.transaction():  # a savepoint: a lock time-out leaves the caller's transaction usable
            previous = conn.execute("SELECT current_setting('lock_timeout')").fetchone()
            previous = previous["current_setting"] if isinstance(previous, dict) else previous[0]
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{wait_ms}ms",))
            conn.execute("SELECT id FROM dispatch.providers WHERE id = %s FOR NO KEY UPDATE", (provider_id,))
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (previous,))
        return True
    except psycopg.errors.LockNotAvailable:
        return False


def load_counts(conn: psycopg.Connection, provider_id: str) -> tuple[int, int]:
    """(requests held, pending offers) of a provider, as committed now."""
    row = conn.execute(
        f"SELECT (SELECT count(*) FROM dispatch.requests WHERE provider_id = %s AND {_HOLDS}) AS a,"
        " (SELECT count(*) FROM dispatch.offers WHERE provider_id = %s AND status = 'pending') AS p",
        (provider_id, provider_id),
    ).fetchone()
    return (row["a"], row["p"]) if isinstance(row, dict) else (row[0], row[1])


def active_count(conn: psycopg.Connection, provider_id: str) -> int:
    """Requests the provider holds now (read after locking its row, so it is current)."""
    row = conn.execute(
        f"SELECT count(*) AS n FROM dispatch.requests WHERE provider_id = %s AND {_HOLDS}",
        (provider_id,),
    ).fetchone()
    return row["n"] if isinstance(row, dict) else row[0]


def set_location(conn: psycopg.Connection, provider_id: str, location: Location, at: datetime) -> dict:
    """Where the provider is now (its app, or a simulated one, reports it as it moves)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE dispatch.providers SET lat = %s, lon = %s, location_at = %s WHERE id = %s RETURNING *",
            (location.lat, location.lon, at, provider_id),
        ).fetchone()
    if row is None:
        raise NotFound(f"provider {provider_id} not found")
    return row


@dataclass(frozen=True)
class ProviderState:
    """A provider with what matching needs: its jobs, pending offers, history, shift end."""

    row: dict
    jobs: list[ActiveJobRow]
    pending_offers: int
    visits_with_resident: int
    recent_assignments: int
    shift_ends_at: datetime | None


@dataclass(frozen=True)
class ActiveJobRow:
    request_id: str
    status: str
    service: str
    priority: int
    lat: float | None
    lon: float | None
    assigned_at: datetime | None
    eta_minutes: int | None
    arrived_at: datetime | None
    held: bool = True  # False: a pending offer to the provider, not (yet) its job
    # A planned visit on the provider's route not yet started (no capacity held): its window
    # (UTC), planned length and who it is for; matching sees it as `Candidate.route`.
    on_route: bool = False
    window_start: datetime | None = None
    window_end: datetime | None = None
    planned_minutes: int | None = None
    resident_id: str | None = None
    planned_start: datetime | None = None


def states(
    conn: psycopg.Connection, service: str | None, resident_id: str, recent_since: datetime, now: datetime,
    *, on_shift_only: bool = True, provider_ids: list[str] | None = None,
) -> list[ProviderState]:
    """Providers (of a service, or all), with their jobs, pending offers, visits to the resident,
    recent assignments and the end of the shift they are in."""
    where = ["true"]
    params: list = [resident_id, recent_since, now, now]
    if service is not None:
        where.append("%s = ANY (p.services)")
        params.append(service)
    if on_shift_only:
        where.append("p.on_shift")
    if provider_ids is not None:
        where.append("p.id = ANY(%s)")
        params.append(list(provider_ids))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT p.*,"
            " (SELECT count(*) FROM dispatch.offers o WHERE o.provider_id = p.id AND o.status = 'pending')"
            "   AS pending_offers,"
            " (SELECT count(*) FROM dispatch.requests r WHERE r.provider_id = p.id AND r.resident_id = %s"
            "   AND r.status = 'completed') AS visits,"
            " (SELECT count(*) FROM dispatch.requests r WHERE r.provider_id = p.id AND r.assigned_at >= %s)"
            "   AS recent,"
            " (SELECT min(s.ends_at) FROM dispatch.shifts s WHERE s.provider_id = p.id AND s.starts_at <= %s"
            "   AND s.ends_at > %s) AS shift_ends_at"
            f" FROM dispatch.providers p WHERE {' AND '.join(where)} ORDER BY p.id",
            params,
        ).fetchall()
        ids = [r["id"] for r in rows]
        jobs = cur.execute(
            "SELECT id, provider_id, status, service, priority, lat, lon, assigned_at, eta_minutes, arrived_at,"
            " true AS held, (source = 'plan' AND status = 'assigned') AS on_route, window_start, window_end,"
            " planned_minutes, resident_id, planned_start"
            f" FROM dispatch.requests WHERE provider_id = ANY(%s) AND status IN {_BUSY}"
            " UNION ALL SELECT r.id, o.provider_id, 'assigned', r.service, r.priority, r.lat, r.lon, o.created_at,"
            " o.eta_minutes, NULL, false, false, NULL, NULL, NULL, NULL, NULL"
            " FROM dispatch.offers o JOIN dispatch.requests r ON r.id = o.request_id"
            " WHERE o.provider_id = ANY(%s) AND o.status = 'pending'"
            # Its route's visits planned and not yet released (released ones are requests above),
            # the next day's worth: the id is the visit's key until a request carries it.
            " UNION ALL SELECT v.key, v.provider_id, 'assigned', v.service, 5, v.lat, v.lon, NULL, NULL, NULL,"
            " true, true, v.earliest, v.latest, v.duration, v.resident_id, v.planned_start"
            " FROM dispatch.planned_visits v WHERE v.provider_id = ANY(%s) AND v.released_at IS NULL"
            " AND v.latest > %s AND v.earliest < %s ORDER BY 1",
            (ids, ids, ids, now, now + _ROUTE_AHEAD),
        ).fetchall() if ids else []
    by_provider: dict[str, list[ActiveJobRow]] = {i: [] for i in ids}
    for j in jobs:
        by_provider[j["provider_id"]].append(ActiveJobRow(
            j["id"], j["status"], j["service"], j["priority"], j["lat"], j["lon"], j["assigned_at"],
            j["eta_minutes"], j["arrived_at"], j["held"], j["on_route"], j["window_start"], j["window_end"],
            j["planned_minutes"], j["resident_id"], j["planned_start"],
        ))
    return [
        ProviderState(r, by_provider[r["id"]], r["pending_offers"], r["visits"], r["recent"], r["shift_ends_at"])
        for r in rows
    ]


def active_jobs(conn: psycopg.Connection, provider_id: str) -> list[ActiveJobRow]:
    """The requests a provider holds now (not its route's planned visits not yet started)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT id, status, service, priority, lat, lon, assigned_at, eta_minutes, arrived_at"
            f" FROM dispatch.requests WHERE provider_id = %s AND {_HOLDS} ORDER BY id",
            (provider_id,),
        ).fetchall()
    return [
        ActiveJobRow(r["id"], r["status"], r["service"], r["priority"], r["lat"], r["lon"], r["assigned_at"],
                     r["eta_minutes"], r["arrived_at"])
        for r in rows
    ]
