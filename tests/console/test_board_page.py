"""The board page lists requests through dispatch's interface, most urgent first."""

from __future__ import annotations

import re

from .dispatching import assign, cancel_request, new_provider, new_resident, open_request


def _row_ids(html: str, table: str) -> list[str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="request[^"]*" data-id="([^"]+)"', body)


def test_board_lists_active_requests_most_urgent_first(pool, signed_in):
    meal_res, meal_name = new_resident(pool, "Meal Person")
    sos_res, sos_name = new_resident(pool, "Emergency Person")
    meal = open_request(pool, meal_res, "meal")
    sos = open_request(pool, sos_res, "emergency")  # newer, but priority 1

    page = signed_in.get("/")

    assert page.status_code == 200
    active = _row_ids(page.text, "active")
    assert meal in active and sos in active
    assert active.index(sos) < active.index(meal)
    assert meal_name in page.text and sos_name in page.text
    row = page.text.split(f'data-id="{sos}"', 1)[1].split("</tr>", 1)[0]
    assert "Emergency" in row and "pill-" in row and "data-due=" in row


def test_assigned_requests_show_their_provider(pool, signed_in):
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "bathing")
    provider, provider_name = new_provider(pool, ["bathing"], "Li Mei")
    assign(pool, request, provider)

    page = signed_in.get("/")

    row = page.text.split(f'data-id="{request}"', 1)[1].split("</tr>", 1)[0]
    assert "pill-assigned" in row
    assert provider_name in row
    assert "ETA" in row


def test_cancelled_requests_move_to_recently_closed(pool, signed_in):
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "escort")
    cancel_request(pool, request)

    page = signed_in.get("/")

    assert request in _row_ids(page.text, "recent")
    assert request not in _row_ids(page.text, "active")


def test_resident_names_are_escaped(pool, signed_in):
    resident, _ = new_resident(pool, "<script>alert(1)</script>")
    open_request(pool, resident, "mobility")

    page = signed_in.get("/")

    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_board_carries_the_live_wiring(signed_in):
    page = signed_in.get("/").text

    assert 'data-stream="/events/requests"' in page
    assert 'data-server-time="' in page and 'data-sla-warn="300"' in page
    assert '<meta name="csrf-token"' in page
    assert "/static/board.js?v=" in page


def test_a_request_at_risk_shows_it_on_the_board_with_its_expected_arrival(pool, signed_in):
    from datetime import UTC, datetime

    from services.dispatch.usecases.progress import flag_if_late

    from .dispatching import CTX, get_request

    resident, _ = new_resident(pool)
    on_time, late = open_request(pool, resident, "meal"), open_request(pool, resident, "bathing")
    near, _ = new_provider(pool, ["meal"], location=(31.2, 121.5))
    far, _ = new_provider(pool, ["bathing"], location=(32.2, 121.5))  # 110 km away: hours
    assign(pool, on_time, near)
    assign(pool, late, far)
    with pool.connection() as conn:  # the timer's check of assigned requests
        assert flag_if_late(conn, CTX, late, datetime.now(UTC))
        assert not flag_if_late(conn, CTX, on_time, datetime.now(UTC))
    expected = get_request(pool, late)["expected_arrival"]
    assert expected > get_request(pool, late)["sla_due_at"]

    page = signed_in.get("/")

    row = page.text.split(f'data-id="{late}"', 1)[1].split("</tr>", 1)[0]
    shown = expected.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert "pill-risk" in row and f'expected <time class="local-time" datetime="{shown}"' in row
    assert "pill-risk" not in page.text.split(f'data-id="{on_time}"', 1)[1].split("</tr>", 1)[0]


def test_an_escalated_request_shows_why_on_the_board(pool, signed_in):
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "escort")  # nobody does escorts here: escalated at once
    try:
        page = signed_in.get("/")
    finally:
        cancel_request(pool, request)
    row = page.text.split(f'data-id="{request}"', 1)[1].split("</tr>", 1)[0]
    assert "pill-escalated" in row
    assert re.search(r'<span class="sub escalation"[^>]*>no (qualified|reachable) provider on shift for escort', row)
