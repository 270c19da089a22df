"""Device self-tests (mqtt-v1.1): a connected device is not necessarily a working one.

Devices test themselves every `selftest_interval_h` and publish `device.selftest`. Telecare
practice, which the contract follows: every alarm unit is tested periodically, and a unit that
misses its test is chased. So:
- a failed self-test is a device fault at once, naming the checks that failed; the next passing
  one clears it;
- a self-test that does not come within the interval plus a grace time is a missed one, a fault
  too; each further interval without one is another miss, and the third miss in a row raises the
  alert to high, for the dispatcher to call the resident (their contacts are on the alert page);
- a device that never sent a self-test (firmware older than v1.1) has no record here and so is
  never counted as missing one: it is shown as "no self-test (older firmware)", not as faulty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.telemetry.domain.rules.model import Clearance, Finding, Rule, Severity, iso

PASS = "pass"
FAIL = "fail"
ESCALATE_AFTER = 3  # misses in a row; the and telecare's "chase the unit" point


@dataclass(frozen=True)
class SelftestPolicy:
    """How often each kind of device is expected to test itself, and how late it may be."""

    interval_h: Mapping[str, int] = field(default_factory=lambda: {"button": 24, "bed": 24})
    grace: timedelta = timedelta(hours=2)
    escalate_after: int = ESCALATE_AFTER

    def interval(self, kind: str) -> timedelta:
        return timedelta(hours=self.interval_h.get(kind, 24))


@dataclass(frozen=True)
class SelftestRecord:
    """A device's latest self-test and the deadline for its next one."""

    device_id: str
    resident_id: str
    kind: str
    last_at: datetime
    result: str
    failed: tuple[str, ...] = ()
    trigger: str | None = None
    misses: int = 0  # intervals in a row without a self-test, since the last one
    due_at: datetime | None = None  # when the next one is missed, if it has not come


@dataclass(frozen=True)
class Selftest:
    """One `device.selftest` as the rule needs it."""

    device_id: str
    resident_id: str
    kind: str
    at: datetime
    result: str
    checks: Mapping[str, bool]
    trigger: str | None = None
    event_id: str | None = None


Outcome = Finding | Clearance


def received(
    previous: SelftestRecord | None, test: Selftest, policy: SelftestPolicy,
) -> tuple[SelftestRecord, list[Outcome]]:
    """A self-test came: the record it leaves and what it concludes. An older one than the latest
    known (a backlog delivered late) changes nothing."""
    if previous is not None and test.at <= previous.last_at:
        return previous, []
    failed = tuple(sorted(name for name, ok in test.checks.items() if not ok))
    record = SelftestRecord(
        test.device_id, test.resident_id, test.kind, test.at, test.result, failed, test.trigger, 0,
        test.at + policy.interval(test.kind) + policy.grace,
    )
    outcomes: list[Outcome] = [Clearance(Rule.SELFTEST_MISSED, test.device_id, test.at, "self-tested again")]
    if test.result == PASS:
        outcomes.append(Clearance(Rule.SELFTEST_FAILED, test.device_id, test.at, "self-test passed"))
    else:
        what = ", ".join(failed) if failed else "no check named"
        outcomes.append(Finding(
            rule=Rule.SELFTEST_FAILED, severity=Severity.MEDIUM, resident_id=test.resident_id,
            device_id=test.device_id, started_at=test.at,
            summary=f"{test.kind} {test.device_id} failed its self-test ({what})",
            occurrence=f"{Rule.SELFTEST_FAILED.value}:{test.device_id}:{iso(test.at)}",
            evidence={"device_id": test.device_id, "kind": test.kind, "checks": dict(test.checks),
                      "failed": list(failed), "trigger": test.trigger, "event_id": test.event_id},
        ))
    return record, outcomes


def missed(record: SelftestRecord, now: datetime, policy: SelftestPolicy) -> tuple[SelftestRecord, Finding | None]:
    """The deadline passed without a self-test: one more miss, and the next deadline one interval
    on. Several intervals overdue at once (the service was down) count as that many misses."""
    if record.due_at is None or now < record.due_at:
        return record, None
    interval = policy.interval(record.kind)
    overdue = now - record.due_at
    misses = record.misses + 1 + int(overdue / interval)
    deadline = record.due_at + interval * (misses - record.misses)
    escalated = misses >= policy.escalate_after
    hours = int((now - record.last_at).total_seconds() // 3600)
    summary = (f"{record.kind} {record.device_id} missed {misses} self-tests in a row (last {hours} h ago):"
               " call the resident" if escalated else
               f"{record.kind} {record.device_id} missed its self-test (last {hours} h ago)")
    finding = Finding(
        rule=Rule.SELFTEST_MISSED, severity=Severity.HIGH if escalated else Severity.MEDIUM,
        resident_id=record.resident_id, device_id=record.device_id, started_at=record.due_at,
        summary=summary,
        occurrence=f"{Rule.SELFTEST_MISSED.value}:{record.device_id}:{iso(record.last_at)}:{misses}",
        evidence={"device_id": record.device_id, "kind": record.kind, "last_selftest_at": iso(record.last_at),
                  "last_result": record.result, "misses": misses, "escalated": escalated,
                  "interval_h": interval.total_seconds() / 3600},
    )
    return replace(record, misses=misses, due_at=deadline), finding
