"""The simulated clock, and the moment (simulated and wall time together) behaviour runs at.

Behaviour follows simulated time, which may run `speed` times faster than real time. Everything
a device stamps (`ts`) is wall-clock time, because the platform accepts only timestamps between
now - 7 days and now + 5 minutes. A simulated instant in the past maps to the wall instant at
which the simulation passed it, so no timestamp is ever ahead of the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo


@dataclass(frozen=True)
class Moment:
    """One instant seen two ways: `sim` drives behaviour, `wall` stamps messages."""

    sim: datetime
    wall: datetime
    speed: float = 1.0

    def wall_of(self, sim_t: datetime) -> datetime:
        """Wall time at which the simulation passed `sim_t` (never later than `wall`)."""
        if sim_t >= self.sim:
            return self.wall
        return self.wall - (self.sim - sim_t) / self.speed

    def after(self, real_seconds: float) -> Moment:
        """The moment `real_seconds` of wall time later (for tests and replays)."""
        return Moment(
            self.sim + timedelta(seconds=real_seconds * self.speed),
            self.wall + timedelta(seconds=real_seconds),
            self.speed,
        )


class SimClock:
    """Simulated time: starts at `sim_start` and runs `speed` times faster than real time."""

    def __init__(
        self,
        speed: float,
        sim_start: datetime,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        if sim_start.tzinfo is None:
            raise ValueError("sim_start must be timezone-aware")
        self.speed = speed
        self.sim_start = sim_start
        self._monotonic = monotonic
        self._wall = wall
        self._mono0 = monotonic()

    def elapsed_real(self) -> float:
        """Real seconds since the clock started."""
        return self._monotonic() - self._mono0

    def sim_now(self) -> datetime:
        return self.sim_start + timedelta(seconds=self.elapsed_real() * self.speed)

    def now(self) -> Moment:
        """The current moment; wall time is read from the system clock (it stamps messages)."""
        return Moment(self.sim_now(), self._wall(), self.speed)

    def real_seconds(self, sim_seconds: float) -> float:
        """How long `sim_seconds` of simulated time take in real time."""
        return sim_seconds / self.speed


def sim_start_at(tz: tzinfo, time_of_day: str | None, now: datetime | None = None) -> datetime:
    """Today's `HH:MM` in the simulation's time zone, or the current local time when None."""
    now = (now or datetime.now(UTC)).astimezone(tz)
    if not time_of_day:
        return now
    hours, minutes = (int(part) for part in time_of_day.split(":"))
    return now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
