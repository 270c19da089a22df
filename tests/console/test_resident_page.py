"""The resident view: profile, devices, charts from the rollups, alert and request history."""

from __future__ import annotations

import re

import pytest

from .alerting import raise_alert
from .conftest import sign_in
from .dispatching import cancel_request, new_resident, open_request
from .vitals import fill, provision

CONTACTS = [{"name": "Li Na", "phone": "+86 137 0000 1111", "relation": "niece"}]


def test_the_resident_page_shows_profile_devices_charts_and_history(pool, signed_in):
    resident, name = new_resident(pool, "Zhou Fang", contacts=CONTACTS)
    bed = provision(pool, resident, "bed")
    button = provision(pool, resident, "button")
    fill(pool, bed, resident)
    alert = raise_alert(pool, resident, summary="Suspected fall by the bed")
    closed = open_request(pool, resident, "meal")
    cancel_request(pool, closed)
    active = open_request(pool, resident, "escort")

    page = signed_in.get(f"/residents/{resident}")

    assert page.status_code == 200
    html = page.text
    assert "Zhou Fang" in html and "Li Na" in html and "+86 137 0000 1111" in html
    assert f'data-device="{bed}"' in html and f'data-device="{button}"' in html
    assert "Never seen" in html  # neither device has connected
    charts = re.findall(r'<svg class="vitals"[^>]*data-points="(\d+)"', html)
    assert len(charts) == 2 and all(int(n) > 100 for n in charts)  # 24 h and 7 days, both with data
    assert re.search(r'<path class="line" d="M[\d.]+,[\d.]+ L', html)
    assert 'class="bed-period"' in html
    history = html.split('id="alert-history"', 1)[1]
    assert f"/alerts/{alert}" in history and "Suspected fall" in history
    requests = html.split('id="request-history"', 1)[1]
    assert requests.index(f"/requests/{active}") < requests.index(f"/requests/{closed}")  # open ones first


def test_a_resident_without_devices_or_history(pool, signed_in):
    resident, _ = new_resident(pool)

    html = signed_in.get(f"/residents/{resident}").text

    assert "No bed sensor" in html and "No alerts" in html and "No requests yet" in html


def test_an_unknown_resident_is_a_404_page(signed_in):
    assert signed_in.get("/residents/res-nobody").status_code == 404


@pytest.mark.parametrize("path", ["/residents/{id}"])
def test_a_provider_gets_403_on_the_resident_page(pool, client, provider_user, path):
    resident, _ = new_resident(pool)
    sign_in(client, provider_user)

    assert client.get(path.format(id=resident)).status_code == 403
