"""Alerts on the board and on their own pages: live, acknowledge, assign, resolve with a note."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from console.web import FLASH_COOKIE
from services.telemetry.domain.rules.model import Rule, Severity

from .alerting import get_alert, raise_alert
from .conftest import csrf_in, sign_in, valid_csrf
from .dispatching import new_resident
from .test_stream import events, wait_event


def _flash(client) -> str:
    return unquote(client.cookies.get(FLASH_COOKIE) or "")


def test_the_board_shows_open_alerts_beside_the_requests(pool, signed_in):
    resident, _ = new_resident(pool, "Alert Board Person")
    alert = raise_alert(pool, resident)

    page = signed_in.get("/").text

    panel = page.split('id="alerts"', 1)[1].split("</ul>", 1)[0]
    assert f'data-alert="{alert}"' in panel
    assert "Alert Board Person" in panel and "Suspected fall" in panel and "is-emergency" in panel
    assert f'data-ack="{alert}"' in panel


def test_alert_changes_reach_the_board_stream(pool, signed_in, dispatcher):
    resident, _ = new_resident(pool, "Alert Stream Person")
    token = csrf_in(signed_in.get("/").text)

    with signed_in.stream("GET", "/events/requests") as response:
        stream = events(response)
        wait_event(stream, "snapshot")
        alert = raise_alert(pool, resident)
        opened = wait_event(stream, "changes", match=lambda d: any(a["id"] == alert for a in d["alerts"]))
        row = next(a for a in opened["alerts"] if a["id"] == alert)
        assert row["emergency"] and row["resident_name"] == "Alert Stream Person"
        assert f'data-alert="{alert}"' in row["html"]

        # Acknowledged the way the board's button does it: a script's POST with the CSRF header.
        assert signed_in.post(f"/alerts/{alert}/acknowledge", headers={"X-CSRF-Token": token}).status_code == 303
        seen = wait_event(stream, "changes", match=lambda d: any(
            a["id"] == alert and a["state"] == "acknowledged" for a in d["alerts"]))
        assert not next(a for a in seen["alerts"] if a["id"] == alert)["emergency"]

        signed_in.post(f"/alerts/{alert}/resolve", data={"csrf_token": token, "note": "she is fine"})
        gone = wait_event(stream, "changes", match=lambda d: alert in d["alerts_removed"])
    assert gone["alerts"] == [] or all(a["id"] != alert for a in gone["alerts"])
    assert get_alert(pool, alert)["acknowledged_by"] == f"city:{dispatcher}"


def test_acknowledge_assign_and_resolve_on_the_alerts_page(pool, signed_in, dispatcher):
    resident, _ = new_resident(pool)
    alert = raise_alert(pool, resident, Rule.HEART_RATE, Severity.HIGH, summary="HR 130 for 3 minutes")
    listing = signed_in.get("/alerts")
    assert listing.status_code == 200 and "HR 130 for 3 minutes" in listing.text
    token = csrf_in(listing.text)

    signed_in.post(f"/alerts/{alert}/acknowledge", data={"csrf_token": token, "back": "/alerts"})
    assert get_alert(pool, alert)["state"] == "acknowledged"

    signed_in.post(f"/alerts/{alert}/assign", data={"csrf_token": token, "assignee": "Nurse Wu"})
    assert get_alert(pool, alert)["assignee"] == "Nurse Wu"
    signed_in.post(f"/alerts/{alert}/assign", data={"csrf_token": token, "assignee": ""})
    assert get_alert(pool, alert)["assignee"] == dispatcher  # "assign" alone means: to me

    refused = signed_in.post(f"/alerts/{alert}/resolve", data={"csrf_token": token, "note": " "})
    assert refused.status_code == 303 and "say what was done" in _flash(signed_in)
    assert get_alert(pool, alert)["state"] == "acknowledged"

    signed_in.post(f"/alerts/{alert}/resolve", data={"csrf_token": token, "note": "called her son, all well"})
    done = get_alert(pool, alert)
    assert done["state"] == "resolved" and done["resolution_note"] == "called her son, all well"
    page = signed_in.get(f"/alerts/{alert}").text
    assert "called her son, all well" in page and "Nurse Wu" in page
    assert f'data-alert="{alert}"' in signed_in.get("/alerts", params={"view": "resolved"}).text
    assert f'data-alert="{alert}"' not in signed_in.get("/alerts").text


def test_a_second_acknowledge_is_reported_not_applied(pool, signed_in):
    resident, _ = new_resident(pool)
    alert = raise_alert(pool, resident)
    token = csrf_in(signed_in.get("/alerts").text)
    signed_in.post(f"/alerts/{alert}/acknowledge", data={"csrf_token": token})

    signed_in.post(f"/alerts/{alert}/acknowledge", data={"csrf_token": token})

    assert "only an open alert" in _flash(signed_in)


def test_an_unknown_alert_is_a_404_page(signed_in):
    assert signed_in.get("/alerts/al-nope").status_code == 404


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/alerts"), ("GET", "/alerts/{id}"), ("POST", "/alerts/{id}/acknowledge"),
    ("POST", "/alerts/{id}/assign"), ("POST", "/alerts/{id}/resolve"),
])
def test_a_provider_gets_403_on_alert_actions(pool, client, provider_user, method, path):
    resident, _ = new_resident(pool)
    alert = raise_alert(pool, resident)
    sign_in(client, provider_user)

    response = client.request(method, path.format(id=alert), data={"note": "x", "assignee": "x"},
                              headers={"X-CSRF-Token": valid_csrf(client)})

    assert response.status_code == 403
    assert get_alert(pool, alert)["state"] == "open"


def test_alert_actions_need_the_csrf_token(pool, signed_in):
    resident, _ = new_resident(pool)
    alert = raise_alert(pool, resident)

    assert signed_in.post(f"/alerts/{alert}/acknowledge").status_code == 403
    assert get_alert(pool, alert)["state"] == "open"
