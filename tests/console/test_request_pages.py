"""The request view and the dispatcher's actions, on the real database through dispatch's use cases."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from console.web import FLASH_COOKIE

from .conftest import csrf_in, sign_in, valid_csrf
from .dispatching import get_request, new_provider, new_resident, open_request, set_shift

CONTACTS = [{"name": "Zhang Wei", "phone": "+86 139 1111 2222", "relation": "daughter"}]


@pytest.fixture
def crew(pool):
    """Two bathing providers on shift, at different distances; off shift again afterwards."""
    near = new_provider(pool, ["bathing"], "Near Nurse", on_shift=True, location=(31.201, 121.501))
    far = new_provider(pool, ["bathing"], "Far Nurse", on_shift=True, location=(31.30, 121.60))
    yield near, far
    for pid, _ in (near, far):
        set_shift(pool, pid, False)


def _flash(client) -> str:
    return unquote(client.cookies.get(FLASH_COOKIE) or "")


def _post(client, path: str, page: str, **data):
    return client.post(path, data={"csrf_token": csrf_in(client.get(page).text), **data})


def test_the_view_shows_timeline_resident_contacts_and_candidates(pool, signed_in, crew):
    resident, name = new_resident(pool, "Chen Lan", contacts=CONTACTS)
    request = open_request(pool, resident, "bathing")

    page = signed_in.get(f"/requests/{request}")

    assert page.status_code == 200
    html = page.text
    assert "Chen Lan" in html and "Zhang Wei" in html and "+86 139 1111 2222" in html and "daughter" in html
    assert "Request opened by phone call" in html  # the timeline in words
    assert "Offered to Near Nurse" in html  # the automatic offer went to the nearer one
    candidates = html.split('id="candidates"', 1)[1].split("</section>", 1)[0]
    assert candidates.index("Near Nurse") < candidates.index("Far Nurse")  # best first
    assert re.search(r"<b>\d+</b> min", candidates)  # an ETA
    assert re.search(r'<td class="num">-?\d+\.\d</td>', candidates)  # a score


def test_assign_by_hand_then_reassign(pool, signed_in, crew):
    (near, near_name), (far, far_name) = crew
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "bathing")
    page = f"/requests/{request}"

    response = _post(signed_in, f"{page}/assign", page, provider_id=far)

    assert response.status_code == 303 and response.headers["location"] == page
    assert "Assigned to Far Nurse" in _flash(signed_in)
    assert get_request(pool, request)["provider_id"] == far
    view = signed_in.get(page).text
    assert "Assigned to Far Nurse" in view and "Reassign" in view

    _post(signed_in, f"{page}/assign", page, provider_id=near)

    after = get_request(pool, request)
    assert after["provider_id"] == near
    assert [e["kind"] for e in after["timeline"]].count("reassigned") == 1
    assert "Reassigned" in signed_in.get(page).text


def test_an_assignment_the_lifecycle_refuses_is_reported(pool, signed_in):
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "meal")
    provider, _ = new_provider(pool, ["bathing"])  # does not provide meals
    page = f"/requests/{request}"

    response = _post(signed_in, f"{page}/assign", page, provider_id=provider)

    assert response.status_code == 303
    assert "Not assigned" in _flash(signed_in) and "does not provide meal" in _flash(signed_in)
    assert get_request(pool, request)["provider_id"] is None
    assert "does not provide meal" in signed_in.get(page).text  # shown once on the next page


def test_cancel_needs_a_reason_and_then_cancels(pool, signed_in):
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "escort")
    page = f"/requests/{request}"

    _post(signed_in, f"{page}/cancel", page, reason="  ")
    assert "say why" in _flash(signed_in)
    assert get_request(pool, request)["status"] != "cancelled"

    _post(signed_in, f"{page}/cancel", page, reason="daughter is with her")

    after = get_request(pool, request)
    assert after["status"] == "cancelled"
    view = signed_in.get(page).text
    assert "Cancelled: daughter is with her" in view
    assert 'action="/requests/' + request + '/cancel"' not in view  # nothing left to cancel


def test_a_note_goes_into_the_timeline(pool, signed_in, dispatcher):
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "meal")
    page = f"/requests/{request}"

    response = _post(signed_in, f"{page}/notes", page, text="Son called: she is diabetic")

    assert response.status_code == 303
    entry = get_request(pool, request)["timeline"][-1]
    assert entry["kind"] == "note" and entry["detail"]["text"] == "Son called: she is diabetic"
    assert entry["actor"] == f"city:{dispatcher}"
    assert "Son called: she is diabetic" in signed_in.get(page).text


def test_an_unknown_request_is_a_404_page(signed_in):
    page = signed_in.get("/requests/r-nope")

    assert page.status_code == 404
    assert "r-nope" in page.text


def test_phone_intake_finds_the_caller_and_opens_a_request(pool, signed_in):
    resident, _ = new_resident(pool, "Intake Findme Person", district="Jing'an")

    found = signed_in.get("/intake", params={"q": "findme"})
    assert found.status_code == 200 and f'data-choose="{resident}"' in found.text

    chosen = signed_in.get("/intake", params={"q": "findme", "resident": resident})
    assert 'name="service"' in chosen.text and "Intake Findme Person" in chosen.text

    response = signed_in.post("/intake", data={
        "csrf_token": csrf_in(chosen.text), "resident_id": resident, "service": "mobility",
        "note": "needs help to the bathroom",
    })

    assert response.status_code == 303
    request_id = response.headers["location"].rsplit("/", 1)[1]
    request = get_request(pool, request_id)
    assert request["resident_id"] == resident and request["service"] == "mobility"
    assert request["source"] == "phone" and request["note"] == "needs help to the bathroom"

    again = signed_in.post("/intake", data={
        "csrf_token": csrf_in(chosen.text), "resident_id": resident, "service": "mobility",
    })
    assert again.headers["location"] == f"/requests/{request_id}"  # joined, not a second request
    assert "already open" in _flash(signed_in)


def test_intake_refuses_an_unknown_service_or_resident(pool, signed_in):
    resident, _ = new_resident(pool)
    token = csrf_in(signed_in.get("/intake").text)

    bad_service = signed_in.post("/intake", data={"csrf_token": token, "resident_id": resident, "service": "taxi"})
    assert bad_service.status_code == 303 and "unknown service" in _flash(signed_in)

    bad_resident = signed_in.post("/intake", data={"csrf_token": token, "resident_id": "res-nobody",
                                                   "service": "meal"})
    assert bad_resident.status_code == 303 and "res-nobody" in _flash(signed_in)


DISPATCHER_ACTIONS = [
    ("GET", "/requests/{id}"), ("POST", "/requests/{id}/assign"), ("POST", "/requests/{id}/cancel"),
    ("POST", "/requests/{id}/notes"), ("GET", "/intake"), ("POST", "/intake"),
]


@pytest.mark.parametrize(("method", "path"), DISPATCHER_ACTIONS)
def test_a_provider_gets_403_on_every_dispatcher_action(pool, client, provider_user, method, path):
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "meal")
    assert sign_in(client, provider_user).status_code == 303
    # A valid CSRF token: the role alone must refuse.
    data = {"csrf_token": valid_csrf(client), "provider_id": "x", "reason": "x", "text": "x",
            "resident_id": resident, "service": "meal"}

    response = client.request(method, path.format(id=request), data=data if method == "POST" else None)

    assert response.status_code == 403
    assert get_request(pool, request)["status"] != "cancelled"


@pytest.mark.parametrize("path", ["/requests/{id}/assign", "/requests/{id}/cancel", "/requests/{id}/notes"])
def test_actions_without_the_csrf_token_are_refused(pool, signed_in, path):
    resident, _ = new_resident(pool)
    request = open_request(pool, resident, "meal")

    response = signed_in.post(path.format(id=request), data={"reason": "x", "text": "x", "provider_id": "x"})

    assert response.status_code == 403
    assert [e["kind"] for e in get_request(pool, request)["timeline"]].count("note") == 0
