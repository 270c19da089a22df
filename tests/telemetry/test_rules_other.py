"""Stillness, night baseline, device and fall rules, episodes: pure, no database."""

from __future__ import annotations

from datetime import date, timedelta

from services.telemetry.domain.rules import baseline, device, fall, stillness
from services.telemetry.domain.rules.episodes import Episode, continues, merge
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.domain.rules.model import Category, Clearance, Finding, Rule, Severity

from .rules_support import T0, minutes

LIMITS = RuleLimits()


# -- no movement in bed ------------------------------------------------------------------------


def test_two_hours_still_in_bed_is_a_turning_reminder_and_119_minutes_are_not():
    assert not stillness.sustained(minutes(T0, 119), LIMITS)
    [run] = stillness.sustained(minutes(T0, 120), LIMITS)
    assert run.duration == timedelta(hours=2)
    found = stillness.finding(run, LIMITS, "res-1", "bed-1", run.start)
    assert found.rule is Rule.NO_MOVEMENT and found.severity is Severity.MEDIUM
    assert len(found.evidence["minutes"]) == 120 and "turn" in found.summary


def test_a_movement_an_empty_minute_or_missing_data_breaks_stillness():
    for middle in (minutes(T0 + timedelta(minutes=60), 1, movement_max=0.5),
                   minutes(T0 + timedelta(minutes=60), 1, occupied=False), []):
        sequence = minutes(T0, 60) + middle + minutes(T0 + timedelta(minutes=61), 100)
        assert not stillness.sustained(sequence, LIMITS), middle
    # Part of a minute out of bed is not "in bed all the time".
    partly = minutes(T0 + timedelta(minutes=60), 1)[0]
    partly = type(partly)(partly.bucket, 60, 59, 0.01)
    assert not stillness.sustained(minutes(T0, 60) + [partly] + minutes(T0 + timedelta(minutes=61), 100), LIMITS)


def test_the_stillness_threshold_and_duration_are_per_resident():
    restless = minutes(T0, 150, movement_max=0.25)
    assert not stillness.sustained(restless, LIMITS)
    assert stillness.sustained(restless, LIMITS.override({"still_movement_below": 0.3}))
    assert stillness.sustained(minutes(T0, 90), LIMITS.override({"still_minutes": 90}))


# -- night baseline ----------------------------------------------------------------------------


def _night(day: int, hr: float | None, rr: float | None = 14.0, mins: int = 400) -> baseline.Night:
    return baseline.Night(date(2026, 11, day), hr, mins if hr is not None else 0, rr, mins if rr is not None else 0)


HISTORY = [_night(d, hr) for d, hr in zip(range(10, 17), (58, 60, 61, 59, 60, 62, 60), strict=True)]


def test_a_night_far_off_the_seven_night_baseline_alerts_and_a_usual_night_does_not():
    found = baseline.deviation(_night(17, 75), HISTORY, "heart_rate", LIMITS, "res-1")
    assert isinstance(found, Finding) and found.rule is Rule.NIGHT_HEART_RATE and found.device_id is None
    assert found.evidence["baseline_mean"] == 60 and len(found.evidence["baseline"]) == 7
    assert found.occurrence == "night_heart_rate_baseline:res-1:2026-11-17"
    assert baseline.deviation(_night(17, 62.5), HISTORY, "heart_rate", LIMITS, "res-1") is None
    # Breathing rate has its own rule; 14 every night is no deviation.
    assert baseline.deviation(_night(17, 75), HISTORY, "respiration_rate", LIMITS, "res-1") is None
    assert baseline.deviation(_night(17, 60, rr=20), HISTORY, "respiration_rate", LIMITS, "res-1").rule is (
        Rule.NIGHT_RESPIRATION_RATE)


def test_both_a_number_of_deviations_and_a_relative_change_are_needed():
    # Very steady nights: 62 is many sigmas off but only 3% away: quiet.
    steady = [_night(d, 60.0 + (d % 2) * 0.2) for d in range(10, 17)]
    assert baseline.deviation(_night(17, 62), steady, "heart_rate", LIMITS, "res-1") is None
    # Very variable nights: 80 is 33% up but within 3 sigmas: quiet.
    wild = [_night(d, hr) for d, hr in zip(range(10, 17), (45, 75, 50, 80, 55, 70, 45), strict=True)]
    assert baseline.deviation(_night(17, 80), wild, "heart_rate", LIMITS, "res-1") is None


def test_without_enough_usable_nights_there_is_no_baseline():
    assert baseline.deviation(_night(17, 90), HISTORY[:4], "heart_rate", LIMITS, "res-1") is None
    thin = HISTORY[:4] + [_night(d, 60, mins=30) for d in (14, 15, 16)]
    assert baseline.deviation(_night(17, 90), thin, "heart_rate", LIMITS, "res-1") is None
    assert baseline.deviation(_night(17, 90, mins=30), HISTORY, "heart_rate", LIMITS, "res-1") is None
    # Only the previous nights count: a later night in the list is ignored.
    assert baseline.deviation(_night(13, 90), HISTORY, "heart_rate", LIMITS, "res-1") is None


# -- devices and falls ---------------------------------------------------------------------------


def _status(state: str, at=T0, battery=None) -> device.DeviceStatus:
    return device.DeviceStatus("bed-1", "res-1", "bed", state, at, battery)


def test_offline_becomes_an_alert_only_after_the_grace_time_and_online_clears_it():
    offline = _status("offline")
    assert device.on_status(offline, LIMITS) == []
    assert device.due_at(offline, LIMITS) == T0 + timedelta(minutes=5)
    assert device.due(offline, T0 + timedelta(minutes=4), LIMITS) is None
    found = device.due(offline, T0 + timedelta(minutes=6), LIMITS)
    assert found.rule is Rule.DEVICE_OFFLINE and found.category is Category.DEVICE
    cleared = device.on_status(_status("online", T0 + timedelta(minutes=7)), LIMITS)
    assert {c.rule for c in cleared if isinstance(c, Clearance)} == {
        Rule.DEVICE_OFFLINE, Rule.DEVICE_SILENT, Rule.NEVER_CONNECTED}
    assert device.due(_status("online"), T0 + timedelta(hours=1), LIMITS) is None


def test_silent_alerts_at_once_and_stale_announcements_are_ignored():
    [found] = device.on_status(_status("silent"), LIMITS)
    assert found.rule is Rule.DEVICE_SILENT and found.severity is Severity.MEDIUM
    assert device.is_newer(None, _status("online"))
    assert not device.is_newer(_status("online", T0), _status("offline", T0))
    assert not device.is_newer(_status("online", T0), _status("offline", T0 - timedelta(seconds=1)))


def test_battery_low_below_the_threshold_and_cleared_above_the_recovery_level():
    [low] = [o for o in device.on_status(_status("online", battery=0.15), LIMITS) if o.rule is Rule.BATTERY_LOW]
    assert low.rule is Rule.BATTERY_LOW and low.category is Category.DEVICE and low.evidence["battery"] == 0.15
    assert [o for o in device.on_status(_status("online", battery=0.25), LIMITS) if o.rule is Rule.BATTERY_LOW] == []
    ok = [o for o in device.on_status(_status("online", battery=0.9), LIMITS) if o.rule is Rule.BATTERY_LOW]
    assert len(ok) == 1 and isinstance(ok[0], Clearance)


def test_a_suspected_fall_is_a_critical_alert_per_event():
    found = fall.finding("bed-1", "res-1", "ev-9", T0, 0.9, emergency_requested=True)
    assert found.rule is Rule.FALL and found.severity is Severity.CRITICAL and found.category is Category.PERSON
    assert found.occurrence == "fall_suspected:bed-1:ev-9" and found.evidence["emergency_requested"] is True


# -- episodes ----------------------------------------------------------------------------------


def test_overlapping_looks_at_a_condition_are_one_episode_and_a_later_one_is_new():
    gap = timedelta(seconds=30)
    first = merge(None, T0, T0 + timedelta(minutes=3), gap)
    assert first == Episode(T0, T0 + timedelta(minutes=3))
    # A later look that starts inside (or right after) the episode extends it.
    later = merge(first, T0 + timedelta(minutes=2), T0 + timedelta(minutes=6), gap)
    assert later == Episode(T0, T0 + timedelta(minutes=6))
    assert continues(later, T0 + timedelta(minutes=6, seconds=20), T0 + timedelta(minutes=9), gap)
    assert not continues(later, T0 + timedelta(minutes=10), T0 + timedelta(minutes=13), gap)
    assert merge(later, T0 + timedelta(minutes=10), T0 + timedelta(minutes=13), gap).started_at == (
        T0 + timedelta(minutes=10))
