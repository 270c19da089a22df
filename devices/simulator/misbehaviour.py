"""Devices that misbehave, as real fleets do: a wrapper around a device's pure behaviour.

Each fault changes what the device sends in one way and labels every message it breaks, so a
run can count what was sent per kind and compare it with what the platform rejected:

- `malformed`: a share of messages with broken JSON (`malformed.json`), a required field
  missing (`malformed.missing`) or a field of the wrong type (`malformed.type`): rejected
  with code `json` or `schema`.
- `out_of_range`: a share of messages with a value outside the contract's range
  (`out_of_range`): rejected, `schema`.
- `duplicate`: a share of messages sent twice, byte for byte (`duplicate.<channel>`):
  processed once.
- `clock_skew`: the device's clock is off; beyond +5 min or -7 days every stamped message is
  refused (`skew.rejected`, code `timestamp`), within them accepted (`skew.accepted`).
- `stuck_button`: after a while, a press every 1/rate seconds (`stuck.press`): joined to one
  request, which is marked stuck without rising in urgency, and a `button_stuck` device alert.
- `silent`: after a while, connected but saying nothing, not even acks: marked silent.
- `selftest_fail`: a part is broken (a button's key or speaker, a bed's radar) after the device's
  first `selftest_fail_after` self-tests: every later one says `fail` (`selftest.fail`, accepted).
  A broken key passes no press; a broken radar measures no vital signs.
- `selftest_skip`: after its first `selftest_skip_after` self-tests the device sends no more,
  neither scheduled nor asked for (it still acks `selftest.request`), and otherwise works.

The two self-test faults go only to devices that have the self-test (v1.1 firmware).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Collection
from datetime import timedelta
from enum import StrEnum
from typing import Any

from homecare.contract import DeviceKind, Service
from homecare.topics import DeviceChannel

from . import bed, button, messages
from .behaviour import Behaviour
from .clock import Moment
from .messages import Outgoing
from .scenario import Misbehaviour

FUTURE_LIMIT = timedelta(minutes=5)  # mqtt-v1: a ts further ahead is rejected
PAST_LIMIT = timedelta(days=7)  # ... and one older than this


class Fault(StrEnum):
    MALFORMED = "malformed"
    OUT_OF_RANGE = "out_of_range"
    DUPLICATE = "duplicate"
    CLOCK_SKEW = "clock_skew"
    STUCK_BUTTON = "stuck_button"
    SILENT = "silent"
    SELFTEST_FAIL = "selftest_fail"
    SELFTEST_SKIP = "selftest_skip"


SELFTEST_FAULTS = frozenset({Fault.SELFTEST_FAIL, Fault.SELFTEST_SKIP})  # start after some self-tests
_LATER = frozenset({Fault.SILENT, Fault.STUCK_BUTTON})  # start after a while


# The gateway's rejection code a broken message should meet (homecare.contract.validate codes).
EXPECTED_CODE = {
    "malformed.json": "json",
    "malformed.missing": "schema",
    "malformed.type": "schema",
    "out_of_range": "schema",
    "skew.rejected": "timestamp",
}


def applies_to(fault: Fault, kind: DeviceKind, selftest: bool = True) -> bool:
    """A stuck button is a button's fault, a self-test fault one of a device that has the
    self-test; every other fault can hit any device."""
    if fault in SELFTEST_FAULTS and not selftest:
        return False
    return fault is not Fault.STUCK_BUTTON or kind is DeviceKind.BUTTON


def assign_faults(
    devices: list[tuple[str, DeviceKind]], config: Misbehaviour, seed: int, before_v11: Collection[str] = (),
) -> dict[str, Fault]:
    """Which devices misbehave and how: `share` of them, kinds drawn by weight (seeded).
    Devices `before_v11` have no self-test to fail or skip."""
    rng = random.Random(f"faults:{seed}")
    count = round(config.share * len(devices))
    chosen = rng.sample(sorted(devices), count) if count else []
    out: dict[str, Fault] = {}
    for device_id, kind in chosen:
        selftest = device_id not in before_v11
        options = [
            (Fault(f), w) for f, w in config.kinds.items() if w > 0 and applies_to(Fault(f), kind, selftest)
        ]
        if options:
            faults, weights = zip(*options, strict=True)
            out[device_id] = rng.choices(faults, weights)[0]
    return out


def skew_is_rejected(skew: timedelta) -> bool:
    """Whether every timestamp of a device this far off is outside the accepted window."""
    return skew > FUTURE_LIMIT or skew < -PAST_LIMIT


class Misbehaving:
    """A device's behaviour with one fault (see the module's table). Pure: no I/O, seeded."""

    def __init__(self, inner: Behaviour, fault: Fault, config: Misbehaviour, seed: int):
        if not applies_to(fault, inner.kind, getattr(inner, "selftest", None) is not None):
            raise ValueError(f"a {inner.kind.value} {_firmware(inner)}cannot have the fault {fault.value}")
        self.inner, self.fault, self.config = inner, fault, config
        self.device_id, self.kind = inner.device_id, inner.kind
        self.rng = messages.DeviceRandom(f"misbehave:{seed}:{inner.device_id}")
        self.skew = timedelta(seconds=self.rng.choice(config.skews_s)) if fault is Fault.CLOCK_SKEW else timedelta(0)
        after = config.silent_after_s if fault is Fault.SILENT else config.stuck_after_s
        self.after_s = self.rng.uniform(*after)
        self.stuck_service = self.rng.choice([s for s in Service if s is not Service.EMERGENCY])
        self._first_wall = None
        self.active = fault not in (*_LATER, *SELFTEST_FAULTS)  # those start later
        self._selftests = 0  # self-tests sent so far
        self.part: str | None = None
        if fault is Fault.SELFTEST_FAIL:
            self.part = self.rng.choice(_breakable(inner))
        self._selftests_sent(0)

    # -- the device interface -----------------------------------------------------------------

    def status(self) -> Outgoing | None:
        """The inner status, unless the device has gone silent (then nothing)."""
        if self.fault is Fault.SILENT and self.active:
            return None
        return self._break_one(self.inner.status())

    def tick_interval(self) -> float:
        if self.fault is Fault.STUCK_BUTTON:
            return min(self.inner.tick_interval(), 1.0 / self.config.stuck_presses_per_s)
        return self.inner.tick_interval()

    def tick(self, moment: Moment) -> list[Outgoing]:
        self._wake(moment)
        if self.fault is Fault.SILENT and self.active:
            return []
        out = self._break(self.inner.tick(self._seen(moment)))
        if self.fault is Fault.STUCK_BUTTON and self.active:
            wall = self._seen(moment).wall
            press = messages.event(self.rng, wall, "button.pressed", service=self.stuck_service.value)
            out.append(_labelled(press, "stuck.press"))
        if self.fault is Fault.OUT_OF_RANGE and self.kind is DeviceKind.BUTTON and self._hit():
            out.append(self._out_of_range(self.inner.status()))
        return out

    def on_command(self, payload: dict[str, Any], moment: Moment) -> list[Outgoing]:
        if self.fault is Fault.SILENT and self.active:
            return []
        return self._break(self.inner.on_command(payload, self._seen(moment)))

    def power_restored(self) -> None:
        restore = getattr(self.inner, "power_restored", None)
        if restore:
            restore()

    def __getattr__(self, name: str) -> Any:  # e.g. `report_interval_s` of the bed inside
        return getattr(self.inner, name)

    # -- faults -------------------------------------------------------------------------------

    def _wake(self, moment: Moment) -> None:
        if self._first_wall is None:
            self._first_wall = moment.wall
        if self.active or self.fault not in _LATER:
            return
        if (moment.wall - self._first_wall).total_seconds() >= self.after_s:
            self.active = True

    def _seen(self, moment: Moment) -> Moment:
        """The moment as the device's own (possibly wrong) clock sees it."""
        return Moment(moment.sim, moment.wall + self.skew, moment.speed) if self.skew else moment

    def _hit(self) -> bool:
        return self.rng.random() < self.config.break_rate

    def _selftests_sent(self, count: int) -> None:
        """`count` self-tests were sent: the part breaks, or the device stops testing itself, if
        that is when."""
        self._selftests = count
        if self.fault is Fault.SELFTEST_FAIL and count >= self.config.selftest_fail_after and not self.active:
            self.active = True
            self.inner.broken.add(self.part)  # a bed's or a button's parts
        elif self.fault is Fault.SELFTEST_SKIP and count >= self.config.selftest_skip_after:
            self.active = True

    def _break(self, outs: list[Outgoing]) -> list[Outgoing]:
        result: list[Outgoing] = []
        for out in outs:
            if out.kind == "device.selftest" and self.fault in SELFTEST_FAULTS:
                if self.fault is Fault.SELFTEST_SKIP and self.active:
                    continue
                if out.payload["result"] == "fail" and self.active:
                    out = _labelled(out, "selftest.fail")
                self._selftests_sent(self._selftests + 1)
                result.append(out)
                continue
            broken = self._break_one(out)
            result.append(broken)
            if self.fault is Fault.DUPLICATE and self.rng.random() < self.config.duplicate_rate:
                result.append(_labelled(out, f"duplicate.{out.channel.value}"))
        return result

    def _break_one(self, out: Outgoing) -> Outgoing:
        if self.fault is Fault.CLOCK_SKEW and _stamped(out):
            return _labelled(out, "skew.rejected" if skew_is_rejected(self.skew) else "skew.accepted")
        if self.fault is Fault.MALFORMED and self._hit():
            return self._malformed(out)
        if self.fault is Fault.OUT_OF_RANGE and self.kind is DeviceKind.BED and self._hit():
            return self._out_of_range(out)
        return out

    def _malformed(self, out: Outgoing) -> Outgoing:
        how = self.rng.choice(("json", "missing", "type"))
        if how == "json":
            wire = out.wire
            return _labelled(out, "malformed.json", raw=wire[: max(1, len(wire) // 2)])
        payload = copy.deepcopy(out.payload)
        field = _REQUIRED[out.channel]
        if how == "missing":
            payload.pop(field, None)
        elif out.channel is DeviceChannel.TELEMETRY:
            payload["samples"][0]["occupied"] = "yes"
        else:
            payload[field] = 42 if field != "online" else "yes"
        return _labelled(Outgoing(out.channel, payload, out.retain), f"malformed.{how}")

    def _out_of_range(self, out: Outgoing) -> Outgoing:
        payload = copy.deepcopy(out.payload)
        if out.channel is DeviceChannel.TELEMETRY:
            sample = self.rng.choice(payload["samples"])
            field, value = self.rng.choice((("heart_rate", 300), ("respiration_rate", 2), ("movement", 1.5)))
            sample[field] = value
            if field != "movement":
                sample["occupied"] = True
        elif out.channel is DeviceChannel.STATUS:
            payload["battery"] = 1.4
        else:
            return out  # events and acks carry no ranged field worth breaking
        return _labelled(Outgoing(out.channel, payload, out.retain), "out_of_range")


_REQUIRED = {
    DeviceChannel.TELEMETRY: "samples",
    DeviceChannel.EVENTS: "event_id",
    DeviceChannel.STATUS: "online",
    DeviceChannel.ACKS: "command_id",
}


def _breakable(inner: Behaviour) -> tuple[str, ...]:
    return button.BREAKABLE if inner.kind is DeviceKind.BUTTON else bed.BREAKABLE


def _firmware(inner: Behaviour) -> str:
    return "built before v1.1 " if getattr(inner, "before_v11", False) else ""


def _stamped(out: Outgoing) -> bool:
    return out.channel is not DeviceChannel.STATUS


def _labelled(out: Outgoing, label: str, raw: bytes | None = None) -> Outgoing:
    return Outgoing(out.channel, out.payload, out.retain, raw=raw, label=label)
