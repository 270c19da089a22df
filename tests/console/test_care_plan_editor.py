"""The care plan editor on the resident page: list, add, edit, end, through forms with CSRF;
hostile or impossible input is answered with the reason, never a 5xx."""

from __future__ import annotations

import pytest

from homecare.auth import Role

from .conftest import csrf_in, make_user, sign_in
from .dispatching import new_provider, new_resident
from .planning import desk_of


def _flash(client) -> str:
    """The message the page shows once after a form (the flash cookie)."""
    from urllib.parse import unquote

    return unquote(client.cookies.get("homecare_flash") or "")


# Plans end, so that they ask for no visits on the far days other tests plan.
LUNCH = {"service": "meal", "repeat": "daily", "starts_on": "2026-12-07", "ends_on": "2026-12-31",
         "window_start": "11:00", "window_end": "13:00", "duration_minutes": "15", "skills": "",
         "note": "lunch from the canteen"}


@pytest.fixture
def signed_in(pool, client):
    """A dispatcher of the test residents' district, signed in."""
    return desk_of(pool, client)


def _plans(page: str) -> str:
    return page.split('id="care-plans"', 1)[1].split("</section>", 1)[0]


def test_a_dispatcher_adds_edits_and_ends_a_care_plan(pool, signed_in):
    resident, _ = new_resident(pool, "Li Hua")
    pid, _ = new_provider(pool, ["bathing"], "Bath Aide Wu")
    page = signed_in.get(f"/residents/{resident}")
    assert "No care plans" in _plans(page.text) and "Add a care plan" in page.text
    token = csrf_in(page.text)

    added = signed_in.post(f"/residents/{resident}/care-plans", data={**LUNCH, "csrf_token": token})
    assert added.status_code == 303 and added.headers["location"].startswith(f"/residents/{resident}")
    bath = {"service": "bathing", "repeat": "every_n_weeks", "every_weeks": "2", "weekdays": ["1", "3"],
            "starts_on": "2026-12-07", "ends_on": "2026-12-31", "window_start": "14:00",
            "window_end": "16:30", "duration_minutes": "40",
            "skills": "bath_lift, bath_lift", "preferred_provider_id": pid, "csrf_token": token}
    assert signed_in.post(f"/residents/{resident}/care-plans", data=bath).status_code == 303

    listed = _plans(signed_in.get(f"/residents/{resident}").text)
    assert "every day from 2026-12-07 until 2026-12-31" in listed and "11:00–13:00" in listed
    assert "lunch from the canteen" in listed
    assert "every 2 weeks on Tue, Thu from 2026-12-07" in listed and "bath_lift" in listed
    assert "prefers Bath Aide Wu" in listed
    lunch_id = listed.split('data-plan="', 1)[1].split('"', 1)[0]

    changed = signed_in.post(f"/residents/{resident}/care-plans/{lunch_id}",
                             data={**LUNCH, "window_start": "11:30", "csrf_token": token})
    assert changed.status_code == 303
    assert "11:30–13:00" in _plans(signed_in.get(f"/residents/{resident}").text)

    ended = signed_in.post(f"/residents/{resident}/care-plans/{lunch_id}/end", data={"csrf_token": token})
    assert ended.status_code == 303
    listed = _plans(signed_in.get(f"/residents/{resident}").text)
    row = listed.split(f'data-plan="{lunch_id}"', 1)[1].split("</tr>", 1)[0]
    assert "ended" in row and "/end" not in row, "an ended plan is kept, without actions"


@pytest.mark.parametrize(("change", "reason"), [
    ({"window_end": "10:00"}, "window"),
    ({"starts_on": "someday"}, "starts_on: a date"),
    ({"duration_minutes": "9999"}, "duration_minutes: between 1 and 480"),
    ({"duration_minutes": "ten"}, "duration_minutes: a whole number"),
    ({"service": "emergency"}, "service: choose one of"),
    ({"note": "x" * 5000}, "at most 500 characters"),
    ({"repeat": "weekdays"}, "needs at least one weekday"),
    ({"weekdays": ["9"]}, "weekdays: between 0 and 6"),
    ({"preferred_provider_id": "p-nobody"}, "not found"),
])
def test_a_plan_that_cannot_be_kept_is_answered_with_the_reason(pool, signed_in, change, reason):
    resident, _ = new_resident(pool)
    token = csrf_in(signed_in.get(f"/residents/{resident}").text)

    answer = signed_in.post(f"/residents/{resident}/care-plans", data={**LUNCH, **change, "csrf_token": token})

    assert answer.status_code == 303
    assert "Care plan not saved" in _flash(signed_in) and reason in _flash(signed_in)
    page = signed_in.get(answer.headers["location"])
    assert page.status_code == 200 and reason.split(":")[0] in page.text
    assert "No care plans" in _plans(page.text)


def test_a_nul_byte_is_refused_at_the_edge_with_the_reason(pool, signed_in):
    resident, _ = new_resident(pool)
    token = csrf_in(signed_in.get(f"/residents/{resident}").text)

    answer = signed_in.post(f"/residents/{resident}/care-plans", data={**LUNCH, "note": "lunch\x00",
                                                                       "csrf_token": token})

    assert answer.status_code == 422 and "NUL" in answer.text
    assert "No care plans" in _plans(signed_in.get(f"/residents/{resident}").text)


def test_forms_without_a_valid_token_or_of_another_resident_change_nothing(pool, signed_in):
    resident, _ = new_resident(pool)
    other, _ = new_resident(pool)
    token = csrf_in(signed_in.get(f"/residents/{resident}").text)
    signed_in.post(f"/residents/{resident}/care-plans", data={**LUNCH, "csrf_token": token})
    plan_id = _plans(signed_in.get(f"/residents/{resident}").text).split('data-plan="', 1)[1].split('"', 1)[0]

    forged = signed_in.post(f"/residents/{resident}/care-plans/{plan_id}/end", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    signed_in.post(f"/residents/{other}/care-plans/{plan_id}/end", data={"csrf_token": token})
    assert "not found" in _flash(signed_in)
    signed_in.post("/residents/r-nobody/care-plans", data={**LUNCH, "csrf_token": token})
    assert "not found" in _flash(signed_in)
    assert "ended" not in _plans(signed_in.get(f"/residents/{resident}").text)


def test_a_provider_account_cannot_edit_plans(pool, client):
    resident, _ = new_resident(pool)
    assert sign_in(client, make_user(pool, Role.PROVIDER, provider_id="p-x")).status_code == 303
    assert client.get(f"/residents/{resident}").status_code == 403


def test_a_dispatcher_of_another_district_cannot_add_a_plan(pool, client):
    from homecare.auth import create_user

    from .conftest import PASSWORD

    resident, _ = new_resident(pool)  # district "Test"
    with pool.connection() as conn:
        create_user(conn, "desk-elsewhere", PASSWORD, Role.DISPATCHER, districts=["Elsewhere"])
    assert sign_in(client, "desk-elsewhere").status_code == 303
    token = csrf_in(client.get("/").text)

    client.post(f"/residents/{resident}/care-plans", data={**LUNCH, "csrf_token": token})

    assert "not found" in _flash(client)
    with pool.connection() as conn:
        from services.dispatch import interface as dispatch

        assert dispatch.care_plans_of(conn, resident) == []


def test_a_dispatcher_pauses_a_plan_for_some_days_and_resumes_it(pool, signed_in):
    resident, _ = new_resident(pool, "Zhang Min")
    page = signed_in.get(f"/residents/{resident}")
    token = csrf_in(page.text)
    assert signed_in.post(f"/residents/{resident}/care-plans", data={**LUNCH, "csrf_token": token}).status_code == 303
    listed = _plans(signed_in.get(f"/residents/{resident}").text)
    plan_id = listed.split('data-plan="', 1)[1].split('"', 1)[0]
    today = listed.split('name="from_day" required min="', 1)[1].split('"', 1)[0]  # the centre's date
    assert f'data-pause-plan="{plan_id}"' in listed

    pause = {"from_day": today, "to_day": today, "reason": "in hospital <b>overnight</b>", "csrf_token": token}
    done = signed_in.post(f"/residents/{resident}/care-plans/{plan_id}/pauses", data=pause)
    assert done.status_code == 303 and "Care plan paused" in _flash(signed_in)
    listed = _plans(signed_in.get(f"/residents/{resident}").text)
    assert f"paused</span> {today} to {today}: in hospital &lt;b&gt;overnight&lt;/b&gt;" in listed
    pause_id = listed.split('data-pause="', 1)[1].split('"', 1)[0]

    nul = signed_in.post(f"/residents/{resident}/care-plans/{plan_id}/pauses", data={**pause, "reason": "a\x00"})
    assert nul.status_code == 422 and "NUL" in nul.text  # refused at the edge, as every form's
    for hostile, why in (({**pause, "from_day": "soon"}, "from_day: a date"), ({**pause, "reason": ""}, "reason"),
                         ({**pause, "reason": "a\tb"}, "control characters"), (pause, "overlaps")):
        refused = signed_in.post(f"/residents/{resident}/care-plans/{plan_id}/pauses", data=hostile)
        assert refused.status_code == 303 and "not paused" in _flash(signed_in) and why in _flash(signed_in), why
    assert signed_in.post(f"/residents/{resident}/care-plans/cp-none/pauses", data=pause).status_code == 303
    assert "not found" in _flash(signed_in)

    resumed = signed_in.post(f"/residents/{resident}/care-plans/{plan_id}/pauses/{pause_id}/resume",
                             data={"csrf_token": token})
    assert resumed.status_code == 303 and "Pause ended" in _flash(signed_in)
    assert 'data-pause="' not in _plans(signed_in.get(f"/residents/{resident}").text)
