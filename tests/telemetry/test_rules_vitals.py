"""The range rule over samples: sustained runs alert, brief spikes and near misses do not."""

from __future__ import annotations

from datetime import timedelta

from services.telemetry.domain.rules import vitals
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Category, Rule, Severity

from .rules_support import T0, steady

LIMITS = RuleLimits()


def test_heart_rate_125_for_90_seconds_does_not_alert():
    samples = steady(T0, 60) + steady(T0 + timedelta(seconds=60), 90, heart_rate=125) + steady(
        T0 + timedelta(seconds=150), 60)
    assert vitals.runs(samples, "heart_rate", LIMITS)[0].duration == timedelta(seconds=89)
    assert vitals.sustained(samples, "heart_rate", LIMITS) == []


def test_heart_rate_125_for_150_seconds_alerts_with_the_triggering_samples_as_evidence():
    start = T0 + timedelta(seconds=60)
    samples = steady(T0, 60) + steady(start, 150, heart_rate=125) + steady(T0 + timedelta(seconds=210), 60)
    [run] = vitals.sustained(samples, "heart_rate", LIMITS)
    assert (run.side, run.start, run.duration) == ("high", start, timedelta(seconds=149))
    found = vitals.finding(run, "heart_rate", LIMITS, "res-1", "bed-1", run.start)
    assert found.rule is Rule.HEART_RATE and found.category is Category.PERSON
    assert found.severity is Severity.HIGH and found.resident_id == "res-1" and found.device_id == "bed-1"
    assert found.occurrence == f"heart_rate_range:bed-1:{start.isoformat().replace('+00:00', 'Z')}"
    evidence = found.evidence
    assert evidence["range"] == [40, 120] and evidence["extreme"] == 125
    # The samples up to the moment the run became sustained: 2 minutes at 1 Hz.
    assert len(evidence["samples"]) == 121
    assert all(s["heart_rate"] == 125 for s in evidence["samples"])


def test_exactly_the_sustain_time_alerts_one_second_less_does_not():
    assert vitals.sustained(steady(T0, 121, heart_rate=121), "heart_rate", LIMITS)
    assert not vitals.sustained(steady(T0, 120, heart_rate=121), "heart_rate", LIMITS)
    assert not vitals.sustained(steady(T0, 600, heart_rate=120), "heart_rate", LIMITS)  # the limit itself is in range


def test_low_heart_rate_and_both_sides_of_breathing_rate():
    assert vitals.sustained(steady(T0, 150, heart_rate=38), "heart_rate", LIMITS)[0].side == "low"
    assert vitals.sustained(steady(T0, 150, respiration_rate=31), "respiration_rate", LIMITS)[0].side == "high"
    assert vitals.sustained(steady(T0, 150, respiration_rate=7), "respiration_rate", LIMITS)[0].side == "low"
    assert not vitals.sustained(steady(T0, 150, respiration_rate=30), "respiration_rate", LIMITS)
    # A high heart rate is no breathing alert.
    assert not vitals.sustained(steady(T0, 300, heart_rate=150), "respiration_rate", LIMITS)


def test_brief_dips_into_range_missing_values_gaps_and_side_changes_break_a_run():
    high = steady(T0, 80, heart_rate=130)
    later = steady(T0 + timedelta(seconds=81), 80, heart_rate=130)
    dip = steady(T0 + timedelta(seconds=80), 1, heart_rate=100)
    lost = steady(T0 + timedelta(seconds=80), 1, heart_rate=None)
    low = steady(T0 + timedelta(seconds=80), 1, heart_rate=35)
    for middle in (dip, lost, low):
        assert not vitals.sustained(high + middle + later, "heart_rate", LIMITS)
    # A gap wider than max_gap_s (30 s) ends a run; a narrower one does not.
    wide = steady(T0 + timedelta(seconds=111), 80, heart_rate=130)
    assert not vitals.sustained(high + wide, "heart_rate", LIMITS)
    narrow = steady(T0 + timedelta(seconds=100), 80, heart_rate=130)
    assert vitals.sustained(high + narrow, "heart_rate", LIMITS)


def test_samples_in_any_order_and_sparse_beds_are_judged_by_time():
    samples = steady(T0, 150, heart_rate=125, step=10)  # one sample every 10 s
    assert vitals.sustained(list(reversed(samples)), "heart_rate", LIMITS)


def test_a_residents_own_range_and_sustain_time():
    mine = LIMITS.override({"hr_high": 100, "sustain_s": 60})
    samples = steady(T0, 90, heart_rate=110)
    assert vitals.sustained(samples, "heart_rate", mine)
    assert not vitals.sustained(samples, "heart_rate", LIMITS)
