"""Reports: the pure pivots and charts, and the page and CSV on the real database."""

from __future__ import annotations

import csv
import io
from datetime import date

from console import reports

from .conftest import sign_in
from .dispatching import assign, cancel_request, new_provider, new_resident, open_request

DAYS = reports.days_between(date(2026, 11, 27), date(2026, 11, 29))


def row(day, service, district, requests=1, met=0, judged=0, **extra):
    return {"day": day, "service": service, "district": district, "requests": requests, "met": met,
            "arrive_judged": judged, **extra}


def test_per_day_fills_empty_days_and_sums_districts():
    rows = [row("2026-11-27", "meal", "A", 2, 1, 2), row("2026-11-27", "meal", "B", 1, 1, 1),
            row("2026-11-29", "emergency", "A", 1, 0, 1)]

    shaped = reports.per_day(rows, DAYS)

    assert shaped["days"] == ["2026-11-27", "2026-11-28", "2026-11-29"]
    assert shaped["volume"]["meal"] == [3, 0, 0] and shaped["volume"]["emergency"] == [0, 0, 1]
    assert shaped["share"] == [round(2 / 3, 4), None, 0.0]


def test_totals_per_district_with_target_shares():
    rows = [row("d", "meal", "A", 2, 1, 2, ack_met=2, ack_judged=2), row("d", "bathing", "A", 1, 0, 1),
            row("d", "meal", None, 1)]

    by = {r["district"]: r for r in reports.totals(rows, "district")}

    assert by["A"]["requests"] == 3 and by["A"]["met_share"] == round(1 / 3, 4) and by["A"]["ack_share"] == 1.0
    assert by["unknown"]["met_share"] is None


def test_the_volume_chart_stacks_services_under_a_round_top():
    chart = reports.volume_chart(["d1", "d2"], {"meal": [3, 0], "emergency": [2, 7]})

    tops = {g["value"] for g in chart["grid"]}
    assert max(tops) == 10 and chart["total"] == 12
    day1 = [b for b in chart["bars"] if b["day"] == "d1"]
    assert len(day1) == 2 and abs(sum(b["h"] for b in day1) - (220 - 22 - 10) * 5 / 10) < 0.5


def test_the_share_chart_colours_by_tone_and_skips_days_without_judged_requests():
    chart = reports.share_chart(["d1", "d2", "d3"], [0.95, None, 0.5])

    assert [b["tone"] for b in chart["bars"]] == ["good", "poor"]
    assert [b["label"] for b in chart["bars"]] == ["95%", "50%"]


def test_the_reports_page_and_csv(pool, signed_in):
    resident, _ = new_resident(pool, district="Report District")
    done = open_request(pool, resident, "bathing")
    provider, _ = new_provider(pool, ["bathing"])
    assign(pool, done, provider)
    cancel_request(pool, open_request(pool, resident, "meal"))

    page = signed_in.get("/reports")
    download = signed_in.get("/reports/sla.csv")

    assert page.status_code == 200
    assert 'id="volume-chart"' in page.text and 'class="bar service-fill-bathing"' in page.text
    district = page.text.split('id="by-district"', 1)[1].split("</table>", 1)[0]
    assert "Report District" in district
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    mine = [r for r in rows if r["district"] == "Report District"]
    assert {r["service"] for r in mine} == {"bathing", "meal"}
    assert sum(int(r["requests"]) for r in mine) == 2 and sum(int(r["cancelled"]) for r in mine) == 1


def test_a_bad_period_is_explained_not_failed(signed_in):
    page = signed_in.get("/reports", params={"start": "yesterday"})

    assert page.status_code == 200 and "Dates look like" in page.text


def test_a_provider_gets_403_on_reports(client, provider_user):
    sign_in(client, provider_user)

    assert client.get("/reports").status_code == 403
    assert client.get("/reports/sla.csv").status_code == 403
