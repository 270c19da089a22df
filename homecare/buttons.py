"""A stuck button, defined once: the rule over the press times of one button and service that
telemetry's device-fault alert (`button_stuck`) and dispatch's intake (a stuck press does not
raise its request's urgency) both apply. Pure: no I/O, no clock. Each caller keeps a `PressRun`
per (button, service) in its own storage, so it survives restarts, and feeds it every press in
turn with `after_press`.

A run is the presses of one key with no pause longer than `max_gap_s` between them. It is stuck
once it has lasted `min_span_s` at `min_rate_per_s` or more. Why the defaults (3 presses a second
for 5 s, pauses of at most 1 s):
- A resident calling for help in a hurry presses two or three times a second, in bursts of a few
  seconds (one press, "is it working?", a few more); 3 a second without a 1-second pause for 5 s
  (16 presses) is already past that, and a stuck contact repeats at its firmware's steady rate
  for minutes.
- A pause of a second ends a run: a person pressing once a second is never a stuck button, and a
  run that was slow over its first `min_span_s` starts again at that press, so a slow run does
  not dilute the stuck one that may follow it.
- A device that stamps whole seconds (the contract allows it) sends a stuck key's presses as
  several with one time, then a gap of 1 s: still one run (a gap of exactly `max_gap_s` keeps it).
- Getting it wrong costs little either way: a request is still opened for the first press (and
  for a press of another service, which is another key), only its urgency stops climbing; and
  the device alert asks a person to look at the button.

Device times are used (the press's `ts`), not arrival times: a backlog delivered at once is not a
burst of presses. A press stamped before the run's last counts as if at the last (a clock step,
or two replicas' order); de-duplicating redeliveries is the caller's (an event is fed once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class StuckRule:
    """The thresholds (Settings.button_stuck_*; the module says why these defaults)."""

    min_rate_per_s: float = 3.0
    min_span_s: float = 5.0
    max_gap_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: Any) -> StuckRule:
        """From the shared settings (homecare.settings.Settings), so both services agree."""
        return cls(settings.button_stuck_min_rate_per_s, settings.button_stuck_min_span_s,
                   settings.button_stuck_max_gap_s)


@dataclass(frozen=True)
class PressRun:
    """Presses of one button and service in quick succession."""

    started: datetime  # the run's first press (device time)
    last: datetime  # its latest
    presses: int = 1
    stuck_since: datetime | None = None  # the press at which the run was judged stuck

    @property
    def stuck(self) -> bool:
        return self.stuck_since is not None

    @property
    def span_s(self) -> float:
        return (self.last - self.started).total_seconds()

    @property
    def rate_per_s(self) -> float:
        """Presses per second over the run (its first press starts the clock)."""
        return (self.presses - 1) / self.span_s if self.span_s > 0 else 0.0

    def describe(self) -> str:
        return f"{self.presses} presses in {self.span_s:.0f} s"


def after_press(run: PressRun | None, at: datetime, rule: StuckRule) -> PressRun:
    """The run after a press at `at` (device time): continued, judged stuck, or a new one."""
    if run is None or (at - run.last).total_seconds() > rule.max_gap_s:
        return PressRun(at, at)
    grown = replace(run, last=max(run.last, at), presses=run.presses + 1)
    if grown.stuck or grown.span_s < rule.min_span_s:
        return grown  # stuck stays stuck until a pause; a young run is not judged yet
    if grown.rate_per_s >= rule.min_rate_per_s:
        return replace(grown, stuck_since=grown.last)
    return PressRun(grown.last, grown.last)  # a person's pace over a whole span: count afresh


def became_stuck(before: PressRun | None, after: PressRun) -> bool:
    """Whether this press is the one at which the run was judged stuck."""
    return after.stuck and (before is None or before.stuck_since != after.stuck_since)
