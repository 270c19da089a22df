"""The providers roster: shift, load, jobs, the map, and the admin's shift switch (http-v1 gives
dispatchers only read access to providers)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from homecare.auth import Role

from .conftest import csrf_in, make_user, sign_in, valid_csrf
from .dispatching import assign, new_provider, new_resident, open_request, set_shift, went_on_shift


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


def _row(page: str, pid: str) -> str:
    return page.split(f'data-provider="{pid}"', 1)[1].split("</tr>", 1)[0]


def test_an_admin_switches_a_providers_shift(pool, client):
    # An admin, not a dispatcher: http-v1 gives dispatchers only read access to providers.
    pid, _ = new_provider(pool, ["meal"], "Shifty Carer")
    assert sign_in(client, make_user(pool, Role.ADMIN)).status_code == 303
    token = csrf_in(client.get("/providers").text)

    client.post(f"/providers/{pid}/shift", data={"csrf_token": token, "on_shift": "true"})
    row = _row(client.get("/providers").text, pid)
    client.post(f"/providers/{pid}/shift", data={"csrf_token": token, "on_shift": "false"})

    assert "On shift" in row and "End shift" in row
    assert "Off" in _row(client.get("/providers").text, pid)


def test_a_dispatcher_reads_the_roster_but_cannot_switch_a_shift(pool, signed_in):
    pid, _ = new_provider(pool, ["meal"], "Fixed Carer")
    page = signed_in.get("/providers")
    assert page.status_code == 200
    row = _row(page.text, pid)
    assert "Fixed Carer" in row and "Start shift" not in row and "/shift" not in row

    response = signed_in.post(f"/providers/{pid}/shift", data={"csrf_token": valid_csrf(signed_in), "on_shift": "true"})
    assert response.status_code == 403
    assert "Off" in _row(signed_in.get("/providers").text, pid)


def test_a_provider_gets_403_on_the_roster_and_its_action(pool, client, provider_user):
    pid, _ = new_provider(pool, ["meal"])
    sign_in(client, provider_user)

    assert client.get("/providers").status_code == 403
    response = client.post(f"/providers/{pid}/shift", data={"csrf_token": valid_csrf(client), "on_shift": "true"})
    assert response.status_code == 403


def test_a_provider_whose_app_went_quiet_shows_as_unreachable(pool, signed_in):
    quiet, _ = new_provider(pool, ["meal"], "Quiet Carer")
    alive, _ = new_provider(pool, ["meal"], "Alive Carer")
    went_on_shift(pool, quiet, datetime.now(UTC) - timedelta(minutes=10))  # and never heard from since
    set_shift(pool, alive, True)
    try:
        page = signed_in.get("/providers").text
    finally:
        set_shift(pool, quiet, False)
        set_shift(pool, alive, False)
    row = _row(page, quiet)
    assert 'class="prov-unreachable"' in page.split(f'data-provider="{quiet}"', 1)[0].rsplit("<tr", 1)[1]
    assert 'data-presence="unreachable"' in row and "Unreachable" in row and "last heard" in row
    assert "Unreachable" not in _row(page, alive) and "On shift" in _row(page, alive)
    assert re.search(r"<b>\d+</b> unreachable", page)
    svg = page.split('<svg class="schematic"', 1)[1].split("</svg>", 1)[0]
    assert "map-prov prov-unreachable" in svg
