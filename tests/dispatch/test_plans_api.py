"""Care plans and day planning over HTTP on PostgreSQL: plans edited by dispatchers, a day planned
with the real day planner, every route and a provider's own route read, planned visits released
by the timer as requests that run the usual lifecycle through the API, a missed one escalated;
and hostile input refused with 422 and the reason. The clock of the API's context is moved, not
waited for; each test plans a day of its own, years ahead, so no other test's plans meet it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from homecare.auth import Role
from services.dispatch.api import build_router
from services.dispatch.store.transactions import PostgresTransactions
from services.dispatch.usecases.context import Dispatch
from services.dispatch.workers.timers import TimerLoop

from .harness import api_client, get_request, kinds, new_provider, new_resident, token_for

SHANGHAI = timedelta(hours=8)


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """A Shanghai time of `day`, in UTC."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - SHANGHAI


@pytest.fixture
def world(pool, clean, request):
    """A day of this test's own (by its name), the clock at 18:00 the evening before, the API on
    a context with that clock and a short time limit for the planner."""
    day = date(2030, 1, 1) + timedelta(days=sum(map(ord, request.node.name)) % 3000)
    clock = Clock(local(day, 18) - timedelta(days=1))
    ctx = Dispatch(clock=clock, plan_time_limit_s=1.0, plan_evening_hour=None)
    return {"day": day, "clock": clock, "ctx": ctx, "client": api_client(pool, build_router(ctx)),
            "dispatcher": token_for(pool, Role.CITY), "admin": token_for(pool, Role.ADMIN)}


def lunch(day: date, **kw) -> dict:
    return {"service": "meal", "repeat": "once", "starts_on": day.isoformat(), "window_start": "11:30",
            "window_end": "12:30", "duration_minutes": 20, **kw}


def shift(world, provider_id: str) -> None:
    day = world["day"]
    r = world["client"].post(f"/api/v1/providers/{provider_id}/shifts", headers=world["admin"], json={
        "starts_at": local(day, 8).isoformat(), "ends_at": local(day, 16).isoformat()})
    assert r.status_code == 201, r.text


def carer_with_a_lunch(pool, world) -> tuple[dict, str]:
    """A provider with a shift on the test's day, and a resident with a lunch planned that day."""
    carer = new_provider(pool, km=1)
    shift(world, carer["id"])
    rid = new_resident(pool)
    assert world["client"].post(f"/api/v1/residents/{rid}/care-plans", headers=world["dispatcher"],
                                json=lunch(world["day"])).status_code == 201
    return carer, rid


def test_plans_are_edited_a_day_is_planned_and_its_routes_read(pool, world):
    client, day, dispatcher = world["client"], world["day"], world["dispatcher"]
    carer = new_provider(pool, km=1)
    other = new_provider(pool, km=2)
    shift(world, carer["id"])
    r = client.put(f"/api/v1/providers/{carer['id']}/skills", headers=world["admin"], json={"skills": ["halal"]})
    assert r.status_code == 200 and r.json()["skills"] == ["halal"], r.text
    residents = [new_resident(pool) for _ in range(3)]
    created = []
    for i, rid in enumerate(residents):
        body = lunch(day, window_start=f"1{1 + i}:00", window_end=f"1{1 + i}:45", skills=["halal"] if i else [],
                     preferred_provider_id=carer["id"], note="soft food")
        r = client.post(f"/api/v1/residents/{rid}/care-plans", headers=dispatcher, json=body)
        assert r.status_code == 201, r.text
        created.append(r.json())
    assert created[1]["skills"] == ["halal"] and created[0]["active"] is True
    assert created[0]["window_start"] == "11:00:00"
    listed = client.get(f"/api/v1/residents/{residents[0]}/care-plans", headers=dispatcher).json()
    assert [p["id"] for p in listed] == [created[0]["id"]]
    r = client.patch(f"/api/v1/care-plans/{created[2]['id']}", headers=dispatcher, json={"duration_minutes": 30})
    assert r.status_code == 200 and r.json()["duration_minutes"] == 30 and r.json()["note"] == "soft food"
    assert client.get(f"/api/v1/care-plans/{created[2]['id']}", headers=dispatcher).json()["duration_minutes"] == 30

    r = client.post(f"/api/v1/plans/{day.isoformat()}", headers=dispatcher)
    assert r.status_code == 201, r.text
    run = r.json()
    assert (run["visits"], run["planned"], run["unplanned"], run["workers"], run["solver"]) == (3, 3, 0, 1, "ortools")

    routes = client.get(f"/api/v1/plans/{day.isoformat()}/routes", headers=dispatcher).json()
    assert routes["run"]["id"] == run["id"] and routes["unplanned"] == []
    (route,) = routes["routes"]
    assert route["provider_id"] == carer["id"] and [s["seq"] for s in route["stops"]] == [0, 1, 2]
    assert [s["resident_id"] for s in route["stops"]] == residents  # by window
    first = route["stops"][0]
    assert first["window_start"] == local(day, 11).isoformat().replace("+00:00", "Z")
    assert first["resident_name"].startswith("Resident") and first["request_id"] is None and first["status"] is None

    own = client.get(f"/api/v1/providers/{carer['id']}/route", params={"day": day.isoformat()},
                     headers=token_for(pool, Role.PROVIDER, carer["id"]))
    assert own.status_code == 200 and [s["key"] for s in own.json()["stops"]] == [s["key"] for s in route["stops"]]
    assert client.get(f"/api/v1/providers/{carer['id']}/route", params={"day": day.isoformat()},
                      headers=token_for(pool, Role.PROVIDER, other["id"])).status_code == 403

    r = client.delete(f"/api/v1/care-plans/{created[0]['id']}", headers=dispatcher)
    assert r.status_code == 200 and r.json()["active"] is False
    routes = client.get(f"/api/v1/plans/{day.isoformat()}/routes", headers=dispatcher).json()
    assert [u["unplanned_reason"] for u in routes["unplanned"]] == ["its care plan was ended"]


def test_planned_visits_run_the_request_lifecycle_and_a_missed_one_is_escalated(pool, world):
    client, day, clock, ctx = world["client"], world["day"], world["clock"], world["ctx"]
    carer = new_provider(pool, km=1)
    shift(world, carer["id"])
    kept, missed = new_resident(pool), new_resident(pool)
    for rid, start in ((kept, "11:30"), (missed, "12:00")):
        body = lunch(day, window_start=start, window_end=f"{start[:2]}:59")
        assert client.post(f"/api/v1/residents/{rid}/care-plans", headers=world["dispatcher"],
                           json=body).status_code == 201
    assert client.post(f"/api/v1/plans/{day.isoformat()}", headers=world["dispatcher"]).status_code == 201
    timers = TimerLoop(PostgresTransactions(pool), ctx)
    app = token_for(pool, Role.PROVIDER, carer["id"])

    clock.at = local(day, 10, 0)  # the lead time (2 h) before both windows has come
    with pool.connection() as conn:
        conn.execute("UPDATE dispatch.providers SET last_seen_at = %s WHERE id = %s", (clock.at, carer["id"]))
    assert timers.tick(clock.at)["plans_released"] == 2
    stops = client.get(f"/api/v1/providers/{carer['id']}/route", params={"day": day.isoformat()},
                       headers=app).json()["stops"]
    assert [s["status"] for s in stops] == ["assigned", "assigned"]
    first = get_request(pool, stops[0]["request_id"])
    assert (first["source"], first["status"], first["provider_id"]) == ("plan", "assigned", carer["id"])
    assert first["window_end"] == local(day, 11, 59) and first["sla_due_at"] == local(day, 11, 59)
    assert first["route_seq"] == 0 and first["plan_visit_key"] == stops[0]["key"]
    r = client.get(f"/api/v1/requests/{first['id']}", headers=app)
    assert r.status_code == 200 and r.json()["window_start"] == local(day, 11, 30).isoformat().replace("+00:00", "Z")

    # a dispatcher gives the first visit to another provider: it moves to that provider's route
    other = new_provider(pool, km=2)
    with pool.connection() as conn:
        conn.execute("UPDATE dispatch.providers SET last_seen_at = %s WHERE id = %s", (clock.at, other["id"]))
    r = client.post(f"/api/v1/requests/{first['id']}/assign", headers=world["dispatcher"],
                    json={"provider_id": other["id"]})
    assert r.status_code == 200, r.text
    (moved,) = client.get(f"/api/v1/providers/{other['id']}/route", params={"day": day.isoformat()},
                          headers=world["dispatcher"]).json()["stops"]
    assert (moved["key"], moved["provider_id"], moved["planned_provider_id"]) == (
        stops[0]["key"], other["id"], carer["id"])
    assert [s["key"] for s in client.get(f"/api/v1/providers/{carer['id']}/route", params={"day": day.isoformat()},
                                         headers=app).json()["stops"]] == [stops[1]["key"]]
    r = client.post(f"/api/v1/requests/{first['id']}/assign", headers=world["dispatcher"],
                    json={"provider_id": carer["id"]})
    assert r.status_code == 200, r.text

    for step in ("en-route", "arrived", "complete"):  # the usual lifecycle, by the provider's app
        clock.at += timedelta(minutes=10)
        assert client.post(f"/api/v1/requests/{first['id']}/{step}", headers=app).status_code == 200
    assert get_request(pool, first["id"])["status"] == "completed"

    clock.at = local(day, 12, 59)  # the second window ends; its provider never set off
    fired = timers.tick(clock.at)
    assert fired["plans_missed"] == 1
    second = get_request(pool, stops[1]["request_id"])
    assert second["status"] == "escalated" and second["plan_missed_at"] is not None
    assert second["escalation_reason"] == (
        f"planned visit missed: window ended 12:59 and {carer['name']} had not set off")
    assert "handed_back" in kinds(second)
    with pool.connection() as conn:
        trigger = conn.execute("SELECT notice->>'trigger' AS t FROM dispatch.notifications WHERE subject_id = %s",
                               (second["id"],)).fetchone()["t"]
    assert trigger == "request.escalated"


@pytest.mark.parametrize(("change", "reason"), [
    ({"note": "bad\x00note"}, "NUL"),
    ({"note": "x" * 2001}, "at most 2000"),
    ({"weekdays": [7], "repeat": "weekdays"}, "less than or equal to 6"),
    ({"weekdays": ["Monday"], "repeat": "weekdays"}, "integer"),
    ({"repeat": "weekdays"}, "at least one weekday"),
    ({"repeat": "every_n_weeks", "weekdays": [1], "every_weeks": 0}, "greater than or equal to 1"),
    ({"window_start": "12:30", "window_end": "12:00"}, "window: must end at least 15 minutes after it starts"),
    ({"window_start": "11:30+08:00"}, "no offset"),
    ({"window_start": 41400}, "ISO 8601"),
    ({"starts_on": 20261201}, "ISO 8601"),
    ({"starts_on": "2026-02-30"}, "date"),
    ({"ends_on": "2000-01-01"}, "ends_on must not be before starts_on"),
    ({"duration_minutes": 0}, "greater than or equal to 1"),
    ({"duration_minutes": "20"}, "integer"),
    ({"service": "emergency"}, "'meal', 'bathing', 'escort' or 'mobility'"),
    ({"skills": ["s"] * 17}, "at most 16"),
    ({"skills": ["bad\nskill"]}, "control characters"),
    ({"preferred_provider_id": "p-nobody"}, "provider p-nobody not found"),
    ({"resident_id": "res-other"}, "Extra inputs"),
])
def test_hostile_care_plans_are_refused_with_the_reason(pool, world, change, reason):
    rid = new_resident(pool)
    r = world["client"].post(f"/api/v1/residents/{rid}/care-plans", headers=world["dispatcher"],
                             json={**lunch(world["day"], repeat="daily"), **change})
    assert r.status_code == 422, r.text
    assert reason in r.text


def test_hostile_changes_days_and_unknown_things_are_refused(pool, world):
    client, dispatcher = world["client"], world["dispatcher"]
    rid = new_resident(pool)
    plan = client.post(f"/api/v1/residents/{rid}/care-plans", headers=dispatcher,
                       json=lunch(world["day"], repeat="daily")).json()
    r = client.patch(f"/api/v1/care-plans/{plan['id']}", headers=dispatcher, json={"window_end": "11:35"})
    assert r.status_code == 422 and "window: must end at least 15 minutes" in r.text
    for field in ("window_start", "starts_on", "service", "repeat", "duration_minutes", "window_end"):
        r = client.patch(f"/api/v1/care-plans/{plan['id']}", headers=dispatcher, json={field: None})
        assert r.status_code == 422 and f"{field}: a care plan must have one" in r.text, r.text
    r = client.patch(f"/api/v1/care-plans/{plan['id']}", headers=dispatcher, json={"ends_on": None, "note": None})
    assert r.status_code == 200 and r.json()["ends_on"] is None
    r = client.patch(f"/api/v1/care-plans/{plan['id']}", headers=dispatcher, json={"active": False})
    assert r.status_code == 422 and "Extra inputs" in r.text
    assert client.post("/api/v1/residents/res-nobody/care-plans", headers=dispatcher,
                       json=lunch(world["day"])).status_code == 404
    assert client.get("/api/v1/care-plans/cp-nothing", headers=dispatcher).status_code == 404
    assert client.delete("/api/v1/care-plans/cp-nothing", headers=dispatcher).status_code == 404
    assert client.post("/api/v1/plans/2026-13-01", headers=dispatcher).status_code == 422
    r = client.post("/api/v1/plans/1999-01-01", headers=dispatcher)
    assert r.status_code == 422 and "must be today" in r.text
    r = client.get("/api/v1/providers/p-nobody/route", params={"day": "tomorrow"}, headers=dispatcher)
    assert r.status_code == 422
    r = client.put("/api/v1/providers/p-nobody/skills", headers=world["admin"], json={"skills": ["x\x00"]})
    assert r.status_code == 422 and "NUL" in r.text
    assert client.put("/api/v1/providers/p-nobody/skills", headers=world["admin"],
                      json={"skills": ["hoist"]}).status_code == 404


def test_the_consoles_interface_edits_plans_plans_a_day_and_reads_routes_by_district(pool, world):
    from services.dispatch import interface as dispatch

    ctx, day = world["ctx"], world["day"]
    carer = new_provider(pool, km=1)
    shift(world, carer["id"])
    rid = new_resident(pool)  # in Huangpu (the harness's district)
    with pool.connection() as conn:
        plan = dispatch.save_care_plan(conn, ctx, rid, {
            "service": "meal", "repeat": "once", "starts_on": day, "window_start": time(11, 0),
            "window_end": time(12, 0), "duration_minutes": 20}, "dispatcher:ann")
        assert plan["window_start"] == time(11, 0)  # times of day as given (the centre's)
        changed = dispatch.save_care_plan(conn, ctx, None, {"note": "ring twice"}, "dispatcher:ann", plan["id"])
        assert changed["note"] == "ring twice" and dispatch.care_plan(conn, plan["id"]) == changed
        assert dispatch.care_plans_of(conn, rid) == [changed]
        run = dispatch.plan_day_now(conn, ctx, day, "dispatcher:ann")
        assert run["planned"] == 1 and dispatch.plan_runs(conn, day)[0] == run
        (route,) = dispatch.routes_of_day(conn, day, frozenset({"Huangpu"}))["routes"]
        assert route["provider_id"] == carer["id"] and route["stops"][0]["plan_id"] == plan["id"]
        assert dispatch.routes_of_day(conn, day, frozenset({"Xuhui"}))["routes"] == []
        assert dispatch.route_of(conn, carer["id"], day)["stops"][0]["key"] == route["stops"][0]["key"]
        assert dispatch.end_care_plan(conn, ctx, plan["id"], "dispatcher:ann")["active"] is False
        assert dispatch.today_of_plans(ctx) == day - timedelta(days=1)


def test_a_planned_visit_still_on_the_way_when_its_window_ends_is_late_with_a_notice(pool, world):
    client, day, clock, ctx = world["client"], world["day"], world["clock"], world["ctx"]
    carer, rid = carer_with_a_lunch(pool, world)
    assert client.post(f"/api/v1/plans/{day.isoformat()}", headers=world["dispatcher"]).status_code == 201
    timers = TimerLoop(PostgresTransactions(pool), ctx)
    clock.at = local(day, 10, 0)
    assert timers.tick(clock.at)["plans_released"] == 1
    (stop,) = client.get(f"/api/v1/plans/{day.isoformat()}/routes", headers=world["dispatcher"]).json()["routes"][0][
        "stops"]
    clock.at = local(day, 12, 20)
    app = token_for(pool, Role.PROVIDER, carer["id"])
    assert client.post(f"/api/v1/requests/{stop['request_id']}/en-route", headers=app).status_code == 200
    clock.at = local(day, 12, 30)
    fired = timers.tick(clock.at)
    assert fired["late"] == 1 and fired["plans_missed"] == 0
    request = get_request(pool, stop["request_id"])
    assert request["status"] == "en_route" and request["sla_at_risk_at"] is not None
    (risk,) = [e for e in request["timeline"] if e["kind"] == "sla.at_risk"]
    assert risk["detail"]["reason"] == "planned visit late: window ended 12:30"
    with pool.connection() as conn:
        notice = conn.execute("SELECT notice FROM dispatch.notifications WHERE subject_id = %s",
                              (request["id"],)).fetchone()["notice"]
    assert notice["trigger"] == "request.late" and "window ended 12:30" in notice["text"]


def test_the_solver_holds_no_transaction_and_releases_wait_for_the_day_being_written(pool, world):
    """While the day is solved, the caller's connection is idle (no transaction, no lock): another
    run or a release can take the day meanwhile. While a run writes the day's routes (its lock),
    the timer does not release a visit of that day; it does at its next tick."""
    from services.dispatch.store import plans as plan_store
    from services.dispatch.store.transactions import ConnectionTransactions
    from services.dispatch.usecases import plans

    day, clock, ctx = world["day"], world["clock"], world["ctx"]
    carer, rid = carer_with_a_lunch(pool, world)
    seen = []

    def planner(*args, **kwargs):
        with pool.connection() as other:
            state = other.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()["state"]
            with other.transaction():
                plan_store.lock_day(other, day)  # would wait for ever if the run held the day
            seen.append(state)
        return plans.default_planner()(*args, **kwargs)

    with pool.connection() as conn:
        pid = conn.info.backend_pid
        conn.execute("SELECT 1")  # a route's sign-in check: its transaction is committed first
        run = plans.plan_day(ConnectionTransactions(conn), ctx, day, "dispatcher:test", planner)
    assert seen == ["idle"] and run.planned == 1

    timers = TimerLoop(PostgresTransactions(pool), ctx)
    clock.at = local(day, 9, 30)
    with pool.connection() as writing, writing.transaction():
        plan_store.lock_day(writing, day)  # a run writing the day's routes
        assert timers.tick(clock.at)["plans_released"] == 0
        (stop,) = [s for s in plan_store.stops(writing, day) if s.resident_id == rid]
        assert not stop.released
    assert timers.tick(clock.at)["plans_released"] == 1


def test_a_dispatcher_pauses_a_plan_for_a_hospital_stay_and_resumes_it(pool, world):
    """Over HTTP on PostgreSQL: the pause is kept with the plan, the day's planning leaves the
    visit unplanned with the reason, hostile or impossible pauses are refused with why, another
    district's dispatcher does not find the plan, and resuming puts the day back."""
    import uuid

    from homecare.auth import create_user, issue_token

    client, day, dispatcher = world["client"], world["day"], world["dispatcher"]
    carer, rid = carer_with_a_lunch(pool, world)
    (plan,) = client.get(f"/api/v1/residents/{rid}/care-plans", headers=dispatcher).json()
    body = {"from_day": day.isoformat(), "to_day": (day + timedelta(days=6)).isoformat(),
            "reason": "in Ruijin Hospital after a fall"}
    r = client.post(f"/api/v1/care-plans/{plan['id']}/pauses", headers=dispatcher, json=body)
    assert r.status_code == 201, r.text
    pause = r.json()
    assert pause["released_requests"] == [] and pause["reason"] == body["reason"]
    assert pause["actor"].startswith("dispatcher:") or pause["actor"].startswith("city:")
    shown = client.get(f"/api/v1/care-plans/{plan['id']}", headers=dispatcher).json()
    assert [p["id"] for p in shown["pauses"]] == [pause["id"]] and shown["pauses"][0]["to_day"] == body["to_day"]

    run = client.post(f"/api/v1/plans/{day.isoformat()}", headers=dispatcher).json()
    assert (run["visits"], run["planned"], run["unplanned"]) == (1, 0, 1)
    (unplanned,) = client.get(f"/api/v1/plans/{day.isoformat()}/routes", headers=dispatcher).json()["unplanned"]
    assert unplanned["unplanned_reason"] == (f"care plan paused {day.isoformat()} to {body['to_day']}:"
                                             " in Ruijin Hospital after a fall")

    refused = {
        "NUL in the reason": ({**body, "reason": "a\x00b"}, "reason"),
        "a line break": ({**body, "from_day": (day + timedelta(days=20)).isoformat(),
                          "to_day": (day + timedelta(days=20)).isoformat(), "reason": "a\nb"}, "reason"),
        "backwards": ({**body, "from_day": (day + timedelta(days=30)).isoformat(),
                       "to_day": (day + timedelta(days=29)).isoformat()}, "to_day"),
        "overlapping": ({**body, "to_day": (day + timedelta(days=1)).isoformat()}, "overlaps"),
        "too long": ({**body, "from_day": (day + timedelta(days=30)).isoformat(),
                      "to_day": (day + timedelta(days=500)).isoformat()}, "366 days"),
        "no reason": ({k: v for k, v in body.items() if k != "reason"}, "reason"),
        "not a date": ({**body, "from_day": "tomorrow"}, "from_day"),
    }
    for what, (hostile, why) in refused.items():
        r = client.post(f"/api/v1/care-plans/{plan['id']}/pauses", headers=dispatcher, json=hostile)
        assert r.status_code == 422 and why in r.text, (what, r.status_code, r.text)
    assert client.post("/api/v1/care-plans/cp-none/pauses", headers=dispatcher, json=body).status_code == 404

    with pool.connection() as conn:  # a dispatcher of another district: the plan is not there
        other = create_user(conn, f"d-{uuid.uuid4().hex[:8]}", "secret-password", Role.DISPATCHER,
                            districts=("Jing'an",))
        elsewhere = {"Authorization": f"Bearer {issue_token(conn, other)}"}
    assert client.post(f"/api/v1/care-plans/{plan['id']}/pauses", headers=elsewhere,
                       json={**body, "from_day": (day + timedelta(days=40)).isoformat(),
                             "to_day": (day + timedelta(days=40)).isoformat()}).status_code == 404
    assert client.delete(f"/api/v1/care-plans/{plan['id']}/pauses/{pause['id']}",
                         headers=elsewhere).status_code == 404

    r = client.delete(f"/api/v1/care-plans/{plan['id']}/pauses/{pause['id']}", headers=dispatcher)
    assert r.status_code == 200 and r.json()["pauses"] == []
    assert client.delete(f"/api/v1/care-plans/{plan['id']}/pauses/{pause['id']}",
                         headers=dispatcher).status_code == 404
    run = client.post(f"/api/v1/plans/{day.isoformat()}", headers=dispatcher).json()
    assert (run["planned"], run["unplanned"]) == (1, 0)
    with pool.connection() as conn:
        actions = [r["action"] for r in conn.execute(
            "SELECT action FROM auth.audit WHERE target = %s ORDER BY at, action", (f"care_plan:{plan['id']}",))]
    assert "care_plan.paused" in actions and "care_plan.resumed" in actions
