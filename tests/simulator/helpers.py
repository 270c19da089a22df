"""Drive pure device behaviour through simulated time, without a broker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from devices.simulator.clock import Moment
from devices.simulator.messages import Outgoing, encode
from homecare.contract import validate

SHANGHAI = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Sent:
    moment: Moment
    out: Outgoing


def moments(sim_start: datetime, sim_hours: float, speed: float, real_step_s: float = 1.0) -> Iterator[Moment]:
    """Moments a real-second apart whose wall times all lie in the past, ending an hour ago."""
    real_total = sim_hours * 3600 / speed
    wall0 = datetime.now(UTC) - timedelta(seconds=real_total) - timedelta(hours=1)
    first = Moment(sim_start, wall0, speed)
    steps = int(real_total / real_step_s)
    for i in range(steps + 1):
        yield first.after(i * real_step_s)


def run(behaviour, sim_start: datetime, sim_hours: float, speed: float = 60.0, real_step_s: float = 1.0) -> list[Sent]:
    """Tick a behaviour through simulated time; everything it sends, with when."""
    sent = []
    for moment in moments(sim_start, sim_hours, speed, real_step_s):
        sent.extend(Sent(moment, out) for out in behaviour.tick(moment))
    return sent


def run_on_its_own_ticks(behaviour, first: Moment, real_s: float) -> tuple[list[Sent], int]:
    """Tick a behaviour from `first` for `real_s` seconds, when it asks to be ticked
    (`tick_interval`), as a device session does; everything it sends, and how many ticks."""
    sent, t, ticks = [], 0.0, 0
    while t <= real_s:
        moment = first.after(t)
        sent.extend(Sent(moment, out) for out in behaviour.tick(moment))
        ticks += 1
        t += behaviour.tick_interval()
    return sent, ticks


def encoded(out: Outgoing) -> bytes:
    return encode(out.payload)


def check_contract(out: Outgoing):
    """The message validates for its channel (raises ContractError otherwise)."""
    return validate(out.channel, encoded(out))
