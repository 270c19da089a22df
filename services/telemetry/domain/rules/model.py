"""What rules look at and what they conclude."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    PERSON = "person"  # about the resident's wellbeing
    DEVICE = "device"  # about the equipment (offline, silent, battery, self-tests, never connected, stuck)


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY_RANK: dict[Severity, int] = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Rule(StrEnum):
    HEART_RATE = "heart_rate_range"
    RESPIRATION_RATE = "respiration_rate_range"
    NIGHT_BED_EXIT = "night_bed_exit"
    FALL = "fall_suspected"
    NO_MOVEMENT = "no_movement"
    NIGHT_HEART_RATE = "night_heart_rate_baseline"
    NIGHT_RESPIRATION_RATE = "night_respiration_rate_baseline"
    DEVICE_OFFLINE = "device_offline"
    DEVICE_SILENT = "device_silent"
    BATTERY_LOW = "battery_low"
    BUTTON_STUCK = "button_stuck"
    SELFTEST_FAILED = "device_selftest_failed"
    SELFTEST_MISSED = "device_selftest_missed"
    NEVER_CONNECTED = "device_never_connected"


DEVICE_RULES = frozenset({
    Rule.DEVICE_OFFLINE, Rule.DEVICE_SILENT, Rule.BATTERY_LOW, Rule.SELFTEST_FAILED, Rule.SELFTEST_MISSED,
    Rule.NEVER_CONNECTED, Rule.BUTTON_STUCK,
})
CATEGORY: dict[Rule, Category] = {
    rule: Category.DEVICE if rule in DEVICE_RULES else Category.PERSON for rule in Rule
}


@dataclass(frozen=True)
class Sample:
    """One bed sample."""

    ts: datetime
    occupied: bool
    heart_rate: int | None
    respiration_rate: int | None
    movement: float

    def as_json(self) -> dict[str, Any]:
        return {
            "ts": iso(self.ts), "occupied": self.occupied, "heart_rate": self.heart_rate,
            "respiration_rate": self.respiration_rate, "movement": self.movement,
        }


@dataclass(frozen=True)
class Minute:
    """A one-minute rollup of a bed, as much of it as the stillness rule needs."""

    bucket: datetime
    samples: int
    occupied_samples: int
    movement_max: float

    def as_json(self) -> dict[str, Any]:
        return {
            "bucket": iso(self.bucket), "samples": self.samples,
            "occupied_samples": self.occupied_samples, "movement_max": self.movement_max,
        }


@dataclass(frozen=True)
class Finding:
    """A rule's conclusion that an alert should be open.

    `occurrence` names this occurrence of the condition (the same run of samples, the same
    event): raising the same occurrence twice has no further effect.
    """

    rule: Rule
    severity: Severity
    resident_id: str
    device_id: str | None
    started_at: datetime
    summary: str
    occurrence: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def category(self) -> Category:
        return CATEGORY[self.rule]


@dataclass(frozen=True)
class Clearance:
    """A device condition ended: its open alert may be resolved by the system."""

    rule: Rule
    device_id: str
    at: datetime
    reason: str


def iso(ts: datetime) -> str:
    """RFC 3339 text of a time, for evidence."""
    return ts.isoformat().replace("+00:00", "Z")
