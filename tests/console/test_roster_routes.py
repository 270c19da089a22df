"""The day's routes on the roster: each provider's planned visits in order with planned times on
the map and listed, the visits nobody could take with the reason, a day chooser, and a
dispatcher's "plan this day now"."""

from __future__ import annotations

import re
from datetime import time

import pytest

from homecare.auth import Role, create_user

from .conftest import PASSWORD, csrf_in, make_user, sign_in
from .dispatching import new_provider, new_resident
from .planning import a_day_of_its_own, care_plan, desk_of, plan, shift


@pytest.fixture(autouse=True)
def quick_planner(monkeypatch):
    """The day planner's search stops after a second (its default is ten)."""
    monkeypatch.setenv("HOMECARE_DISPATCH_PLAN_TIME_LIMIT_S", "1")


@pytest.fixture
def desk(pool, client):
    """A dispatcher of the test residents' district, signed in."""
    return desk_of(pool, client)


@pytest.fixture
def bureau(pool, client):
    """The city bureau's dispatcher, signed in: a day is planned for every district at once."""
    assert sign_in(client, make_user(pool, Role.CITY)).status_code == 303
    return client


def test_a_dispatcher_plans_a_day_and_sees_each_route_in_order_on_the_map(pool, desk):
    day = a_day_of_its_own()
    pid, _ = new_provider(pool, ["meal", "mobility"], "Route Carer", location=(31.2, 121.5))
    shift(pool, pid, day)
    early, _ = new_resident(pool, "Early Bird")
    late, _ = new_resident(pool, "Late Luncher")
    lonely, _ = new_resident(pool, "Bath Only")
    care_plan(pool, early, day, "mobility", time(8, 30), time(9, 30), note="help getting up")
    care_plan(pool, late, day, "meal", time(11), time(13))
    care_plan(pool, lonely, day, "bathing", time(14), time(15))  # nobody bathes on this day

    page = desk.get(f"/providers?day={day.isoformat()}")
    assert page.status_code == 200 and "This day has not been planned yet" in page.text
    plan(pool, day)  # a day years ahead, of its own (the console's button plans up to a year ahead)

    html = desk.get(f"/providers?day={day.isoformat()}").text
    panel = html.split('id="routes"', 1)[1].split("</section>", 1)[0]
    assert f"Routes · {day.isoformat()}" in panel and "Planned at" in panel
    route = panel.split(f'data-route="{pid}"', 1)[1].split("</ol>", 1)[0]
    assert "Route Carer" in route
    assert route.index("Early Bird") < route.index("Late Luncher"), "in route order"
    assert re.search(r'class="t"[^>]*>0?8:\d\d<', route) and "window 08:30–09:30" in route
    assert "window 11:00–13:00" in route
    unplanned = panel.split("Not on any route", 1)[1]
    assert "Bath Only" in unplanned and "window 14:00–15:00" in unplanned
    svg = html.split('<svg class="schematic"', 1)[1].split("</svg>", 1)[0]
    drawn = svg.split(f'data-route="{pid}"', 1)[1].split("</g></g>", 1)[0]
    assert "<polyline points=" in drawn and len(re.findall(r'class="map-stop', drawn)) >= 2
    assert "1. 08:" in drawn


def test_a_day_that_is_no_date_shows_today_with_the_reason(desk):
    page = desk.get("/providers?day=someday")
    assert page.status_code == 200 and "is not a date" in page.text and "(today)" in page.text
    assert desk.get("/providers?day=" + "9" * 100).status_code == 422


def test_the_city_bureau_plans_today_now_with_the_button(bureau):
    page = bureau.get("/providers")
    today = page.text.split('data-plan-day="', 1)[1].split('"', 1)[0]

    planned = bureau.post("/providers/plan", data={"day": today, "csrf_token": csrf_in(page.text)})

    assert planned.status_code == 303 and planned.headers["location"] == f"/providers?day={today}#routes"
    assert f"Planned {today}: " in _flash(bureau) and "min of travel" in _flash(bureau)
    assert "Planned at" in bureau.get(f"/providers?day={today}").text


def test_a_districts_dispatcher_has_no_button_to_plan_the_whole_citys_day(desk):
    page = desk.get("/providers")
    assert page.status_code == 200 and "data-plan-day" not in page.text
    refused = desk.post("/providers/plan", data={"day": "2031-01-06", "csrf_token": csrf_in(page.text)})
    assert refused.status_code == 403


@pytest.mark.parametrize(("day", "reason"), [("2026-13-45", "is not a date"), ("2020-01-01", "must be today"),
                                             ("2099-01-01", "within a year")])
def test_planning_a_day_that_cannot_be_planned_is_refused_with_the_reason(bureau, day, reason):
    token = csrf_in(bureau.get("/providers").text)
    answer = bureau.post("/providers/plan", data={"day": day, "csrf_token": token})
    assert answer.status_code == 303
    assert "Not planned" in _flash(bureau) and reason in _flash(bureau)


def _flash(client) -> str:
    from urllib.parse import unquote

    return unquote(client.cookies.get("homecare_flash") or "")


def test_a_provider_cannot_plan_a_day(pool, client):
    from .conftest import make_user

    assert sign_in(client, make_user(pool, Role.PROVIDER, provider_id="p-x")).status_code == 303
    assert client.post("/providers/plan", data={"day": "2031-01-06", "csrf_token": "x"}).status_code == 403


def test_a_dispatcher_sees_only_the_routes_and_care_plans_of_its_districts(pool, client):
    from .dispatching import new_resident as resident_in

    day = a_day_of_its_own()
    pid, _ = new_provider(pool, ["meal"], "Two Town Carer", location=(31.2, 121.5))
    shift(pool, pid, day)
    ours, _ = resident_in(pool, "Our Neighbour", district="North")
    theirs, _ = resident_in(pool, "Their Neighbour", district="South")
    care_plan(pool, ours, day, "meal", time(11), time(12))
    care_plan(pool, theirs, day, "meal", time(11), time(12), note="secret south note")
    plan(pool, day)
    with pool.connection() as conn:
        create_user(conn, "desk-north", PASSWORD, Role.DISPATCHER, districts=["North"])
    assert sign_in(client, "desk-north").status_code == 303

    page = client.get(f"/providers?day={day.isoformat()}").text
    panel = page.split('id="routes"', 1)[1].split("</section>", 1)[0]
    assert "Our Neighbour" in panel and "Their Neighbour" not in page
    assert client.get(f"/residents/{theirs}").status_code == 404
    assert "secret south note" not in client.get(f"/residents/{ours}").text


def test_residents_are_read_many_at_a_time(pool):
    """The roster and the routes read their residents in one query (`residents.many`)."""
    from homecare.residents import store as residents

    from .dispatching import new_resident

    one, _ = new_resident(pool, "Many One")
    two, _ = new_resident(pool, "Many Two")
    with pool.connection() as conn:
        found = residents.many(conn, [one, two, "res-nobody", ""])
        assert residents.many(conn, []) == {}
    assert {k: v.name for k, v in found.items()} == {one: "Many One", two: "Many Two"}
    assert found[one].location.lat == 31.2 and found[one].address == "1 Test Street"
