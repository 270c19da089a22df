"""The vitals chart's geometry, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from console.chart import (
    HEART,
    LEFT,
    PLOT,
    SPARK_LINE,
    SPARK_PAD,
    domain,
    in_bed_periods,
    segments,
    sparkline,
    vitals_chart,
    x_of,
)

T0 = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)


def point(minute: int, hr=None, rr=None, occupancy=1.0, **extra):
    return {"ts": T0 + minute * STEP, "heart_rate": hr, "respiration_rate": rr, "occupancy": occupancy, **extra}


def test_x_runs_from_the_left_edge_to_the_right():
    end = T0 + timedelta(hours=24)
    assert x_of(T0, T0, end) == LEFT
    assert x_of(end, T0, end) == LEFT + PLOT
    assert x_of(T0 + timedelta(hours=12), T0, end) == LEFT + PLOT / 2


def test_the_domain_covers_the_plausible_range_and_the_data_on_grid_steps():
    assert domain([], HEART) == (40, 120)
    assert domain([35, 131], HEART) == (20, 140)


def test_missing_values_and_gaps_break_the_line():
    points = [point(0, 60), point(1, 61), point(2, None), point(3, 62), point(10, 63)]

    runs = segments(points, "heart_rate", STEP * 1.5)

    assert [[v for _, v in run] for run in runs] == [[60, 61], [62], [63]]


def test_in_bed_periods_merge_adjacent_buckets():
    points = [point(0), point(1), point(2, occupancy=0.2), point(3), point(4, occupancy=0.6)]

    assert in_bed_periods(points, STEP) == [(T0, T0 + 2 * STEP), (T0 + 3 * STEP, T0 + 5 * STEP)]


def test_the_chart_draws_each_vital_and_the_bed():
    points = [point(m, 60 + m % 5, 15, heart_rate_min=55, heart_rate_max=80) for m in range(60)]

    chart = vitals_chart(points, T0, T0 + timedelta(hours=1), STEP)

    heart, breath = chart["panels"]
    assert heart["line"].startswith(f"M{LEFT}") and heart["line"].count(" L") == 59
    assert heart["band"].endswith("Z")
    assert breath["line"] and breath["mean"] == 15
    assert heart["low"] == 55 and heart["high"] == 80
    assert chart["bed"]["hours"] == 1.0 and len(chart["bed"]["periods"]) == 1
    assert chart["points"] == 60


def test_points_outside_the_range_are_not_drawn_and_no_data_draws_nothing():
    chart = vitals_chart([point(-5, 70)], T0, T0 + timedelta(hours=1), STEP)

    assert chart["points"] == 0
    assert chart["panels"][0]["line"] == "" and chart["panels"][0]["mean"] is None
    assert chart["bed"]["periods"] == []


def test_a_week_gets_a_tick_per_day_and_a_day_one_every_three_hours():
    week = vitals_chart([], T0, T0 + timedelta(days=7), timedelta(hours=1))
    day = vitals_chart([], T0, T0 + timedelta(days=1), STEP)

    assert len(week["ticks"]) == 7 and all(t["day"] for t in week["ticks"])
    assert len(day["ticks"]) == 8 and not any(t["day"] for t in day["ticks"])


def test_a_sparkline_draws_the_heart_rate_over_the_in_bed_strip():
    end = T0 + timedelta(hours=1)
    points = [point(m, 120 if m == 30 else 60, occupancy=1.0 if m >= 30 else 0.0) for m in range(60)]
    points[10]["heart_rate"] = None  # a minute without a heart rate breaks the line

    spark = sparkline([point(-1, 70), *points], T0, end, STEP)

    assert spark["points"] == 60 and (spark["left"], spark["width"]) == (LEFT, PLOT)
    assert spark["line"].count("M") == 2 and spark["line"].startswith(f"M{x_of(T0, T0, end)},")
    assert f"{x_of(T0 + 30 * STEP, T0, end)},{SPARK_PAD}" in spark["line"]  # 120 bpm: the top
    assert f"{x_of(T0 + 31 * STEP, T0, end)},{SPARK_LINE - SPARK_PAD}" not in spark["line"]  # 60 is not the floor
    assert [(b["x"], b["start"], b["end"]) for b in spark["periods"]] == [
        (x_of(T0 + 30 * STEP, T0, end), "2026-11-28T00:30:00Z", "2026-11-28T01:00:00Z")]


def test_a_sparkline_without_points_draws_an_empty_strip():
    spark = sparkline([], T0, T0 + timedelta(hours=1), STEP)

    assert spark["line"] == "" and spark["periods"] == [] and spark["points"] == 0
