"""The thresholds of the rules. Person rules can differ per resident; device rules cannot."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import time
from typing import Any

# Fields a resident's own settings may override (the rest apply to every device alike).
PER_RESIDENT = (
    "timezone", "night_start", "night_end", "hr_low", "hr_high", "rr_low", "rr_high", "sustain_s",
    "bed_exit_minutes", "still_minutes", "still_movement_below", "baseline_sigmas", "baseline_min_change",
)


@dataclass(frozen=True)
class RuleLimits:
    """Every threshold a rule uses; the defaults are the service's documented defaults."""

    timezone: str = "Asia/Shanghai"
    night_start: time = time(22, 0)
    night_end: time = time(6, 0)
    # Heart and breathing rate: outside [low, high] for sustain_s (brief spikes do not count);
    # samples further apart than max_gap_s (or without a value) break a run.
    hr_low: int = 40
    hr_high: int = 120
    rr_low: int = 8
    rr_high: int = 30
    sustain_s: int = 120
    max_gap_s: int = 30
    # Out of bed at night for longer than this. An exit learnt late is looked at no sooner than
    # bed_exit_settle_s after it arrived, so an entry delivered right behind it can still count.
    bed_exit_minutes: int = 30
    bed_exit_settle_s: int = 60
    # In bed for this long without a minute whose largest movement reaches still_movement_below.
    still_minutes: int = 120
    still_movement_below: float = 0.2
    # Night means against the previous baseline_nights nights (at least baseline_min_nights of
    # them with baseline_min_minutes of data): off by baseline_sigmas standard deviations AND
    # by baseline_min_change of the baseline mean.
    baseline_nights: int = 7
    baseline_min_nights: int = 5
    baseline_sigmas: float = 3.0
    baseline_min_change: float = 0.15
    baseline_min_minutes: int = 120
    baseline_settle_minutes: int = 60
    # Devices.
    offline_grace_s: int = 300
    battery_low_below: float = 0.2
    battery_ok_above: float = 0.3
    # A stuck button's alert (what "stuck" is: homecare/buttons.py) clears once no stuck press has
    # come for this long: a button stuck on and off should not open and close an alert each time.
    button_stuck_clear_s: int = 60

    def override(self, values: dict[str, Any]) -> RuleLimits:
        """These limits with a resident's overrides (unknown keys are ignored)."""
        known = {f.name for f in fields(self)}
        changes = {k: _parse(k, v) for k, v in values.items() if k in known and v is not None}
        return replace(self, **changes)


def _parse(name: str, value: Any) -> Any:
    if name in ("night_start", "night_end") and isinstance(value, str):
        return time.fromisoformat(value)
    return value
