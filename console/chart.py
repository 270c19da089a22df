"""Geometry of the vitals charts: heart rate, breathing rate and in-bed periods on one time axis
(a bed row's sparkline: heart rate and in-bed periods), as SVG path data the template draws.
Pure: points in, shapes out; no I/O, no JavaScript."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

WIDTH = 1000  # viewBox units; the SVG scales to its box
LEFT, RIGHT = 44, 12
PLOT = WIDTH - LEFT - RIGHT
IN_BED = 0.5  # a bucket counts as in bed when at least half of its samples were occupied
# A sparkline's heart-rate band and the in-bed strip under it, in viewBox units: a row's SVG
# stretches them to its box. The pad keeps a line at the edge of the range from being clipped.
SPARK_LINE, SPARK_STRIP, SPARK_PAD = 60, 14, 3


@dataclass(frozen=True)
class Series:
    """One vital: which keys to read, the plausible range always shown, grid step, panel size."""

    key: str
    label: str
    unit: str
    floor: float
    ceiling: float
    step: float
    height: int


HEART = Series("heart_rate", "Heart rate", "bpm", 40, 120, 20, 130)
BREATH = Series("respiration_rate", "Breathing", "/min", 8, 28, 5, 90)


def x_of(ts: datetime, start: datetime, end: datetime) -> float:
    """Where a time falls on the x axis."""
    span = (end - start).total_seconds() or 1.0
    return round(LEFT + PLOT * (ts - start).total_seconds() / span, 1)


def domain(values: Sequence[float], series: Series) -> tuple[float, float]:
    """The y range: the plausible range, widened to the data, on whole grid steps."""
    lo = min([series.floor, *values])
    hi = max([series.ceiling, *values])
    return math.floor(lo / series.step) * series.step, math.ceil(hi / series.step) * series.step


def segments(points: Sequence[Mapping[str, Any]], key: str, gap: timedelta) -> list[list[tuple[datetime, float]]]:
    """Runs of consecutive points with a value; a missing value or a gap in time breaks a run."""
    runs: list[list[tuple[datetime, float]]] = []
    previous: datetime | None = None
    for point in points:
        value, ts = point.get(key), point["ts"]
        if value is None:
            previous = None
            continue
        if previous is None or ts - previous > gap:
            runs.append([])
        runs[-1].append((ts, float(value)))
        previous = ts
    return runs


def in_bed_periods(points: Sequence[Mapping[str, Any]], step: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) periods in bed, merged across adjacent buckets."""
    periods: list[list[datetime]] = []
    for point in points:
        occupied = point.get("occupancy")
        if occupied is None:
            occupied = 1.0 if point.get("occupied") else 0.0
        if occupied < IN_BED:
            continue
        ts = point["ts"]
        if periods and ts - periods[-1][1] <= step / 2:
            periods[-1][1] = ts + step
        else:
            periods.append([ts, ts + step])
    return [(a, b) for a, b in periods]


def _panel(points, series: Series, top: int, start, end, gap) -> dict[str, Any]:
    values = [float(p[series.key]) for p in points if p.get(series.key) is not None]
    lows = [float(p[f"{series.key}_min"]) for p in points if p.get(f"{series.key}_min") is not None]
    highs = [float(p[f"{series.key}_max"]) for p in points if p.get(f"{series.key}_max") is not None]
    lo, hi = domain(values + lows + highs, series)

    def y(v: float) -> float:
        return round(top + series.height * (hi - v) / (hi - lo), 1)

    line, band = [], []
    for run in segments(points, series.key, gap):
        line.append("M" + " L".join(f"{x_of(t, start, end)},{y(v)}" for t, v in run))
    for run in segments(points, f"{series.key}_max", gap):
        lows_by_ts = {p["ts"]: p.get(f"{series.key}_min") for p in points}
        bottom = [(t, float(lows_by_ts[t])) for t, _ in run if lows_by_ts.get(t) is not None]
        if len(bottom) == len(run) and len(run) > 1:
            edge = " L".join(f"{x_of(t, start, end)},{y(v)}" for t, v in run)
            back = " L".join(f"{x_of(t, start, end)},{y(v)}" for t, v in reversed(bottom))
            band.append(f"M{edge} L{back} Z")
    grid = [{"y": y(v), "value": int(v)} for v in _steps(lo, hi, series.step)]
    return {
        "key": series.key, "label": series.label, "unit": series.unit, "top": top, "height": series.height,
        "line": " ".join(line), "band": " ".join(band), "grid": grid, "count": len(values),
        "mean": round(sum(values) / len(values)) if values else None,
        "latest": round(values[-1]) if values else None,
        "low": round(min(lows or values)) if values else None, "high": round(max(highs or values)) if values else None,
    }


def vitals_chart(
    points: Sequence[Mapping[str, Any]], start: datetime, end: datetime, step: timedelta,
) -> dict[str, Any]:
    """Everything the template needs to draw one chart over [start, end)."""
    points = [p for p in points if start <= p["ts"] < end]
    gap = step * 1.5 if step > timedelta(0) else timedelta(minutes=2)
    heart = _panel(points, HEART, 8, start, end, gap)
    breath_top = 8 + HEART.height + 26
    breath = _panel(points, BREATH, breath_top, start, end, gap)
    bed_top = breath_top + BREATH.height + 22
    periods = in_bed_periods(points, step)
    axis_y = bed_top + 18 + 16
    return {
        "width": WIDTH, "height": axis_y + 6, "left": LEFT, "right": WIDTH - RIGHT,
        "panels": [heart, breath],
        "bed": {"top": bed_top, "height": 18, "periods": _bars(periods, start, end),
                "hours": round(sum((min(b, end) - a).total_seconds() for a, b in periods) / 3600, 1)},
        "ticks": [{"x": x_of(t, start, end), "at": _iso(t), "day": (end - start) > timedelta(days=2)}
                  for t in _time_ticks(start, end)],
        "axis_y": axis_y, "points": len(points), "start": _iso(start), "end": _iso(end),
    }


def sparkline(
    points: Sequence[Mapping[str, Any]], start: datetime, end: datetime, step: timedelta,
) -> dict[str, Any]:
    """A small chart of [start, end) for a table row: the heart-rate line over an in-bed strip."""
    points = [p for p in points if start <= p["ts"] < end]
    values = [float(p[HEART.key]) for p in points if p.get(HEART.key) is not None]
    lo, hi = domain(values, HEART)

    # x_of and a y of its kind, with their constants taken out: a district page draws 6,000
    # points, and this is the page's largest cost after its one query.
    origin, span = start.timestamp(), (end - start).total_seconds() or 1.0
    x_scale, y_scale = PLOT / span, (SPARK_LINE - 2 * SPARK_PAD) / (hi - lo)
    line = " ".join(
        "M" + " L".join(f"{LEFT + (t.timestamp() - origin) * x_scale:.1f},{SPARK_PAD + (hi - v) * y_scale:.1f}"
                        for t, v in run)
        for run in segments(points, HEART.key, step * 1.5))
    return {
        "left": LEFT, "width": PLOT, "height": SPARK_LINE + SPARK_STRIP, "line": line,
        "strip_top": SPARK_LINE, "strip_height": SPARK_STRIP,
        "periods": _bars(in_bed_periods(points, step), start, end), "points": len(points),
    }


def _bars(periods: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """In-bed periods as rectangles on the x axis, at least one unit wide so a minute shows."""
    return [{"x": x_of(a, start, end), "w": max(1.0, round(x_of(min(b, end), start, end) - x_of(a, start, end), 1)),
             "start": _iso(a), "end": _iso(min(b, end))} for a, b in periods]


def _steps(lo: float, hi: float, step: float) -> list[float]:
    count = int(round((hi - lo) / step))
    return [lo + i * step for i in range(count + 1)]


def _time_ticks(start: datetime, end: datetime) -> list[datetime]:
    """Every 3 hours over a day or so, every day at midnight UTC over a week."""
    every = timedelta(days=1) if end - start > timedelta(days=2) else timedelta(hours=3)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    first = epoch + math.ceil((start - epoch) / every) * every
    ticks, t = [], first
    while t < end:
        ticks.append(t)
        t += every
    return ticks


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
