"""A smart care bed: samples occupancy and vital signs, reports batches, tells exits and entries.

Timing: the bed samples every `sample_interval_s` seconds of WALL time and reports every
`report_interval_s` seconds of wall time, as a real bed does (a `config` command changes both).
What each sample shows is the resident's state at the current SIMULATED time. So with a fast
clock the data rate stays that of a real bed, sample timestamps are real, one per interval, never
ahead of the wall clock and unique per device, while the night plays out `speed` times faster:
at speed 60 a ten-minute trip to the toilet is ten unoccupied samples. Events happen at simulated
instants and carry the wall time at which the simulation passed them (`Moment.wall_of`), so they
too are never in the future. Platform timers (alert windows, SLAs) run on wall time, so they see
a compressed day; that is inherent in running faster than real time.

A v1.1 bed tests its pressure mat and its radar (the vital-signs sensor) on its schedule and when
asked. It is mains-powered (its `status` carries no battery), so it checks no battery; a power
cut takes it off altogether (`session.power_cut`).
"""

from __future__ import annotations

import bisect
import math
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from homecare.contract import Config, DeviceKind, format_ts
from homecare.topics import DeviceChannel

from . import messages
from .behaviour import CommandHandling
from .clock import Moment
from .messages import Outgoing
from .population import ResidentPlan
from .selftest import DEFAULT_INTERVAL_H, SelfTest, parts_check
from .sleep import NightPlan, plan_window, window_day

MAX_BATCH = 600  # samples per telemetry message (mqtt-v1)
MAX_PENDING = 3600  # samples kept while they cannot be sent; the oldest go first
_ROUNDING = timedelta(milliseconds=1)
_MIN_TICK_S = 0.02  # a tick that came a hair early for its report or event comes back this soon
_SETTLING = timedelta(minutes=2)  # restless after getting into bed, and before getting up
RADAR = "radar"
PARTS = ("pressure", RADAR)  # what its self-test checks
# What the `selftest_fail` fault breaks (misbehaviour.py): a radar that no longer measures shows
# as samples without vital signs; a broken pressure mat would fake bed exits, another story.
BREAKABLE = (RADAR,)


class BedBehaviour(CommandHandling):
    """The pure behaviour of one bed."""

    kind = DeviceKind.BED

    def __init__(
        self,
        device_id: str,
        resident: ResidentPlan,
        seed: int,
        tz: tzinfo,
        *,
        fw: str = "2.3.1",
        report_interval_s: int = 10,
        sample_interval_s: int = 1,
        epoch_ms: bool = False,
        before_v11: bool = False,
        selftest_interval_h: int = DEFAULT_INTERVAL_H,
    ):
        super().__init__(before_v11=before_v11)
        self.device_id = device_id
        self.resident = resident
        self.tz = tz
        self.fw = fw
        self.report_interval_s = report_interval_s
        self.sample_interval_s = sample_interval_s
        self.epoch_ms = epoch_ms  # `ts` as integer milliseconds (mqtt-v1 takes both forms)
        self.rng = messages.DeviceRandom(f"bed:{seed}:{resident.index}")
        self._plan_seed = f"{seed}:{resident.index}"
        self._rssi = -self.rng.randint(45, 75)
        self._plans: dict[Any, NightPlan] = {}
        self._events: dict[date, list[tuple[datetime, str, dict[str, Any]]]] = {}
        self._last_sim: datetime | None = None
        self._last_report: datetime | None = None
        self._last_sample: datetime | None = None  # wall time of the last sampling instant
        self._last_ms = 0
        self._last_tick: Moment | None = None
        self._pending: list[dict[str, Any]] = []
        self._hr_drift = 0.0
        self._rr_drift = 0.0
        self.broken: set[str] = set()
        self.selftest = None if before_v11 else SelfTest(
            messages.DeviceRandom(f"selftest:bed:{seed}:{resident.index}"), selftest_interval_h,
        )

    # -- the device interface -----------------------------------------------------------------

    def status(self) -> Outgoing:
        return messages.status(self.fw, rssi=self._rssi)

    def tick_interval(self) -> float:
        """Real seconds to the next thing this bed sends: its next report, or an event (getting
        up, a suspected fall, a self-test) that comes first. A tick takes the samples due since the last one,
        each at its own instant (`_due`), so waking only to send gives the same messages at the
        same times as waking at every sample, for a tenth of the simulator's work at 10 s reports
        (half of its CPU went to bed ticks at 10,000 devices, CPU the platform then lacked)."""
        last = self._last_tick
        if last is None or self._last_report is None:
            return float(self.sample_interval_s)
        wait = self.report_interval_s - (last.wall - self._last_report).total_seconds()
        upcoming = self._next_event_after(last.sim)
        if self.selftest and self.selftest.next is not None:
            upcoming = min(upcoming or self.selftest.next, self.selftest.next)
        if upcoming is not None:
            wait = min(wait, (upcoming - last.sim).total_seconds() / last.speed)
        return min(max(wait, _MIN_TICK_S), float(self.report_interval_s))

    def tick(self, moment: Moment) -> list[Outgoing]:
        """Events since the last tick, the samples due, and a batch when the report is due.

        A bed samples on its own clock: a tick that comes late (a busy simulator) takes the
        samples it missed, stamped when they were due, so the data rate does not depend on
        how punctual the simulator is."""
        self._last_tick = moment
        out = self.events_until(moment)
        scheduled = self.selftest.due(moment.sim) if self.selftest else None
        if scheduled is not None:
            out.append(self.selftest.report(self.checks(), moment.wall_of(scheduled), "schedule"))
        for at in self._due(moment):
            self._pending.append(self.sample(at))
        del self._pending[:-MAX_PENDING]
        if self._last_report is None:  # a random phase, so a fleet's reports do not come in waves
            self._last_report = moment.wall - timedelta(seconds=self.rng.uniform(0, self.report_interval_s))
        if (moment.wall - self._last_report).total_seconds() >= self.report_interval_s - 1e-3:
            self._last_report = moment.wall
            out.extend(self.take_batches())
        return out

    def _due(self, moment: Moment) -> list[Moment]:
        """The sampling instants up to `moment`: one per interval since the last one taken."""
        step = timedelta(seconds=self.sample_interval_s)
        last = self._last_sample
        if last is None or moment.wall - last > step * MAX_PENDING:
            self._last_sample = moment.wall
            return [moment]
        due = []
        at = last + step
        # Only instants that have come (a millisecond's rounding aside): a tick for a report or an
        # event falls between two of them, and a sample taken early would break the 1 s spacing.
        while at <= moment.wall + _ROUNDING:
            wall = min(at, moment.wall)
            due.append(Moment(moment.sim - (moment.wall - wall) * moment.speed, wall, moment.speed))
            self._last_sample = at
            at += step
        return due

    def power_restored(self) -> None:
        """Booted after a power cut: nothing was sampled or noticed while off."""
        self._pending = []
        self._last_sim = self._last_report = self._last_sample = self._last_tick = None
        if self.selftest:
            self.selftest.restart()

    def checks(self) -> dict[str, bool]:
        """The self-test's checks: one per sensor."""
        return parts_check(PARTS, self.broken)

    def apply(self, command: Any, moment: Moment) -> list[Outgoing]:
        out = self.selftest.on_command(command, moment, self.checks) if self.selftest else []
        if isinstance(command, Config):
            if command.report_interval_s is not None:
                self.report_interval_s = command.report_interval_s
            if command.sample_interval_s is not None:
                self.sample_interval_s = command.sample_interval_s
        return out

    # -- behaviour ----------------------------------------------------------------------------

    def plan(self, t: datetime) -> NightPlan:
        """The noon-to-noon plan holding simulated time `t` (cached, the oldest dropped)."""
        return self._plan_of(window_day(t, self.tz))

    def _plan_of(self, day: date) -> NightPlan:
        plan = self._plans.get(day)
        if plan is None:
            plan = plan_window(self.resident.sleep, self._plan_seed, day, self.tz)
            self._plans[day] = plan
            for old in sorted(self._plans)[:-3]:
                del self._plans[old]
        return plan

    def events_until(self, moment: Moment) -> list[Outgoing]:
        """bed.entry, bed.exit and fall.suspected that happened since the last call."""
        last, now = self._last_sim, moment.sim
        self._last_sim = now
        if last is None or now <= last:
            return []
        out: list[Outgoing] = []
        day, last_day = window_day(last, self.tz), window_day(now, self.tz)
        while day <= last_day:
            for at, kind, extra in self._events_of(day):
                if last < at <= now:
                    out.append(messages.event(self.rng, moment.wall_of(at), kind, **extra))
            day += timedelta(days=1)
        return out

    def _next_event_after(self, t: datetime) -> datetime | None:
        """When the first event after simulated time `t` is due (looking a day ahead)."""
        day = window_day(t, self.tz)
        for d in (day, day + timedelta(days=1)):
            events = self._events_of(d)
            i = bisect.bisect_right(events, t, key=lambda e: e[0])
            if i < len(events):
                return events[i][0]
        return None

    def _events_of(self, day: date) -> list[tuple[datetime, str, dict[str, Any]]]:
        """The window's events in time order (cached with its plan)."""
        events = self._events.get(day)
        if events is None:
            plan = self._plan_of(day)
            found: list[tuple[datetime, str, dict[str, Any]]] = []
            for span in plan.spans:
                found.append((span.start, "bed.entry", {}))
                found.append((span.end, "bed.exit", {}))
            for fall in plan.falls:
                found.append((fall.at, "fall.suspected", {"confidence": fall.confidence}))
            events = self._events[day] = sorted(found, key=lambda f: f[0])
            for old in sorted(self._events)[:-3]:
                del self._events[old]
        return events

    def sample(self, moment: Moment) -> dict[str, Any]:
        """One sample of the bed at `moment`: the state at sim time, stamped with wall time."""
        t = moment.sim
        plan = self.plan(t)
        span = plan.span_at(t)
        ms = max(int(moment.wall.timestamp() * 1000), self._last_ms + 1)
        self._last_ms = ms
        ts: str | int = ms if self.epoch_ms else format_ts(datetime.fromtimestamp(ms / 1000, moment.wall.tzinfo))
        self._hr_drift = 0.98 * self._hr_drift + self.rng.gauss(0, 0.6)
        self._rr_drift = 0.98 * self._rr_drift + self.rng.gauss(0, 0.2)
        if span is None:
            return {"ts": ts, "occupied": False, "heart_rate": None, "respiration_rate": None, "movement": 0.0}
        asleep = span.asleep(t)
        settling = t - span.start < _SETTLING or span.end - t < _SETTLING / 2
        vitals = self.resident.vitals
        hour = t.astimezone(self.tz).hour + t.minute / 60 + vitals.phase
        circadian = math.sin(2 * math.pi * (hour - 10) / 24)  # lowest in the small hours
        hr = (vitals.hr_asleep if asleep else vitals.hr_awake) + 3 * circadian + self._hr_drift
        rr = (vitals.rr_asleep if asleep else vitals.rr_awake) + 0.8 * circadian + self._rr_drift
        episode = plan.episode_at(t)
        if episode is not None:
            hr += 38 if episode.kind == "heart" else 8
            rr += 11 if episode.kind == "breath" else 3
        if settling:
            movement = self.rng.uniform(0.5, 0.95)
            hr, rr = hr + 8, rr + 2
        elif asleep:
            movement = self.rng.uniform(0.25, 0.6) if self.rng.random() < 0.02 else abs(self.rng.gauss(0, 0.03))
        else:
            movement = self.rng.uniform(0.05, 0.35)
        heart: int | None = _clamp(round(hr + self.rng.gauss(0, 1.2)), 20, 250)
        breath: int | None = _clamp(round(rr + self.rng.gauss(0, 0.5)), 4, 60)
        if movement > 0.6 and self.rng.random() < 0.3:
            heart = breath = None  # the sensor loses the signal when the body moves a lot
        if RADAR in self.broken:
            heart = breath = None
        return {
            "ts": ts, "occupied": True, "heart_rate": heart, "respiration_rate": breath,
            "movement": round(min(max(movement, 0.0), 1.0), 3),
        }

    def take_batches(self) -> list[Outgoing]:
        """The pending samples as telemetry messages of at most 600 samples and 64 KiB each."""
        pending, self._pending = self._pending, []
        return [Outgoing(DeviceChannel.TELEMETRY, {"samples": chunk}) for chunk in _chunks(pending)]


SURELY_FITS = 200  # samples: under 64 KiB whatever their values (a sample is < 130 bytes)


def _chunks(samples: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    out = []
    for i in range(0, len(samples), MAX_BATCH):
        chunk = samples[i:i + MAX_BATCH]
        # Only a batch near 600 samples comes close; a short one is not encoded twice to know.
        while len(chunk) > SURELY_FITS and not messages.fits({"samples": chunk}):
            half = len(chunk) // 2
            out.append(chunk[:half])
            chunk = chunk[half:]
        out.append(chunk)
    return out


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)
