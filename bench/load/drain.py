"""Capacity of a consumer, measured by draining a backlog: pause it (SIGSTOP) while the devices
keep sending, so the broker queues for it; resume it and watch its durable count climb until it
has caught up. The slope of that climb is what it can store per second at saturation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Drain:
    paused_s: float
    backlog_samples: int
    catch_up_s: float | None
    samples_per_s: float | None  # slope while draining (least squares), None if it never caught up
    points: int

    def as_dict(self) -> dict:
        return {
            "paused_s": round(self.paused_s, 1), "backlog_samples": self.backlog_samples,
            "catch_up_s": None if self.catch_up_s is None else round(self.catch_up_s, 1),
            "samples_per_s": None if self.samples_per_s is None else round(self.samples_per_s),
            "points": self.points,
        }


def measure_drain(
    pause: Callable[[], None], resume: Callable[[], None], stored: Callable[[], int | None],
    offered: Callable[[], int], paused_s: float, timeout_s: float = 300.0, poll_s: float = 0.25,
) -> Drain:
    """Pause, wait, resume; follow `stored()` until it reaches what was `offered()` by the resume
    (less the lag it had before the pause)."""
    lag_before = offered() - (stored() or 0)  # may be negative: the bare pipe stores broken data too
    pause()
    try:
        time.sleep(paused_s)
        target = offered() - lag_before
        backlog = max(0, target - (stored() or 0))
    finally:
        resume()
    resumed = time.monotonic()
    at_resume = stored()
    series: list[tuple[float, int]] = [] if at_resume is None else [(0.0, at_resume)]
    caught: float | None = None
    while time.monotonic() - resumed < timeout_s:
        value = stored()
        if value is not None:
            series.append((time.monotonic() - resumed, value))
            if value >= target:
                caught = series[-1][0]
                break
        time.sleep(poll_s)
    return Drain(paused_s, backlog, caught, _slope(series, caught), len(series))


def _slope(series: list[tuple[float, int]], until: float | None) -> float | None:
    """Least-squares slope of the climb, leaving out the warm-up before the count first moves."""
    if until is None or len(series) < 2:
        return None
    first = series[0][1]
    moving = next((i for i, (_, v) in enumerate(series) if v > first), None)
    if moving is None:
        return None
    points = series[max(0, moving - 1):]
    if len(points) < 4:
        t0, v0 = points[0]
        t1, v1 = points[-1]
        return (v1 - v0) / (t1 - t0) if t1 > t0 else None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return cov / var if var else None
