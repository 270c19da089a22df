"""CSV cells a spreadsheet would run as formulas come out as text (issue 12)."""

from __future__ import annotations

import csv
import io
import re
import uuid

from services.dispatch.reports import sla_csv

EVIL = '=HYPERLINK("http://evil.example","x")'


def test_cells_starting_like_a_formula_are_quoted():
    for start in ("=", "+", "-", "@", "\t", "\r"):
        text = sla_csv([{"service": "meal", "district": f"{start}1+1", "met": -3}])
        row = next(csv.DictReader(io.StringIO(text, newline="")))
        assert row["district"] == "'" + start.replace("\r", "\n") + "1+1" and row["met"] == "-3"


def _district_rows(text: str, district: str) -> list[dict]:
    return [r for r in csv.DictReader(io.StringIO(text, newline="")) if district in r["district"]]


def test_the_sla_csv_of_the_api_and_the_console_neutralises_a_formula_district(client, admin):
    district = f"{EVIL}{uuid.uuid4().hex[:4]}"
    resident = client.post("/api/v1/residents", json={
        "name": "Wang Fang", "address": "1 Test Road", "district": district,
        "location": {"lat": 31.2, "lon": 121.4}}, headers=admin).json()
    assert client.post("/api/v1/requests", json={"resident_id": resident["id"], "service": "meal"},
                       headers=admin).status_code == 201
    api = client.get("/api/v1/reports/sla", params={"format": "csv"}, headers=admin)
    assert [r["district"] for r in _district_rows(api.text, district)] == [f"'{district}"]

    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    from homecare.auth import Role

    from .conftest import PASSWORD, new_account

    name = new_account(client.app.state.pool, Role.ADMIN)
    assert client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf}).status_code == 303
    page = client.get("/reports/sla.csv")
    client.cookies.clear()
    assert page.status_code == 200, page.text[:200]
    assert [r["district"] for r in _district_rows(page.text, district)] == [f"'{district}"]
