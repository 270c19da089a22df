"""Input the database or JSON cannot hold is a 422 naming the field, never a 500 (issue 12)."""

from __future__ import annotations

import pytest

RESIDENT = {"name": "Wang Fang", "address": "1 Test Road", "district": "Huangpu",
            "location": {"lat": 31.2, "lon": 121.4}}


def locs(response) -> list[list]:
    assert response.status_code == 422, (response.status_code, response.text[:300])
    return [e["loc"] for e in response.json()["detail"]]


def test_a_nul_byte_in_the_unauthenticated_token_form_names_the_field(client):
    r = client.post("/api/v1/auth/token", data={"username": "a\x00b", "password": "x"})
    assert locs(r) == [["body", "username"]]


def test_a_nul_byte_in_the_console_login_names_the_field(client):
    r = client.post("/login", data={"username": "a\x00b", "password": "x", "csrf_token": "t"},
                    headers={"Cookie": "homecare_login_csrf=t"})
    assert locs(r) == [["body", "username"]]


def test_a_nul_byte_in_a_query_or_path_names_it(client, dispatcher):
    assert locs(client.get("/api/v1/residents", params={"q": "\x00"}, headers=dispatcher)) == [["query", "q"]]
    assert locs(client.get("/api/v1/residents/a%00b", headers=dispatcher)) == [["path"]]


@pytest.mark.parametrize("raw, loc", [
    ('{"phone": "1\\u00002"}', ["body", "contacts", 0, "phone"]),
    ('{"phone": "\\ud800"}', ["body", "contacts", 0, "phone"]),
])
def test_unstorable_strings_in_json_name_the_field(client, dispatcher, raw, loc):
    body = ('{"name": "A", "address": "b", "district": "c", "location": {"lat": 1, "lon": 1},'
            f' "contacts": [{{"name": "x", "relation": "son", {raw[1:]}]}}')
    r = client.post("/api/v1/residents", content=body,
                    headers={**dispatcher, "content-type": "application/json"})
    assert locs(r) == [loc]


def test_nan_and_infinite_numbers_name_the_field(client, dispatcher):
    body = '{"name": "A", "address": "b", "district": "c", "location": {"lat": NaN, "lon": 1e400}}'
    r = client.post("/api/v1/residents", content=body, headers={**dispatcher, "content-type": "application/json"})
    assert locs(r) == [["body", "location", "lat"], ["body", "location", "lon"]]


def test_an_offset_beyond_int64_names_the_field(client, dispatcher):
    r = client.get("/api/v1/devices", params={"offset": "9223372036854775808"}, headers=dispatcher)
    assert locs(r) == [["query", "offset"]]


@pytest.mark.parametrize("param", ["end", "start"])
def test_dates_at_the_edge_of_the_calendar_are_422(client, dispatcher, param):
    for path in ("/api/v1/reports/sla", "/api/v1/devices/bed-x/vitals", "/api/v1/residents/res-x/observations"):
        value = "0001-01-01T00:00:00Z" if param == "end" else "9999-12-31T23:00:00Z"
        r = client.get(path, params={param: value}, headers=dispatcher)
        assert r.status_code in (404, 422), (path, r.status_code, r.text)


def test_a_422_does_not_echo_large_input(client, dispatcher):
    big = "x" * 200_000
    r = client.post("/api/v1/residents", json={**RESIDENT, "name": big}, headers=dispatcher)
    assert locs(r) == [["body", "name"]]
    assert len(r.content) < 1000


def test_a_body_over_the_limit_is_413_before_it_is_read(client, dispatcher):
    r = client.post("/api/v1/residents", json={**RESIDENT, "notes": "x" * 10_000_000}, headers=dispatcher)
    assert r.status_code == 413 and len(r.content) < 1000
