"""A resident's time in bed, planned one noon-to-noon window at a time (pure, seeded)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from .population import SleepHabits

WINDOW_START = time(12, 0)  # a window runs from noon to the next noon: nap, evening, night


@dataclass(frozen=True)
class Span:
    """One stay in bed; asleep between `asleep_from` and `asleep_until`."""

    start: datetime
    end: datetime
    asleep_from: datetime
    asleep_until: datetime

    def asleep(self, t: datetime) -> bool:
        return self.asleep_from <= t < self.asleep_until


@dataclass(frozen=True)
class Fall:
    at: datetime
    confidence: float


@dataclass(frozen=True)
class Episode:
    """A spell of raised heart rate (`heart`) or breathing rate (`breath`)."""

    start: datetime
    end: datetime
    kind: str


@dataclass(frozen=True)
class NightPlan:
    start: datetime
    end: datetime
    spans: tuple[Span, ...]
    falls: tuple[Fall, ...]
    episodes: tuple[Episode, ...]

    def span_at(self, t: datetime) -> Span | None:
        for span in self.spans:
            if span.start <= t < span.end:
                return span
        return None

    def episode_at(self, t: datetime) -> Episode | None:
        for episode in self.episodes:
            if episode.start <= t < episode.end:
                return episode
        return None


def window_day(t: datetime, tz: tzinfo) -> date:
    """The date whose noon starts the window holding `t`."""
    return (t.astimezone(tz) - timedelta(hours=12)).date()


def _minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def plan_window(habits: SleepHabits, seed: object, day: date, tz: tzinfo) -> NightPlan:
    """Stays in bed from noon of `day` to the next noon: a nap, the night, its exits and falls."""
    rng = random.Random(f"night:{seed}:{day.isoformat()}")
    noon = datetime.combine(day, WINDOW_START, tz)
    midnight = datetime.combine(day, time(0), tz)
    spans: list[Span] = []
    falls: list[Fall] = []
    episodes: list[Episode] = []

    if rng.random() < habits.nap_p:
        start = noon + _minutes(rng, 60, 150)
        end = start + _minutes(rng, 30, 90)
        spans.append(Span(start, end, start + _minutes(rng, 5, 15), end - _minutes(rng, 1, 4)))

    bedtime = midnight + timedelta(minutes=habits.bedtime_min + rng.gauss(0, 15))
    wake = midnight + timedelta(days=1, minutes=habits.wake_min + rng.gauss(0, 15))
    onset = bedtime + _minutes(rng, 10, 40)
    exits = sorted(
        onset + (wake - onset - timedelta(minutes=20)) * rng.random()
        for _ in range(min(_poisson(rng, habits.exits_per_night), 4))
    )
    start, asleep_from = bedtime, onset
    for exit_at in exits:
        if start is None or exit_at < start + timedelta(minutes=20):
            continue  # still out from the last exit, or just back
        spans.append(Span(start, exit_at, asleep_from, exit_at - _minutes(rng, 0.5, 3)))
        long_exit = rng.random() < habits.no_return_p
        back = exit_at + (_minutes(rng, 40, 150) if long_exit else _minutes(rng, 2, 12))
        if long_exit and rng.random() < habits.fall_p:
            falls.append(Fall(exit_at + _minutes(rng, 1, 4), round(rng.uniform(0.55, 0.95), 2)))
        if back >= wake - timedelta(minutes=15):
            start = None  # up for the day
            continue
        start, asleep_from = back, back + _minutes(rng, 5, 20)
    if start is not None:
        spans.append(Span(start, wake, asleep_from, wake - _minutes(rng, 5, 30)))

    if spans and rng.random() < habits.episode_p:
        at = onset + (wake - onset) * rng.uniform(0.1, 0.8)
        episodes.append(Episode(at, at + _minutes(rng, 10, 30), rng.choice(["heart", "breath"])))
    return NightPlan(noon, noon + timedelta(days=1), tuple(spans), tuple(falls), tuple(episodes))
