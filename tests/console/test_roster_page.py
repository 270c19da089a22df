"""The providers roster: shift, load, jobs, the map, and the dispatcher's shift switch."""

from __future__ import annotations

import re

from .conftest import csrf_in, sign_in, valid_csrf
from .dispatching import assign, new_provider, new_resident, open_request, set_shift


def test_the_roster_shows_shift_load_jobs_and_the_map(pool, signed_in):
    pid, _ = new_provider(pool, ["mobility"], "Roster Carer")
    set_shift(pool, pid, True)
    try:
        resident, _ = new_resident(pool, "Roster Resident")
        request = open_request(pool, resident, "mobility")
        assign(pool, request, pid)

        page = signed_in.get("/providers")
    finally:
        set_shift(pool, pid, False)

    assert page.status_code == 200
    row = page.text.split(f'data-provider="{pid}"', 1)[1].split("</tr>", 1)[0]
    assert "Roster Carer" in row and "On shift" in row and "1/5" in row
    assert f"/requests/{request}" in row and "Roster Resident" in row
    svg = page.text.split('<svg class="schematic"', 1)[1].split("</svg>", 1)[0]
    assert "Roster Carer" in svg and f"/requests/{request}" in svg
    assert re.search(r'<line class="map-link" x1="[\d.]+"', svg)  # provider linked to the job


def test_a_dispatcher_switches_a_providers_shift(pool, signed_in):
    pid, _ = new_provider(pool, ["meal"], "Shifty Carer")
    token = csrf_in(signed_in.get("/providers").text)

    signed_in.post(f"/providers/{pid}/shift", data={"csrf_token": token, "on_shift": "true"})
    row = signed_in.get("/providers").text.split(f'data-provider="{pid}"', 1)[1].split("</tr>", 1)[0]
    signed_in.post(f"/providers/{pid}/shift", data={"csrf_token": token, "on_shift": "false"})

    assert "On shift" in row
    assert "Off" in signed_in.get("/providers").text.split(f'data-provider="{pid}"', 1)[1].split("</tr>", 1)[0]


def test_a_provider_gets_403_on_the_roster_and_its_action(pool, client, provider_user):
    pid, _ = new_provider(pool, ["meal"])
    sign_in(client, provider_user)

    assert client.get("/providers").status_code == 403
    response = client.post(f"/providers/{pid}/shift", data={"csrf_token": valid_csrf(client), "on_shift": "true"})
    assert response.status_code == 403
