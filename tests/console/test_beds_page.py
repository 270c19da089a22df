"""The district beds page: one district's beds, the districts to choose from, who may see it."""

from __future__ import annotations

import re

import pytest

from .conftest import sign_in
from .districts import night


def _rows(html: str) -> list[tuple[str, str, str]]:
    """(bed, state, stale) of each bed row, in page order."""
    return re.findall(r'<tr class="bed-row[^"]*" data-bed="([^"]+)" data-state="([^"]+)" data-stale="([^"]+)"', html)


def test_the_page_lists_the_districts_beds_with_their_state_and_last_hour(pool, signed_in):
    n = night(pool)

    page = signed_in.get("/beds", params={"district": n.name})

    assert page.status_code == 200
    html = page.text
    assert _rows(html) == [
        (n.beds["Wanderer"], "out_of_bed", "false"), (n.beds["Newbie"], "no_data", "true"),
        (n.beds["Quiet"], "in_bed", "true"), (n.beds["Asleep"], "in_bed", "false"),
    ]
    assert n.neighbour_bed not in html and "Neighbour" not in html
    for who in ("Asleep", "Wanderer", "Quiet", "Newbie"):
        assert f'href="/residents/{n.residents[who]}"' in html
    assert f'href="/residents/{n.residents["Nobed"]}"' in html.split('id="without-bed"', 1)[1]
    sparks = dict(re.findall(r'data-bed="([^"]+)".*?<svg class="spark"[^>]*data-points="(\d+)"', html, re.S))
    minutes = {who: int(sparks[n.beds[who]]) for who in ("Wanderer", "Newbie", "Quiet", "Asleep")}
    # The page's hour ends at the real clock's next minute, a minute or two after the samples'.
    assert minutes["Newbie"] == 0 and 57 <= minutes["Asleep"] == minutes["Wanderer"] <= 60
    assert 27 <= minutes["Quiet"] <= 30
    asleep = html.split(f'data-bed="{n.beds["Asleep"]}"', 1)[1].split("</tr>", 1)[0]
    assert re.search(r'<path class="line" d="M[\d.]+,[\d.]+ L', asleep) and 'class="bed-period"' in asleep
    assert "62 <span class=\"muted\">bpm</span>" in asleep and 'class="ago" data-since=' in asleep
    assert 'aria-current="page">Beds</a>' in html  # in the navigation
    assert '<meta http-equiv="refresh" content="60">' in html  # a screen left open stays current


def test_without_a_district_the_page_offers_the_districts_with_their_bed_counts(pool, signed_in):
    n = night(pool)

    page = signed_in.get("/beds")

    assert page.status_code == 200
    row = re.search(rf'<tr data-district="{re.escape(n.name)}">(.*?)</tr>', page.text)
    assert row and re.findall(r'<td class="num">(\d+)</td>', row.group(1)) == ["5", "4"]
    assert "/beds?district=Night%20district%20" in row.group(1)
    assert not _rows(page.text)
    assert 'http-equiv="refresh"' not in page.text  # a choice being made is not reloaded away


@pytest.mark.parametrize("district", [
    "Nowhere", "x" * 5000, "<script>alert(1)</script>", "Night district", " ", "%00", "\u202e reversed",
])
def test_an_unknown_district_says_so_and_offers_the_list(pool, signed_in, district):
    n = night(pool)

    page = signed_in.get("/beds", params={"district": district})

    assert page.status_code == 404
    assert 'id="unknown-district"' in page.text and f'data-district="{n.name}"' in page.text
    assert "<script>alert" not in page.text and "x" * 101 not in page.text  # escaped, and cut short


@pytest.mark.parametrize("query", ["district=bad%00name", "district=%00", "district=%ED%A0%80"])
def test_unstorable_input_is_refused_not_an_error(signed_in, query):
    page = signed_in.get(f"/beds?{query}")

    assert 400 <= page.status_code < 500


def test_a_provider_gets_403_and_a_stranger_is_sent_to_sign_in(pool, client, provider_user):
    n = night(pool)
    assert client.get("/beds", params={"district": n.name}).status_code == 303
    sign_in(client, provider_user)

    page = client.get("/beds", params={"district": n.name})

    assert page.status_code == 403 and n.beds["Asleep"] not in page.text
