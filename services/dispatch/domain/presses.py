"""Dispatch's record of a button key's current run of presses (homecare/buttons.py decides when
a run is stuck): the detector's state, and what the run's presses did to the request they joined,
so that it can be taken back once the run proves stuck."""

from __future__ import annotations

from dataclasses import dataclass

from homecare.buttons import PressRun


@dataclass(frozen=True)
class ButtonRun:
    run: PressRun
    request_id: str | None = None  # the request the run's presses joined
    raised: int = 0  # urgency the run's presses after its first added to that request


def after_join(before: ButtonRun | None, run: PressRun, request_id: str | None, raised: int) -> ButtonRun:
    """The record after a press that was not stuck: its run, and the urgency it added counted
    against the run, unless it is the run's first press (a press after a pause is a person's) or
    joined another request than the run's earlier presses."""
    if run.presses == 1 or before is None or before.request_id != request_id:
        return ButtonRun(run, request_id, 0)
    return ButtonRun(run, request_id, before.raised + raised)
