"""No movement while in bed for a long time: a turning reminder against pressure ulcers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Finding, Minute, Rule, Severity, iso

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class StillRun:
    """Consecutive minutes, all spent in bed without a movement reaching the threshold."""

    minutes: tuple[Minute, ...]

    @property
    def start(self) -> datetime:
        return self.minutes[0].bucket

    @property
    def end(self) -> datetime:
        return self.minutes[-1].bucket + MINUTE

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def is_still(minute: Minute, limits: RuleLimits) -> bool:
    """In bed for every sample of the minute, and no movement reaching the threshold."""
    return (
        minute.samples > 0
        and minute.occupied_samples == minute.samples
        and minute.movement_max < limits.still_movement_below
    )


def still_runs(minutes: Sequence[Minute], limits: RuleLimits) -> list[StillRun]:
    """Runs of still minutes, oldest first; a missing minute (no data) or a minute out of bed
    or with movement ends a run."""
    out: list[StillRun] = []
    current: list[Minute] = []
    for minute in sorted(minutes, key=lambda m: m.bucket):
        if current and (not is_still(minute, limits) or minute.bucket - current[-1].bucket > MINUTE):
            out.append(StillRun(tuple(current)))
            current = []
        if is_still(minute, limits):
            current.append(minute)
    if current:
        out.append(StillRun(tuple(current)))
    return out


def sustained(minutes: Sequence[Minute], limits: RuleLimits) -> list[StillRun]:
    """The still runs that lasted at least still_minutes."""
    need = timedelta(minutes=limits.still_minutes)
    return [run for run in still_runs(minutes, limits) if run.duration >= need]


def finding(run: StillRun, limits: RuleLimits, resident_id: str, device_id: str, started_at: datetime) -> Finding:
    """The turning reminder a long still run raises; evidence is its minutes."""
    minutes = int(run.duration.total_seconds() // 60)
    return Finding(
        rule=Rule.NO_MOVEMENT,
        severity=Severity.MEDIUM,
        resident_id=resident_id,
        device_id=device_id,
        started_at=started_at,
        summary=f"no movement in bed for {minutes} minutes: turn the resident",
        occurrence=f"{Rule.NO_MOVEMENT.value}:{device_id}:{iso(started_at)}",
        evidence={
            "still_minutes": limits.still_minutes, "movement_below": limits.still_movement_below,
            "run_start": iso(run.start), "run_end": iso(run.end),
            "minutes": [m.as_json() for m in run.minutes[: limits.still_minutes]],
        },
    )
