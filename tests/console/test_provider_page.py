"""The provider's page: its own offers and jobs only, accept / decline / arrived / completed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from console.web import FLASH_COOKIE
from homecare.auth import Role

from .conftest import csrf_in, make_user, sign_in
from .dispatching import get_request, last_seen, new_provider, new_resident, open_request, set_shift, went_on_shift
from .test_stream import events, wait_event


@pytest.fixture
def carer(pool):
    """A provider on shift (escort only, so other tests' requests are not offered to it) with an account."""
    pid, name = new_provider(pool, ["escort"], f"Escort {uuid.uuid4().hex[:4]}", on_shift=True,
                             location=(31.2001, 121.5001))
    yield pid, name, make_user(pool, Role.PROVIDER, provider_id=pid)
    set_shift(pool, pid, False)


def _flash(client) -> str:
    return unquote(client.cookies.get(FLASH_COOKIE) or "")


def _offer_for(pool, request_id: str, provider_id: str) -> str:
    offers = [o for o in get_request(pool, request_id)["offers"] if o["status"] == "pending"]
    assert offers and offers[0]["provider_id"] == provider_id, offers
    return offers[0]["id"]


def test_a_provider_lands_on_its_page_and_sees_its_offer(pool, client, carer):
    pid, name, username = carer
    resident, resident_name = new_resident(pool, "Offer Resident")
    request = open_request(pool, resident, "escort")
    offer = _offer_for(pool, request, pid)

    landing = sign_in(client, username)
    page = client.get("/provider")

    assert landing.headers["location"] == "/provider"
    assert page.status_code == 200
    assert name in page.text and "Offer Resident" in page.text and "1 Test Street" in page.text
    assert f'data-accept="{offer}"' in page.text


def test_accept_then_arrived_then_completed(pool, client, carer):
    pid, _, username = carer
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "escort")
    offer = _offer_for(pool, request, pid)
    sign_in(client, username)

    def post(path: str):
        return client.post(path, data={"csrf_token": csrf_in(client.get("/provider").text)})

    assert post(f"/provider/offers/{offer}/accept").status_code == 303
    assert get_request(pool, request)["status"] == "assigned"
    assert "Accepted" in _flash(client)
    assert f'data-job="{request}"' in client.get("/provider").text

    post(f"/provider/requests/{request}/arrived")
    assert get_request(pool, request)["status"] == "arrived"
    post(f"/provider/requests/{request}/complete")

    done = get_request(pool, request)
    assert done["status"] == "completed"
    assert f"provider:{pid}" in {e["actor"] for e in done["timeline"]}
    assert f'data-job="{request}"' not in client.get("/provider").text


def test_decline_moves_the_offer_on(pool, client, carer):
    pid, _, username = carer
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "escort")
    offer = _offer_for(pool, request, pid)
    sign_in(client, username)

    client.post(f"/provider/offers/{offer}/decline",
                data={"csrf_token": csrf_in(client.get("/provider").text), "reason": "too far"})

    after = get_request(pool, request)
    assert next(o for o in after["offers"] if o["id"] == offer)["status"] == "declined"
    assert after["status"] != "assigned"
    assert f'data-offer="{offer}"' not in client.get("/provider").text


def test_a_provider_cannot_take_another_providers_offer_or_job(pool, client, carer):
    pid, _, _ = carer
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "escort")
    offer = _offer_for(pool, request, pid)
    other_pid, _ = new_provider(pool, ["escort"])
    sign_in(client, make_user(pool, Role.PROVIDER, provider_id=other_pid))
    token = csrf_in(client.get("/provider").text)

    client.post(f"/provider/offers/{offer}/accept", data={"csrf_token": token})
    assert "another provider" in _flash(client)
    client.post(f"/provider/requests/{request}/complete", data={"csrf_token": token})

    assert get_request(pool, request)["status"] == "offered"
    assert f'data-offer="{offer}"' not in client.get("/provider").text


def test_the_shift_switch(pool, client, carer):
    pid, _, username = carer
    sign_in(client, username)

    client.post("/provider/shift", data={"csrf_token": csrf_in(client.get("/provider").text), "on_shift": "false"})

    assert "Off shift" in client.get("/provider").text
    client.post("/provider/shift", data={"csrf_token": csrf_in(client.get("/provider").text), "on_shift": "true"})
    assert "On shift" in client.get("/provider").text


PROVIDER_ACTIONS = [
    ("GET", "/provider"), ("POST", "/provider/offers/o-x/accept"), ("POST", "/provider/offers/o-x/decline"),
    ("POST", "/provider/requests/r-x/arrived"), ("POST", "/provider/requests/r-x/complete"),
    ("POST", "/provider/shift"), ("GET", "/events/provider"),
]


@pytest.mark.parametrize(("method", "path"), PROVIDER_ACTIONS)
def test_a_dispatcher_gets_403_on_provider_actions(signed_in, method, path):
    data = {"csrf_token": csrf_in(signed_in.get("/").text)} if method == "POST" else None

    assert signed_in.request(method, path, data=data).status_code == 403


def test_the_provider_stream_says_refresh_when_its_request_changes(pool, client, carer):
    pid, _, username = carer
    sign_in(client, username)
    resident, _ = new_resident(pool)

    with client.stream("GET", "/events/provider") as response:
        assert response.status_code == 200
        stream = events(response)
        wait_event(stream, "snapshot")
        open_request(pool, resident, "escort")  # offered to this provider
        assert wait_event(stream, "refresh") == {}


@pytest.fixture
def quiet_carer(pool):
    """A provider who went on shift 10 minutes ago and has not been heard from since, with an account."""
    pid, _ = new_provider(pool, ["escort"], f"Quiet {uuid.uuid4().hex[:4]}", location=(31.2001, 121.5001))
    went_on_shift(pool, pid, datetime.now(UTC) - timedelta(minutes=10))
    yield pid, make_user(pool, Role.PROVIDER, provider_id=pid)
    set_shift(pool, pid, False)


def test_the_page_beats_and_the_heartbeat_makes_the_provider_reachable(pool, client, quiet_carer):
    pid, username = quiet_carer
    before = last_seen(pool, pid)
    assert before < datetime.now(UTC) - timedelta(minutes=9)
    sign_in(client, username)
    page = client.get("/provider").text
    assert "provider.js" in page  # the script that beats every 30 s
    assert last_seen(pool, pid) == before  # looking at the page is not a heartbeat; the script's call is
    response = client.post("/provider/heartbeat", headers={"X-CSRF-Token": csrf_in(page)})
    assert response.status_code == 204
    assert last_seen(pool, pid) > before + timedelta(minutes=9)


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({}, None),  # no CSRF token at all
        ({"X-CSRF-Token": "forged"}, None),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"csrf_token=\x00\xff&&=="),
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\ngarbage\x00"),
        ({"Content-Type": "application/json"}, b"{" * 100_000),
    ],
)
def test_a_heartbeat_without_a_valid_token_is_refused_and_changes_nothing(pool, client, quiet_carer, headers, content):
    pid, username = quiet_carer
    before = last_seen(pool, pid)
    sign_in(client, username)
    response = client.post("/provider/heartbeat", headers=headers, content=content)
    assert 400 <= response.status_code < 500 and response.text
    assert last_seen(pool, pid) == before


def test_a_dispatcher_cannot_beat_for_a_provider(signed_in):
    response = signed_in.post("/provider/heartbeat", headers={"X-CSRF-Token": csrf_in(signed_in.get("/").text)})
    assert response.status_code == 403


def test_a_provider_sees_its_route_in_order_with_planned_times_window_address_and_status(pool, client, monkeypatch):
    from datetime import time

    from .planning import a_day_of_its_own, care_plan, plan, shift

    monkeypatch.setenv("HOMECARE_DISPATCH_PLAN_TIME_LIMIT_S", "1")
    day = a_day_of_its_own()
    pid, _ = new_provider(pool, ["bathing", "mobility"], "Route Walker", location=(31.2, 121.5))
    shift(pool, pid, day)
    first, _ = new_resident(pool, "First Stop")
    second, _ = new_resident(pool, "Second Stop")
    care_plan(pool, second, day, "bathing", time(14), time(15, 30))
    care_plan(pool, first, day, "mobility", time(9), time(10))
    run = plan(pool, day)
    assert run["planned"] >= 2
    sign_in(client, make_user(pool, Role.PROVIDER, provider_id=pid))

    today = client.get("/provider")
    page = client.get(f"/provider?day={day.isoformat()}")

    assert "Today's route" in today.text and "Tomorrow's route" in today.text
    assert page.status_code == 200 and f"Route of {day.isoformat()}" in page.text
    route = page.text.split('id="route"', 1)[1].split("</section>", 1)[0]
    assert route.index("First Stop") < route.index("Second Stop")
    assert "Window 09:00–10:00" in route and "Window 14:00–15:30" in route and "1 Test Street" in route
    assert "Planned" in route, "not yet released: planned"
    assert client.get("/provider?day=soon").status_code == 200, "no date: today's"
