"""The one definition of a stuck button (homecare/buttons.py): a frantic resident is not stuck, a
key repeating faster than a person presses for longer than a few seconds is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from homecare.buttons import PressRun, StuckRule, after_press, became_stuck
from homecare.settings import Settings

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
RULE = StuckRule()


def feed(gaps_s: list[float], rule: StuckRule = RULE, start: datetime = T0) -> list[PressRun]:
    """The run after each press; the first press at `start`, each next one `gap` later."""
    runs, run, at = [], None, start
    for gap in [0.0, *gaps_s]:
        at += timedelta(seconds=gap)
        run = after_press(run, at, rule)
        runs.append(run)
    return runs


def every(gap_s: float, seconds: float) -> list[float]:
    return [gap_s] * round(seconds / gap_s)


@pytest.mark.parametrize("rate, seconds", [(2.0, 60), (2.5, 30), (2.9, 20), (3.0, 4.5), (4.0, 4.5), (1.0, 600)])
def test_a_person_pressing_fast_or_for_long_is_not_stuck(rate, seconds):
    assert not any(r.stuck for r in feed(every(1 / rate, seconds)))


@pytest.mark.parametrize("rate", [3.0, 4.0, 10.0])
def test_a_key_repeating_faster_than_a_person_for_five_seconds_is_stuck(rate):
    runs = feed(every(1 / rate, 8))
    first = next(i for i, r in enumerate(runs) if r.stuck)
    assert runs[first].span_s == pytest.approx(5.0, abs=1 / rate)  # judged once 5 s have passed
    assert became_stuck(runs[first - 1], runs[first])
    assert all(r.stuck and not became_stuck(p, r) for p, r in zip(runs[first:], runs[first + 1:], strict=False))
    assert runs[-1].presses == len(runs) and runs[-1].describe().startswith(f"{len(runs)} presses in 8 s")


def test_frantic_bursts_with_pauses_are_separate_runs_and_never_stuck():
    burst = every(1 / 3, 3)  # 3 a second for 3 s, a pause of 2 s, again, ...
    gaps = (burst + [2.0]) * 10
    runs = feed(gaps)
    assert not any(r.stuck for r in runs)
    assert max(r.presses for r in runs) == len(burst) + 1


def test_a_pause_longer_than_max_gap_ends_a_stuck_run_and_a_later_press_starts_afresh():
    runs = feed([*every(0.25, 6), 1.5, 0.25])
    stuck = [r for r in runs if r.stuck]
    assert stuck and runs[-3].stuck
    assert not runs[-2].stuck and runs[-2].presses == 1  # the press after the pause
    assert runs[-1].presses == 2 and runs[-1].started == runs[-2].started
    # A gap of exactly max_gap_s keeps the run.
    assert feed([1.0])[-1].presses == 2 and feed([1.001])[-1].presses == 1


def test_whole_second_timestamps_of_a_stuck_key_are_one_run():
    gaps = ([0.0] * 3 + [1.0]) * 8  # four presses stamped alike each second
    runs = feed(gaps)
    assert runs[-1].stuck and runs[-1].presses == len(runs)


def test_a_slow_run_does_not_dilute_a_stuck_one_that_follows():
    runs = feed(every(0.9, 60) + every(0.25, 12))  # a minute at ~1/s, then stuck at 4/s
    judged = next(i for i, r in enumerate(runs) if r.stuck)
    stuck_from = len(every(0.9, 60)) + 1
    # at most two spans after the key stuck: a slow run restarts once it has lasted a span
    assert (judged - stuck_from) * 0.25 <= 2 * RULE.min_span_s


def test_a_press_stamped_before_the_last_counts_as_at_the_last():
    run = feed(every(0.25, 2))[-1]
    earlier = after_press(run, run.started - timedelta(seconds=30), RULE)
    assert earlier.presses == run.presses + 1 and earlier.last == run.last and earlier.started == run.started


def test_the_thresholds_are_settings():
    settings = Settings(button_stuck_min_rate_per_s=5, button_stuck_min_span_s=10, button_stuck_max_gap_s=0.5)
    rule = StuckRule.from_settings(settings)
    assert rule == StuckRule(5.0, 10.0, 0.5)
    assert not any(r.stuck for r in feed(every(0.25, 8), rule))  # 4/s is a person's pace under this rule
    assert StuckRule.from_settings(Settings()) == RULE
    with pytest.raises(ValueError):
        Settings(button_stuck_min_rate_per_s=0)
