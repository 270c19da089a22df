"""The device self-test of mqtt-v1.1: when a device tests itself, and the `device.selftest` it
publishes. Pure: no I/O, seeded.

A device tests itself every `selftest_interval_h` hours of simulated time (24 unless a `config`
command says otherwise), the first time at a random phase of the interval after power-on, so a
fleet powered on together does not test at once; when the platform asks (`selftest.request`),
at once; and when the resident presses the button's test sequence. Devices built before v1.1
have none of this (`before_v11`): see `behaviour.CommandHandling`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from homecare.contract.models import Config, SelftestRequest

from . import messages
from .clock import Moment
from .messages import Outgoing

DEFAULT_INTERVAL_H = 24  # mqtt-v1.1: `config.selftest_interval_h` defaults to 24


class SelfTest:
    """A v1.1 device's self-test: its schedule over simulated time, and its reports."""

    def __init__(self, rng: random.Random, interval_h: int = DEFAULT_INTERVAL_H):
        self.rng = rng  # the device's self-test generator: its own, so tests do not shift presses
        self.interval = timedelta(hours=interval_h)
        self._phase = rng.random()  # of the interval, before the first test after power-on
        self._booted: datetime | None = None
        self._last: datetime | None = None
        self.next: datetime | None = None  # simulated time of the next scheduled test

    def due(self, now: datetime) -> datetime | None:
        """The simulated instant of a scheduled test that fell due by `now`, if one did.

        The first call after power-on starts the schedule. When several intervals passed since
        the last call (a late tick), the device runs one test, not one for each."""
        if self.next is None:
            self._booted = now
            self.next = now + self.interval * self._phase
            return None
        if now < self.next:
            return None
        at = self._last = self.next
        while self.next <= now:
            self.next += self.interval
        return at

    def set_interval(self, hours: int, now: datetime) -> None:
        """A `config` command's `selftest_interval_h`: the next test is one new interval after
        the last (after power-on, at the device's phase), or now when that has passed."""
        self.interval = timedelta(hours=hours)
        if self.next is None or self._booted is None:
            return  # not started: the schedule starts with the new interval
        if self._last is None:
            self.next = self._booted + self.interval * self._phase
        else:
            self.next = self._last + self.interval
        self.next = max(self.next, now)

    def restart(self) -> None:
        """Booted after a power cut: the schedule starts again from the boot."""
        self._booted = self._last = self.next = None

    def report(self, checks: dict[str, bool], ts: datetime, trigger: str, command_id: str | None = None) -> Outgoing:
        """The `device.selftest` event: `fail` when any check failed."""
        return messages.selftest(self.rng, ts, checks, trigger, command_id)

    def on_command(self, command: Any, moment: Moment, checks: Callable[[], dict[str, bool]]) -> list[Outgoing]:
        """A `selftest.request` is answered at once with its `command_id`; a `config` command
        may change the interval. Anything else is not the self-test's."""
        if isinstance(command, SelftestRequest):
            return [self.report(checks(), moment.wall, "platform", command.command_id)]
        if isinstance(command, Config) and command.selftest_interval_h is not None:
            self.set_interval(command.selftest_interval_h, moment.sim)
        return []


def parts_check(parts: Collection[str], broken: Collection[str]) -> dict[str, bool]:
    """One check per part: passes unless the part is broken."""
    return {part: part not in broken for part in parts}


def before_v11(devices: list[str], share: float, seed: int) -> set[str]:
    """Which devices run firmware built before v1.1: `share` of them (seeded, order-free), so
    every shard of a population agrees."""
    rng = random.Random(f"before-v11:{seed}")
    count = round(share * len(devices))
    return set(rng.sample(sorted(devices), count)) if count else set()
