"""The district beds overview's data, on the real database, at a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.beds_data import ago, bed_row, district_beds, districts
from console.chart import x_of
from homecare.errors import NotFound

from .districts import night


def test_each_bed_of_the_district_with_its_state_those_needing_a_look_first(pool):
    n = night(pool)

    with pool.connection() as conn:
        view = district_beds(conn, n.name, n.now)

    rows = {r["resident_name"].split()[0]: r for r in view["rows"]}
    # Out of bed first, then the beds that say nothing (by name), then those asleep.
    assert list(rows) == ["Wanderer", "Newbie", "Quiet", "Asleep"]
    assert n.neighbour_bed not in {r["bed_id"] for r in view["rows"]}
    assert {who: r["bed_id"] for who, r in rows.items()} == {who: n.beds[who] for who in rows}
    assert {who: r["resident_id"] for who, r in rows.items()} == {who: n.residents[who] for who in rows}
    assert {who: (r["state"], r["stale"]) for who, r in rows.items()} == {
        "Wanderer": ("out_of_bed", False), "Newbie": ("no_data", True),
        "Quiet": ("in_bed", True), "Asleep": ("in_bed", False),
    }
    assert (rows["Asleep"]["age_s"], rows["Asleep"]["ago"]) == (5, "just now")
    assert (rows["Quiet"]["age_s"], rows["Quiet"]["ago"]) == (30 * 60 + 5, "30 min ago")
    assert (rows["Newbie"]["age_s"], rows["Newbie"]["last_sample"]) == (None, None)
    assert (rows["Asleep"]["heart_rate"], rows["Asleep"]["respiration_rate"]) == (62, 14)
    assert (rows["Wanderer"]["heart_rate"], rows["Quiet"]["heart_rate"]) == (None, 70)
    assert view["counts"] == {"out_of_bed": 1, "no_data": 1, "in_bed": 2} and view["stale"] == 1
    assert view["without_bed"] == [{"id": n.residents["Nobed"], "name": f"Nobed {n.name[-8:]}"}]
    assert (view["start"], view["end"]) == (n.end - timedelta(hours=1), n.end)


def test_the_sparklines_are_drawn_from_the_stored_minutes(pool):
    n = night(pool)
    start, end = n.end - timedelta(hours=1), n.end

    with pool.connection() as conn:
        rows = {r["resident_name"].split()[0]: r for r in district_beds(conn, n.name, n.now)["rows"]}

    asleep = rows["Asleep"]["spark"]
    assert asleep["points"] == 60  # a sample every 20 s for the whole hour
    # In bed for the last 20 minutes: one period, and the heart rate only then, in one run.
    assert [(b["x"], b["start"][11:16]) for b in asleep["periods"]] == [
        (x_of(end - timedelta(minutes=20), start, end), f"{end - timedelta(minutes=20):%H:%M}")]
    assert asleep["line"].count("M") == 1 and asleep["line"].count(" L") == 19
    assert asleep["line"].startswith(f"M{x_of(end - timedelta(minutes=20), start, end)},")
    wanderer = rows["Wanderer"]["spark"]
    assert [b["end"][11:16] for b in wanderer["periods"]] == [f"{end - timedelta(minutes=5):%H:%M}"]
    assert rows["Quiet"]["spark"]["points"] == 30 and rows["Newbie"]["spark"]["points"] == 0
    assert rows["Newbie"]["spark"]["line"] == "" and rows["Newbie"]["spark"]["periods"] == []


def test_the_districts_with_their_residents_and_beds(pool):
    n = night(pool)

    with pool.connection() as conn:
        found = {d["name"]: d for d in districts(conn)}

    assert found[n.name] == {"name": n.name, "residents": 5, "beds": 4}
    assert found[f"{n.name} (next door)"]["beds"] == 1


@pytest.mark.parametrize("name", ["", "Nowhere at all", "x" * 10_000, "bad\x00name", "Night district"])
def test_an_unknown_or_impossible_district_is_not_found(pool, name):
    with pool.connection() as conn, pytest.raises(NotFound):
        district_beds(conn, name)


def test_a_bed_row_and_its_age_without_a_database():
    now = datetime(2026, 11, 28, 3, 0, 45, tzinfo=UTC)
    latest = {"ts": now + timedelta(seconds=3), "occupied": False, "heart_rate": None, "respiration_rate": None}

    row = bed_row("res-1", "Somebody", "bed-1", latest, [], now, now - timedelta(hours=1), now)

    assert (row["state"], row["stale"], row["age_s"]) == ("out_of_bed", False, 0)  # a bed's clock ahead of ours
    assert [ago(s) for s in (None, 59, 60, 3599, 3660, 90_000)] == [
        "never", "just now", "1 min ago", "59 min ago", "1 h 1 min ago", "1 d ago"]
