"""Heart or breathing rate outside the resident's range for a sustained time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Finding, Rule, Sample, Severity, iso

Vital = Literal["heart_rate", "respiration_rate"]
RULE_OF: dict[Vital, Rule] = {"heart_rate": Rule.HEART_RATE, "respiration_rate": Rule.RESPIRATION_RATE}
_NAME = {"heart_rate": "heart rate", "respiration_rate": "respiration rate"}


@dataclass(frozen=True)
class Run:
    """Consecutive samples on one side of the range, with no gap wider than max_gap_s."""

    side: Literal["high", "low"]
    samples: tuple[Sample, ...]

    @property
    def start(self) -> datetime:
        return self.samples[0].ts

    @property
    def end(self) -> datetime:
        return self.samples[-1].ts

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def bounds(vital: Vital, limits: RuleLimits) -> tuple[int, int]:
    """The resident's normal range of a vital."""
    return (limits.hr_low, limits.hr_high) if vital == "heart_rate" else (limits.rr_low, limits.rr_high)


def runs(samples: Sequence[Sample], vital: Vital, limits: RuleLimits) -> list[Run]:
    """Every run out of range in samples (any order), oldest first.

    A sample without a value (bed empty, signal lost), a sample in range or on the other side,
    or a gap wider than max_gap_s ends a run.
    """
    low, high = bounds(vital, limits)
    gap = timedelta(seconds=limits.max_gap_s)
    out: list[Run] = []
    side: str | None = None
    current: list[Sample] = []
    for sample in sorted(samples, key=lambda s: s.ts):
        value = getattr(sample, vital)
        here = None if value is None else "high" if value > high else "low" if value < low else None
        if current and (here != side or sample.ts - current[-1].ts > gap):
            out.append(Run(side, tuple(current)))  # type: ignore[arg-type]
            current = []
        if here is not None:
            side = here
            current.append(sample)
    if current:
        out.append(Run(side, tuple(current)))  # type: ignore[arg-type]
    return out


def sustained(samples: Sequence[Sample], vital: Vital, limits: RuleLimits) -> list[Run]:
    """The runs out of range that lasted at least sustain_s (last sample minus first)."""
    need = timedelta(seconds=limits.sustain_s)
    return [run for run in runs(samples, vital, limits) if run.duration >= need]


def finding(
    run: Run, vital: Vital, limits: RuleLimits, resident_id: str, device_id: str, started_at: datetime
) -> Finding:
    """The alert a sustained run raises; evidence is the samples up to where it became sustained.

    `started_at` is the start of the episode the run belongs to (an earlier part of the same
    episode may lie outside the samples the rule was given).
    """
    low, high = bounds(vital, limits)
    need = timedelta(seconds=limits.sustain_s)
    trigger = [s for s in run.samples if s.ts - run.start <= need]
    values = [getattr(s, vital) for s in run.samples]
    extreme = max(values) if run.side == "high" else min(values)
    side = f"above {high}" if run.side == "high" else f"below {low}"
    return Finding(
        rule=RULE_OF[vital],
        severity=Severity.HIGH,
        resident_id=resident_id,
        device_id=device_id,
        started_at=started_at,
        summary=f"{_NAME[vital]} {side}/min for {int(run.duration.total_seconds())} s (reaching {extreme})",
        occurrence=f"{RULE_OF[vital].value}:{device_id}:{iso(started_at)}",
        evidence={
            "vital": vital, "side": run.side, "range": [low, high], "sustain_s": limits.sustain_s,
            "run_start": iso(run.start), "run_end": iso(run.end), "extreme": extreme,
            "samples": [s.as_json() for s in trigger],
        },
    )
