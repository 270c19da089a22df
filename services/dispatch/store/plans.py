"""Care plans, the planned visits of each day (routes), and the planning runs."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from homecare.errors import NotFound

from ..domain.plans import CarePlan, Pause, Recurrence, Repeat
from ..domain.routes import PlanRun, RouteStop, plan_fields

_STOP_COLUMNS = (
    "key, plan_id, day, resident_id, service, earliest, latest, duration, provider_id, seq, planned_arrival,"
    " planned_start, travel_minutes, request_id, released_at, unplanned_reason, district, lat, lon"
)
_ORDER = " ORDER BY provider_id NULLS LAST, seq, earliest, key"


def plan_of(row: dict) -> CarePlan:
    """The domain view of a `dispatch.care_plans` row."""
    return CarePlan(
        id=row["id"], resident_id=row["resident_id"], service=row["service"],
        recurrence=Recurrence(
            repeat=Repeat(row["repeat"]), starts_on=row["starts_on"], ends_on=row["ends_on"],
            weekdays=frozenset(row["weekdays"] or ()), every_weeks=row["every_weeks"],
        ),
        window_start=row["window_start"], window_end=row["window_end"], duration_minutes=row["duration_minutes"],
        skills=frozenset(row["skills"] or ()), preferred_provider_id=row["preferred_provider_id"], note=row["note"],
        active=row["active"], pauses=tuple(
            Pause(id=p["id"], from_day=date.fromisoformat(p["from_day"]), to_day=date.fromisoformat(p["to_day"]),
                  reason=p["reason"], actor=p["actor"]) for p in row.get("pauses") or ()),
    )


def _plan_params(plan: CarePlan) -> dict:
    pauses = [{"id": p.id, "from_day": p.from_day.isoformat(), "to_day": p.to_day.isoformat(), "reason": p.reason,
               "actor": p.actor} for p in plan.pauses]
    return {"id": plan.id, "resident_id": plan.resident_id, **plan_fields(plan), "active": plan.active,
            "pauses": Jsonb(pauses)}


def add(conn: psycopg.Connection, plan: CarePlan) -> None:
    """Store a new care plan."""
    conn.execute(
        "INSERT INTO dispatch.care_plans (id, resident_id, service, repeat, starts_on, ends_on, weekdays,"
        " every_weeks, window_start, window_end, duration_minutes, skills, preferred_provider_id, note, active,"
        " pauses)"
        " VALUES (%(id)s, %(resident_id)s, %(service)s, %(repeat)s, %(starts_on)s, %(ends_on)s, %(weekdays)s,"
        " %(every_weeks)s, %(window_start)s, %(window_end)s, %(duration_minutes)s, %(skills)s,"
        " %(preferred_provider_id)s, %(note)s, %(active)s, %(pauses)s)",
        _plan_params(plan),
    )


def update(conn: psycopg.Connection, plan: CarePlan) -> None:
    """Write a changed care plan (NotFound when it is not there); ending it stamps `ended_at`."""
    cur = conn.execute(
        "UPDATE dispatch.care_plans SET service = %(service)s, repeat = %(repeat)s, starts_on = %(starts_on)s,"
        " ends_on = %(ends_on)s, weekdays = %(weekdays)s, every_weeks = %(every_weeks)s,"
        " window_start = %(window_start)s, window_end = %(window_end)s, duration_minutes = %(duration_minutes)s,"
        " skills = %(skills)s, preferred_provider_id = %(preferred_provider_id)s, note = %(note)s, active = %(active)s,"
        " pauses = %(pauses)s, updated_at = now(),"
        " ended_at = CASE WHEN %(active)s THEN NULL ELSE coalesce(ended_at, now()) END"
        " WHERE id = %(id)s",
        _plan_params(plan),
    )
    if cur.rowcount != 1:
        raise NotFound(f"care plan {plan.id} not found")


def get(conn: psycopg.Connection, plan_id: str, *, lock: bool = False) -> CarePlan:
    """One care plan, or NotFound."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT * FROM dispatch.care_plans WHERE id = %s" + (" FOR NO KEY UPDATE" if lock else ""), (plan_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"care plan {plan_id} not found")
    return plan_of(row)


def of_resident(conn: psycopg.Connection, resident_id: str) -> list[CarePlan]:
    """A resident's care plans, active first, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM dispatch.care_plans WHERE resident_id = %s ORDER BY active DESC, created_at, id",
            (resident_id,),
        ).fetchall()
    return [plan_of(r) for r in rows]


def on_day(conn: psycopg.Connection, day: date) -> list[CarePlan]:
    """The active plans whose dates include `day` (their recurrence decides whether it occurs)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT * FROM dispatch.care_plans WHERE active AND starts_on <= %s AND (ends_on IS NULL OR ends_on >= %s)"
            " AND (repeat <> 'once' OR starts_on = %s) ORDER BY id",
            (day, day, day),
        ).fetchall()
    return [plan_of(r) for r in rows]


def lock_day(conn: psycopg.Connection, day: date) -> None:
    """Writing a day's routes: one planning run at a time, and no release meanwhile (`share_day`)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('dispatch.plan:' || %s::text))", (day,))


def share_day(conn: psycopg.Connection, day: date) -> bool:
    """Releasing a visit of the day: many at once, none while a planning run writes the day's
    routes (False, at once: the release waits for the next tick instead of holding up the timer)."""
    row = conn.execute("SELECT pg_try_advisory_xact_lock_shared(hashtext('dispatch.plan:' || %s::text))",
                       (day,)).fetchone()
    return bool(row["pg_try_advisory_xact_lock_shared"] if isinstance(row, dict) else row[0])


def stop_of(row: dict) -> RouteStop:
    return RouteStop(**row)


def stops(conn: psycopg.Connection, day: date, provider_id: str | None = None) -> list[RouteStop]:
    """The planned visits of a day (of one provider), routed ones by provider and place, then unplanned."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_STOP_COLUMNS} FROM dispatch.planned_visits WHERE day = %s"
            " AND (%s::text IS NULL OR provider_id = %s)" + _ORDER,
            (day, provider_id, provider_id),
        ).fetchall()
    return [stop_of(r) for r in rows]


def replace_day(conn: psycopg.Connection, day: date, new: list[RouteStop]) -> None:
    """The day's routes become `new`; visits already released stay as they are (a new stop with
    a released visit's key is left out)."""
    conn.execute("DELETE FROM dispatch.planned_visits WHERE day = %s AND released_at IS NULL", (day,))
    if not new:
        return
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO dispatch.planned_visits ({_STOP_COLUMNS}) VALUES ({', '.join(['%s'] * 19)})"
            " ON CONFLICT (key) DO NOTHING",
            [(s.key, s.plan_id, s.day, s.resident_id, s.service, s.earliest, s.latest, s.duration, s.provider_id,
              s.seq, s.planned_arrival, s.planned_start, s.travel_minutes, s.request_id, s.released_at,
              s.unplanned_reason, s.district, s.lat, s.lon) for s in new],
        )


def unroute(conn: psycopg.Connection, plan_id: str, from_day: date, reason: str, to_day: date | None = None) -> int:
    """Take a plan's visits not yet released off their routes from `from_day` on (to `to_day`,
    included), saying why (the plan changed, ended or paused); how many."""
    cur = conn.execute(
        "UPDATE dispatch.planned_visits SET provider_id = NULL, seq = NULL, planned_arrival = NULL,"
        " planned_start = NULL, travel_minutes = NULL, unplanned_reason = %s"
        " WHERE plan_id = %s AND day >= %s AND (%s::date IS NULL OR day <= %s) AND released_at IS NULL",
        (reason, plan_id, from_day, to_day, to_day),
    )
    return cur.rowcount


def of_plan(conn: psycopg.Connection, plan_id: str, from_day: date, to_day: date) -> list[RouteStop]:
    """A plan's planned visits from `from_day` to `to_day` (included), by day."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_STOP_COLUMNS} FROM dispatch.planned_visits WHERE plan_id = %s AND day BETWEEN %s AND %s"
            " ORDER BY day", (plan_id, from_day, to_day),
        ).fetchall()
    return [stop_of(r) for r in rows]


def to_release(conn: psycopg.Connection, now: datetime, lead: timedelta, limit: int = 50) -> list[RouteStop]:
    """Routed visits due for release (their window opens within `lead`), earliest first, locked;
    others' locks are skipped."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_STOP_COLUMNS} FROM dispatch.planned_visits WHERE released_at IS NULL"
            " AND provider_id IS NOT NULL AND earliest <= %s ORDER BY earliest, key LIMIT %s FOR UPDATE SKIP LOCKED",
            (now + lead, limit),
        ).fetchall()
    return [stop_of(r) for r in rows]


def mark_released(
    conn: psycopg.Connection, key: str, request_id: str | None, at: datetime, reason: str | None = None,
) -> None:
    """A visit was released: the request carrying it (None: none, with the reason)."""
    conn.execute(
        "UPDATE dispatch.planned_visits SET released_at = %s, request_id = %s,"
        " unplanned_reason = coalesce(%s, unplanned_reason) WHERE key = %s",
        (at, request_id, reason, key),
    )


def missed_due(conn: psycopg.Connection, now: datetime, limit: int = 50) -> list[str]:
    """Ids of planned requests whose window is over with the provider not set off, locked."""
    rows = conn.execute(
        "SELECT id FROM dispatch.requests WHERE source = 'plan' AND status = 'assigned' AND window_end <= %s"
        " AND plan_missed_at IS NULL ORDER BY window_end LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
        (now, limit),
    ).fetchall()
    return [r["id"] if isinstance(r, dict) else r[0] for r in rows]


def mark_missed(conn: psycopg.Connection, request_id: str, at: datetime) -> None:
    conn.execute("UPDATE dispatch.requests SET plan_missed_at = %s WHERE id = %s", (at, request_id))


def add_run(conn: psycopg.Connection, run: PlanRun) -> None:
    """Record a planning run."""
    conn.execute(
        "INSERT INTO dispatch.plan_runs (id, day, ran_at, actor, solver, visits, planned, unplanned, kept, workers,"
        " travel_minutes, bound_minutes, seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (run.id, run.day, run.ran_at, run.actor, run.solver, run.visits, run.planned, run.unplanned, run.kept,
         run.workers, run.travel_minutes, run.bound_minutes, run.seconds),
    )


def runs(conn: psycopg.Connection, day: date, limit: int = 20) -> list[PlanRun]:
    """The planning runs of a day, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT id, day, ran_at, actor, solver, visits, planned, unplanned, kept, workers, travel_minutes,"
            " bound_minutes, seconds FROM dispatch.plan_runs WHERE day = %s ORDER BY ran_at DESC, id DESC LIMIT %s",
            (day, limit),
        ).fetchall()
    return [PlanRun(**r) for r in rows]
