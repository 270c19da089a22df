"""A one-click service button: the resident presses for a service at rates that follow the hour
of day; the button shows what the platform tells it (received, who comes and when, done); a
resident whose request is not assigned after a while presses again. A v1.1 button tests its key,
light, speaker and battery on its schedule, when asked, and when the resident runs its test."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homecare.contract import (
    DeviceKind,
    RequestAcknowledged,
    RequestAssigned,
    RequestCancelled,
    RequestCompleted,
    Service,
)

from . import messages
from .behaviour import CommandHandling
from .clock import Moment
from .messages import Outgoing
from .population import ResidentPlan
from .profiles import press_rate
from .selftest import DEFAULT_INTERVAL_H, SelfTest, parts_check

STEP = timedelta(seconds=60)  # simulated time is walked in steps this long, so hours are exact
REPRESS_AFTER = (timedelta(minutes=8), timedelta(minutes=15))  # waiting, not yet assigned
MAX_PRESSES = 4  # then they stop pressing, and sometimes withdraw the request
GIVE_UP_AFTER = timedelta(hours=4)  # a request the platform never closes is forgotten
LOW_BATTERY = 0.2
DRAIN_PER_DAY = 0.003
DRAIN_PER_PRESS = 0.0004
KEY = "button"
PARTS = (KEY, "light", "speaker")  # what its self-test checks, with the battery
BREAKABLE = (KEY, "speaker")  # what the `selftest_fail` fault breaks (misbehaviour.py)
# Residents are asked to run the button's test now and then; few do it often. About once a
# month each, in the daytime.
RESIDENT_TESTS_PER_DAY = 1 / 30
RESIDENT_TEST_HOURS = range(9, 20)


@dataclass
class Waiting:
    """What the button knows about the resident's open request for one service."""

    service: Service
    first_pressed: datetime
    last_pressed: datetime
    presses: int = 1
    request_id: str | None = None
    state: str = "pressed"  # pressed -> acknowledged -> assigned
    provider: str | None = None
    eta_minutes: int | None = None
    repress_after: timedelta = REPRESS_AFTER[0]


class ButtonBehaviour(CommandHandling):
    """The pure behaviour of one button."""

    kind = DeviceKind.BUTTON

    def __init__(
        self,
        device_id: str,
        resident: ResidentPlan,
        seed: int,
        *,
        press_rate_factor: float = 1.0,
        fw: str = "1.4.2",
        tick_s: float = 1.0,
        before_v11: bool = False,
        selftest_interval_h: int = DEFAULT_INTERVAL_H,
    ):
        super().__init__(before_v11=before_v11)
        self.device_id = device_id
        self.resident = resident
        self.fw = fw
        self.factor = press_rate_factor * resident.need
        self.rng = messages.DeviceRandom(f"button:{seed}:{resident.index}")
        self.battery = resident.battery
        self._rssi = -self.rng.randint(50, 80)
        self._tick_s = tick_s
        self._last_sim: datetime | None = None
        self._told_low = self.battery < LOW_BATTERY
        self.waiting: dict[Service, Waiting] = {}
        self.broken: set[str] = set()
        self.selftest = None if before_v11 else SelfTest(
            messages.DeviceRandom(f"selftest:button:{seed}:{resident.index}"), selftest_interval_h,
        )

    # -- the device interface -----------------------------------------------------------------

    def status(self) -> Outgoing:
        return messages.status(self.fw, battery=self.battery, rssi=self._rssi)

    def tick_interval(self) -> float:
        return self._tick_s

    def tick(self, moment: Moment) -> list[Outgoing]:
        """Walk simulated time since the last tick in one-minute steps: presses, re-presses."""
        last, now = self._last_sim, moment.sim
        self._last_sim = now
        scheduled = self.selftest.due(now) if self.selftest else None  # the first call starts it
        if last is None or now <= last:
            return []
        shown = round(self.battery, 2)
        self.battery = max(0.0, self.battery - DRAIN_PER_DAY * (now - last) / timedelta(days=1))
        out: list[Outgoing] = []
        t = last
        while t < now:
            step_end = min(t + STEP, now)
            out.extend(self._step(t, step_end, moment))
            t = step_end
        if scheduled is not None and self.selftest:
            out.append(self.selftest.report(self.checks(), moment.wall_of(scheduled), "schedule"))
        if round(self.battery, 2) != shown:
            out.append(self.status())
        if self.battery < LOW_BATTERY and not self._told_low:
            self._told_low = True
            level = math.floor(self.battery * 1000) / 1000  # below the threshold, as shown
            out.append(messages.event(self.rng, moment.wall, "battery.low", battery=level))
        return out

    def power_restored(self) -> None:
        """Booted after a power cut: the light is off; what happened while off is unknown."""
        self.waiting.clear()
        self._last_sim = None
        if self.selftest:
            self.selftest.restart()

    def checks(self) -> dict[str, bool]:
        """The self-test's checks: each part, and a battery above the low threshold."""
        return {**parts_check(PARTS, self.broken), "battery": self.battery >= LOW_BATTERY}

    def apply(self, command: Any, moment: Moment) -> list[Outgoing]:
        """Show what the platform says about a request; test itself or change the schedule."""
        out = self.selftest.on_command(command, moment, self.checks) if self.selftest else []
        service = Service(command.service) if hasattr(command, "service") else None
        if isinstance(command, RequestCompleted | RequestCancelled):
            self.waiting.pop(service, None)
        elif isinstance(command, RequestAcknowledged | RequestAssigned):
            waiting = self.waiting.get(service)
            if waiting is None:  # opened for them (a phone call, a suspected fall)
                waiting = self.waiting[service] = Waiting(service, moment.sim, moment.sim)
            waiting.request_id = command.request_id
            if isinstance(command, RequestAssigned):
                waiting.state = "assigned"
                waiting.provider, waiting.eta_minutes = command.provider, command.eta_minutes
            elif waiting.state == "pressed":
                waiting.state = "acknowledged"
        return out

    # -- behaviour ----------------------------------------------------------------------------

    def _step(self, start: datetime, end: datetime, moment: Moment) -> list[Outgoing]:
        if KEY in self.broken:
            return []  # the key does not register: no press, and no test press, gets through
        out: list[Outgoing] = []
        hours = (end - start) / timedelta(hours=1)
        if self.selftest and start.hour in RESIDENT_TEST_HOURS:
            rng = self.selftest.rng
            if rng.random() < 1.0 - math.exp(-RESIDENT_TESTS_PER_DAY / len(RESIDENT_TEST_HOURS) * hours):
                at = start + (end - start) * rng.random()
                out.append(self.selftest.report(self.checks(), moment.wall_of(at), "resident"))
        for service in Service:
            waiting = self.waiting.get(service)
            if waiting is None:
                rate = press_rate(service, start, self.factor)
                if self.rng.random() < 1.0 - math.exp(-rate * hours):
                    at = start + (end - start) * self.rng.random()
                    self.waiting[service] = Waiting(service, at, at, repress_after=self._patience())
                    out.append(self._press(service, at, moment))
            elif end - waiting.first_pressed > GIVE_UP_AFTER:
                del self.waiting[service]
            elif waiting.state != "assigned" and end - waiting.last_pressed >= waiting.repress_after:
                out.extend(self._press_again(waiting, end, moment))
        return out

    def _press_again(self, waiting: Waiting, at: datetime, moment: Moment) -> list[Outgoing]:
        if waiting.presses >= MAX_PRESSES:
            waiting.last_pressed = at
            if self.rng.random() < 0.5:  # a long press: they withdraw the request
                del self.waiting[waiting.service]
                return [messages.event(self.rng, moment.wall_of(at), "button.cancelled", service=waiting.service.value)]
            waiting.repress_after = timedelta(hours=24)  # resigned to wait
            return []
        waiting.presses += 1
        waiting.last_pressed = at
        waiting.repress_after = self._patience()
        return [self._press(waiting.service, at, moment)]

    def _press(self, service: Service, at: datetime, moment: Moment) -> Outgoing:
        self.battery = max(0.0, self.battery - DRAIN_PER_PRESS)
        return messages.event(self.rng, moment.wall_of(at), "button.pressed", service=service.value)

    def _patience(self) -> timedelta:
        low, high = REPRESS_AFTER
        return low + (high - low) * self.rng.random()
