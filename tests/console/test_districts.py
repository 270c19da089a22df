"""District service centres in the console (issue 16): a dispatcher of district A signed in sees
not one id or name of district B on any page, in the CSV, or in the board's live stream, whose
every change is filtered by its district; B's pages answer 404 as missing ones do, and actions on
B's things change nothing. A dispatcher of no district is told so."""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qsl, quote, urlsplit

import psycopg
import pytest

from homecare.auth import Role

from .alerting import get_alert, raise_alert
from .conftest import make_user, sign_in, valid_csrf
from .dispatching import get_request
from .test_stream import events, wait_event
from .two_districts import district, leaks

REQUEST_CHANNEL = "dispatch_request_changed"


@pytest.fixture
def two(pool):
    return district(pool, "Alpha"), district(pool, "Beta")


@pytest.fixture
def as_a(pool, client, two):
    """The client signed in as a dispatcher of district A only."""
    assert sign_in(client, make_user(pool, Role.DISPATCHER, districts=(two[0].name,))).status_code == 303
    return client


def unasked(text: str, url: str) -> str:
    """A page without what its URL asked for (a page may repeat the district, text or id asked)."""
    parts = urlsplit(url)
    for value in [v for _, v in parse_qsl(parts.query)] + [p for p in parts.path.split("/") if "-" in p]:
        text = text.replace(value, "<asked>")
    return text


def pages(a, b) -> list[str]:
    return [
        "/", "/alerts", "/alerts?view=all", "/providers", "/reports", "/reports/sla.csv",
        "/beds", f"/beds?district={quote(a.name)}", "/devices/health", f"/devices/health?district={quote(a.name)}",
        f"/intake?q={quote('Resident')}", f"/requests/{a.request_id}",
        f"/residents/{a.resident_id}", f"/alerts/{a.alert_id}",
    ]


def test_no_page_shows_a_dispatcher_anything_of_another_district(as_a, two):
    a, b = two
    wrong = []
    for url in pages(a, b):
        response = as_a.get(url)
        if response.status_code != 200 or leaks(response.text, b):
            wrong.append(f"{url}: {response.status_code} {leaks(response.text, b)}")
    assert not wrong, "\n".join(wrong)
    assert a.resident_name in as_a.get("/").text and a.name in as_a.get("/beds").text
    assert a.provider_name in as_a.get("/providers").text
    assert a.name in as_a.get("/reports/sla.csv").text
    searched = as_a.get(f"/intake?q={quote(b.name)}").text  # the page repeats what was asked, nothing more
    assert b.resident_name not in searched and b.resident_id not in searched


def test_another_districts_pages_answer_as_missing_ones(as_a, two):
    _, b = two
    for url in (f"/requests/{b.request_id}", f"/residents/{b.resident_id}", f"/alerts/{b.alert_id}",
                f"/beds?district={quote(b.name)}", f"/devices/health?district={quote(b.name)}",
                f"/intake?resident={b.resident_id}"):
        response = as_a.get(url)
        text = response.text.replace(b.request_id, "").replace(b.resident_id, "").replace(b.alert_id, "")
        assert not leaks(text.replace(b.name, "").replace(quote(b.name), ""), b), url
        assert response.status_code in (404, 200), url  # intake without a known caller is the empty form


def test_actions_on_another_districts_things_change_nothing(pool, as_a, two):
    _, b = two
    csrf = {"X-CSRF-Token": valid_csrf(as_a)}
    for url, form in ((f"/requests/{b.request_id}/cancel", {"reason": "not mine"}),
                      (f"/requests/{b.request_id}/assign", {"provider_id": b.provider_id}),
                      (f"/requests/{b.request_id}/notes", {"text": "peeking"}),
                      (f"/alerts/{b.alert_id}/acknowledge", {}), (f"/alerts/{b.alert_id}/resolve", {"note": "x"}),
                      ("/intake", {"resident_id": b.resident_id, "service": "bathing"})):
        response = as_a.post(url, data=form, headers=csrf)
        assert response.status_code == 303, url
        assert "not found" in as_a.get(response.headers["location"]).text, url
    request = get_request(pool, b.request_id)
    assert request["status"] != "cancelled" and request["provider_id"] is None
    assert not [e for e in request["timeline"] if e["kind"] == "note"]
    assert get_alert(pool, b.alert_id)["state"] == "open"


def test_the_live_stream_carries_nothing_of_another_district(pool, database_url, as_a, two):
    """The snapshot holds A only; B's request and alert change (NOTIFY as dispatch and telemetry
    send it) and nothing comes; A's change comes, so the stream was live all along."""
    a, b = two
    with as_a.stream("GET", "/events/requests") as response:
        assert response.status_code == 200
        stream = events(response)
        snapshot = wait_event(stream, "snapshot")
        assert not leaks(str(snapshot), b)
        assert a.request_id in str(snapshot)
        seen: list = []

        def notify_later():
            time.sleep(0.3)
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (REQUEST_CHANNEL, b.request_id))
                conn.execute("SELECT pg_notify('telemetry_alert_changed', %s)", (b.alert_id,))
                raise_alert(pool, b.resident_id, summary=f"Another fall of {b.resident_name}")
                time.sleep(0.5)
                conn.execute("SELECT pg_notify(%s, %s)", (REQUEST_CHANNEL, a.request_id))

        threading.Thread(target=notify_later, daemon=True).start()
        deadline = time.monotonic() + 20  # heartbeats come every 0.5 s, so the clock is looked at
        for name, data in stream:
            seen.append((name, data))
            if name == "changes" and a.request_id in str(data):
                break
            assert time.monotonic() < deadline, f"A's change never came: {seen}"
        assert not leaks(str(seen), b), seen


def test_a_dispatcher_of_no_district_is_told_and_sees_nothing(pool, client, two):
    a, b = two
    assert sign_in(client, make_user(pool, Role.DISPATCHER)).status_code == 303
    board = client.get("/")
    assert board.status_code == 200 and "belongs to no district" in board.text
    for url in pages(a, b):
        text = unasked(client.get(url).text, url)
        assert not leaks(text, a) and not leaks(text, b), url


def test_the_city_bureau_sees_both_districts(pool, client, two):
    a, b = two
    assert sign_in(client, make_user(pool, Role.CITY)).status_code == 303
    board = client.get("/").text
    assert a.resident_name in board and b.resident_name in board and "belongs to no district" not in board
    assert client.get(f"/requests/{b.request_id}").status_code == 200


def test_a_provider_of_both_districts_shows_its_load_but_not_the_other_districts_job(pool, as_a, two):
    from console.roster_data import roster
    from services.dispatch.store import providers
    from services.dispatch.usecases.context import Dispatch

    from .dispatching import assign, new_provider

    a, b = two
    pid, name = new_provider(pool, ["meal"], name="Carer of both districts")  # off shift: no offers of others
    with pool.connection() as conn:
        providers.set_districts(conn, pid, [a.name, b.name])
    assign(pool, b.request_id, pid)
    page = as_a.get("/providers").text
    assert name in page and not leaks(page, b) and "1 in other districts" in page
    with pool.connection() as conn:
        row = next(r for r in roster(conn, Dispatch(), frozenset({a.name}))["providers"] if r["id"] == pid)
    assert (row["load"], row["jobs"], row["elsewhere"]) == (1, [], 1)


def test_help_from_another_district_is_marked_on_the_board_and_the_request_page(pool, client, two):
    from .dispatching import assign

    a, b = two
    assign(pool, a.request_id, b.provider_id)  # the city bureau sent another district's carer
    assert sign_in(client, make_user(pool, Role.CITY)).status_code == 303
    board = client.get("/").text
    row = board.split(f'data-id="{a.request_id}"', 1)[1].split("</tr>", 1)[0]
    assert "other district" in row and b.provider_name in row


def test_the_timeline_says_why_help_came_from_another_district():
    from console.timeline import describe

    entry = {"at": "2026-12-04T10:00:00Z", "actor": "system", "kind": "cross_district",
             "detail": {"reason": "no provider of Xuhui eligible", "provider_id": "p-1", "provider": "Li Na",
                        "district": "Xuhui", "provider_districts": ["Minhang"]}}
    said = describe(entry, {})
    assert said["text"] == "Help from another district: Li Na (Minhang); no provider of Xuhui eligible"
    assert said["tone"] == "warn"
