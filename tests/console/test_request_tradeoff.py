"""The trade-off on the request page: a provider who could be there sooner but would make a
planned visit of its route late is held back by matching; the dispatcher sees who would be late
and by how much, and may send it anyway. Planned visits are marked with their window on the board."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from services.dispatch.store import providers
from services.dispatch.usecases import plans

from .conftest import csrf_in
from .dispatching import CTX, get_request, new_provider, new_resident, open_request, set_shift
from .planning import ZONE, care_plan, desk_of, plan, shift


@pytest.fixture
def desk(pool, client):
    """A dispatcher of the test residents' district, signed in."""
    return desk_of(pool, client)


def _released_visit_soon(pool, provider_id: str, resident_id: str) -> str:
    """A care plan's visit starting within minutes, routed to the provider and released onto its
    route (as the timer does); the request's id. The plan asks for a skill only it has."""
    now = datetime.now(ZONE)
    start = (now + timedelta(minutes=5)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=20)
    if end.date() != now.date():
        pytest.skip("a window that stays in today's date: not in the last half hour of the centre's day")
    skill = f"t_{uuid.uuid4().hex[:8]}"
    with pool.connection() as conn:
        providers.set_skills(conn, provider_id, [skill])
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = now.replace(hour=23, minute=59, second=0, microsecond=0)
    shift(pool, provider_id, now.date(), max(day_start, now - timedelta(hours=1)).time(),
          min(day_end, now + timedelta(hours=3)).time())
    care_plan(pool, resident_id, now.date(), "escort", start.time(), end.time(), skills=[skill])
    assert plan(pool, now.date())["planned"] >= 1
    with pool.connection() as conn:
        stop = next(s for s in plans.route_of(conn, CTX, provider_id, now.date()) if s.resident_id == resident_id)
        with conn.transaction():
            request_id = plans.release(conn, CTX, stop, datetime.now(ZONE))
    assert request_id
    return request_id


def test_the_dispatcher_sees_who_is_faster_but_would_make_a_planned_visit_late_and_may_send_them(pool, desk):
    near, near_name = new_provider(pool, ["escort"], f"Near Escort {uuid.uuid4().hex[:4]}", on_shift=True,
                                   location=(31.2, 121.5))
    far, _ = new_provider(pool, ["escort"], f"Far Escort {uuid.uuid4().hex[:4]}", on_shift=True,
                          location=(31.25, 121.55))
    try:
        planned_for, _ = new_resident(pool, "Li Hua")
        visit = _released_visit_soon(pool, near, planned_for)
        assert get_request(pool, visit)["provider_id"] == near
        caller, _ = new_resident(pool, "Caller Zhao")
        press = open_request(pool, caller, "escort")

        page = desk.get(f"/requests/{press}")
        assert page.status_code == 200
        box = page.text.split('id="tradeoffs"', 1)[1].split("</div>\n      {% endif %}", 1)[0]
        assert f'data-tradeoff="{near}"' in box
        summary = box.split("<b>", 1)[1].split("</b>", 1)[0]
        assert summary.startswith(f"{near_name} is ") and "min sooner but would make escort for Li Hua" in summary
        assert summary.rstrip(".").endswith("min late")
        assert f"/requests/{visit}" in box

        sent = desk.post(f"/requests/{press}/assign", data={"provider_id": near, "csrf_token": csrf_in(page.text)})
        assert sent.status_code == 303
        assert get_request(pool, press)["provider_id"] == near, "the dispatcher decides"

        roster = desk.get("/providers").text  # today's routes
        route = roster.split('id="routes"', 1)[1].split(f'data-route="{near}"', 1)[1].split("</ol>", 1)[0]
        assert route.index(f'data-press="{press}"') < route.index("Li Hua"), "the press it holds comes first"
        assert "press, inserted" in route and "Caller Zhao" in route

        planned_page = desk.get(f"/requests/{visit}").text
        assert "care plan" in planned_page and "planned</span> window" in planned_page

        board = desk.get("/").text
        row = board.split(f'data-id="{visit}"', 1)[1].split("</tr>", 1)[0]
        assert "planned" in row and "window" in row
    finally:
        set_shift(pool, near, False)
        set_shift(pool, far, False)


def test_an_emergency_goes_first_and_the_page_says_whose_planned_visit_becomes_late(pool, desk):
    near, _ = new_provider(pool, ["escort", "emergency"], f"Near Nurse {uuid.uuid4().hex[:4]}", on_shift=True,
                           location=(31.2, 121.5))
    try:
        planned_for, _ = new_resident(pool, "Wu Mei")
        _released_visit_soon(pool, near, planned_for)
        caller, _ = new_resident(pool, "Fallen Gu")
        emergency = open_request(pool, caller, "emergency")

        page = desk.get(f"/requests/{emergency}").text

        assert 'id="tradeoffs"' not in page, "an emergency never waits for a plan: no trade-off to weigh"
        assert "makes escort for Wu Mei" in page and "min late" in page
    finally:
        set_shift(pool, near, False)
