"""A stuck button as a device fault. What "stuck" is lives in homecare/buttons.py, shared with
dispatch (whose intake stops a stuck button's presses from raising its request's urgency); this
module turns a key's run of presses into the alert and its end.

Severity high: a resident whose button is stuck cannot call for help. Their presses look like
the stuck ones, so a real call on that key neither opens a new request nor raises the urgency of
the open one; until someone frees or replaces the button, the phone is their only way. Not
critical: nobody is known to be hurt, and the request the stuck presses joined is on the board."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from homecare.buttons import PressRun, StuckRule, after_press, became_stuck
from services.telemetry.domain.rules.model import Clearance, Finding, Rule, Severity, iso


@dataclass(frozen=True)
class ButtonKey:
    """The rule's state of one button and service: the run of presses, the last event fed (a
    redelivery of it is not counted twice), and when the alert may clear if no stuck press comes."""

    device_id: str
    service: str
    resident_id: str
    run: PressRun
    last_event_id: str
    clear_due: datetime | None = None


def on_press(
    key: ButtonKey | None, device_id: str, service: str, resident_id: str, event_id: str, ts: datetime,
    now: datetime, rule: StuckRule, clear_after_s: int,
) -> tuple[ButtonKey, Finding | None]:
    """The key after a press, and the alert when this press shows the button stuck. Each press
    of a stuck run moves the clearing time on: `clear_after_s` after the last stuck press."""
    before = key.run if key is not None else None
    run = after_press(before, ts, rule)
    clear_due = now + timedelta(seconds=clear_after_s) if run.stuck else (key.clear_due if key else None)
    after = ButtonKey(device_id, service, resident_id, run, event_id, clear_due)
    return after, (finding(after, rule, now) if became_stuck(before, run) else None)


def finding(key: ButtonKey, rule: StuckRule, now: datetime) -> Finding:
    run = key.run
    return Finding(
        rule=Rule.BUTTON_STUCK, severity=Severity.HIGH, resident_id=key.resident_id, device_id=key.device_id,
        # The device's clock may be ahead of ours (the contract allows 5 min): never after now, so
        # the system's clearance, dated now, can close it.
        started_at=min(run.started, now),
        summary=f"button {key.device_id} stuck on {key.service}: {run.describe()}; the resident cannot call"
                " with it",
        occurrence=f"{Rule.BUTTON_STUCK.value}:{key.device_id}:{key.service}:{iso(run.started)}",
        evidence={
            "device_id": key.device_id, "kind": "button", "service": key.service, "presses": run.presses,
            "span_s": round(run.span_s, 1), "rate_per_s": round(run.rate_per_s, 2), "from": iso(run.started),
            "judged_at": iso(run.last), "min_rate_per_s": rule.min_rate_per_s, "min_span_s": rule.min_span_s,
            "max_gap_s": rule.max_gap_s,
        },
    )


def clearance(device_id: str, now: datetime, clear_after_s: int) -> Clearance:
    return Clearance(Rule.BUTTON_STUCK, device_id, now, f"no stuck presses for {clear_after_s} s")
