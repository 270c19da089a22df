"""The sample rules on the real database, run by the analysis worker after each ingest commit:
sustained heart rate, near misses, late data, restarts, one alert per resident and rule,
stillness and the night baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.telemetry.usecases import alert_actions as actions
from services.telemetry.usecases.context import Alerting
from tests.support import unique

from .alert_support import alert, alerts_of, recent_start, store, vitals_samples, worker


def _stream(pool, bed, resident, samples, analyser, batch: int = 10) -> None:
    """Ingest in 10-sample batches, analysing after each, as the service does."""
    for i in range(0, len(samples), batch):
        store(pool, bed, resident, samples[i:i + batch])
        analyser.analyse_once()


def test_heart_rate_125_for_90_seconds_does_not_alert_and_for_150_seconds_does(pool):
    analyser = worker(pool)
    quiet_bed, quiet = unique("bed"), unique("res")
    start = recent_start()
    _stream(pool, quiet_bed, quiet, vitals_samples(start, 60) + vitals_samples(start + timedelta(seconds=60), 90,
            heart_rate=125) + vitals_samples(start + timedelta(seconds=150), 60), analyser)
    assert alerts_of(pool, quiet) == []

    bed, resident = unique("bed"), unique("res")
    high = start + timedelta(seconds=60)
    _stream(pool, bed, resident, vitals_samples(start, 60) + vitals_samples(high, 150, heart_rate=125)
            + vitals_samples(start + timedelta(seconds=210), 60), analyser)
    [found] = alerts_of(pool, resident)
    assert (found["rule"], found["category"], found["severity"], found["state"]) == (
        "heart_rate_range", "person", "high", "open")
    assert found["device_id"] == bed and found["started_at"] == high and found["occurrences"] == 1
    detail = alert(pool, found["id"])
    assert [e["kind"] for e in detail["timeline"]] == ["opened"]  # seen in many passes, raised once
    samples = detail["evidence"]["samples"]
    assert len(samples) == 121 and {s["heart_rate"] for s in samples} == {125}
    assert samples[0]["ts"] == high.isoformat().replace("+00:00", "Z")


def test_the_sustained_window_survives_a_restart(pool):
    bed, resident = unique("bed"), unique("res")
    start = recent_start()
    samples = vitals_samples(start, 150, respiration_rate=34)
    _stream(pool, bed, resident, samples[:80], worker(pool))
    assert alerts_of(pool, resident) == []
    # A new worker (a restarted or another replica) continues from what is stored.
    _stream(pool, bed, resident, samples[80:], worker(pool))
    [found] = alerts_of(pool, resident)
    assert found["rule"] == "respiration_rate_range" and "above 30" in found["summary"]


@pytest.mark.parametrize("second", [0, 20, 45])  # where the run starts in its minute matters to the window
def test_late_samples_that_close_a_gap_complete_a_sustained_run(pool, second):
    analyser = worker(pool)
    bed, resident = unique("bed"), unique("res")
    start = recent_start().replace(second=second)
    run = vitals_samples(start, 150, heart_rate=35)
    _stream(pool, bed, resident, run[:50] + run[100:], analyser)  # 50 s missing: wider than 30 s
    assert alerts_of(pool, resident) == []
    _stream(pool, bed, resident, run[50:100], analyser)  # delivered late
    [found] = alerts_of(pool, resident)
    assert found["rule"] == "heart_rate_range" and found["started_at"] == start and "below 40" in found["summary"]
    # Delivered again: stored once, raised once.
    _stream(pool, bed, resident, run, analyser)
    assert alert(pool, found["id"])["occurrences"] == 1


def test_one_unresolved_alert_per_resident_and_rule(pool):
    analyser = worker(pool)
    bed, resident = unique("bed"), unique("res")
    start = recent_start(40)
    episodes = [start, start + timedelta(minutes=10), start + timedelta(minutes=20)]
    _stream(pool, bed, resident, vitals_samples(episodes[0], 150, heart_rate=140), analyser)
    _stream(pool, bed, resident, vitals_samples(episodes[0] + timedelta(seconds=150), 60), analyser)
    _stream(pool, bed, resident, vitals_samples(episodes[1], 150, heart_rate=140), analyser)
    [first] = alerts_of(pool, resident)
    detail = alert(pool, first["id"])
    assert detail["occurrences"] == 2 and [e["kind"] for e in detail["timeline"]] == ["opened", "recurred"]
    with pool.connection() as conn:
        actions.resolve(conn, Alerting(), first["id"], "dispatcher:test", "checked on the resident")
    _stream(pool, bed, resident, vitals_samples(episodes[2], 150, heart_rate=140), analyser)
    alerts = alerts_of(pool, resident)
    assert [a["state"] for a in alerts] == ["open", "resolved"]
    assert alerts[0]["started_at"] == episodes[2]


def test_two_hours_without_movement_in_bed_is_a_turning_reminder(pool):
    analyser = worker(pool)
    start = recent_start(200)
    still_bed, still = unique("bed"), unique("res")
    store(pool, still_bed, still, vitals_samples(start, 125 * 60, step=10, movement=0.05), batch=60)
    analyser.analyse_once()
    [found] = alerts_of(pool, still)
    assert found["rule"] == "no_movement" and found["severity"] == "medium"
    assert len(alert(pool, found["id"])["evidence"]["minutes"]) == 120

    turned_bed, turned = unique("bed"), unique("res")
    samples = vitals_samples(start, 125 * 60, step=10, movement=0.05)
    samples[360] = samples[360].model_copy(update={"movement": 0.7})  # turned over after an hour
    store(pool, turned_bed, turned, samples, batch=60)
    analyser.analyse_once()
    assert alerts_of(pool, turned) == []


def _nights(pool, bed: str, resident: str, heart_rates: list[int], last_night: datetime) -> None:
    """One sample a minute from 22:00 to 06:00 (Shanghai) for each night, the last one last."""
    zone = ZoneInfo("Asia/Shanghai")
    for back, hr in enumerate(reversed(heart_rates)):
        day = last_night.date() - timedelta(days=back)
        start = datetime(day.year, day.month, day.day, 22, 0, tzinfo=zone).astimezone(UTC)
        store(pool, bed, resident, vitals_samples(start, 8 * 3600, heart_rate=hr, step=60))


def _the_night_before_last() -> tuple[datetime, datetime]:
    """(the start of the local day whose night began the day before yesterday, 08:00 after it ended)."""
    zone = ZoneInfo("Asia/Shanghai")
    today = datetime.now(zone).date()
    night = datetime(today.year, today.month, today.day, tzinfo=zone) - timedelta(days=2)
    return night, datetime(today.year, today.month, today.day, 8, 0, tzinfo=zone) - timedelta(days=1)


def test_a_night_off_the_residents_own_baseline_alerts_once(pool):
    night, after_night = _the_night_before_last()
    usual_bed, usual = unique("bed"), unique("res")
    odd_bed, odd = unique("bed"), unique("res")
    history = [58, 61, 60, 59, 62, 60, 60]
    _nights(pool, usual_bed, usual, history + [61], night)
    _nights(pool, odd_bed, odd, history + [76], night)
    analyser = worker(pool)
    analyser.analyse_once()
    raised = analyser.nights_once(after_night)
    assert alerts_of(pool, usual) == []
    [found] = alerts_of(pool, odd)
    assert found["id"] in raised and found["rule"] == "night_heart_rate_baseline" and found["device_id"] is None
    evidence = alert(pool, found["id"])["evidence"]
    assert evidence["mean"] == 76 and evidence["baseline_mean"] == 60 and evidence["night"] == night.date().isoformat()
    assert analyser.nights_once(after_night + timedelta(minutes=30)) == []  # each night is evaluated once


def test_samples_of_a_night_that_arrive_after_it_was_evaluated_evaluate_it_again(pool):
    night, after_night = _the_night_before_last()
    bed, resident = unique("bed"), unique("res")
    # Seven usual nights; of the last one only its first hour has arrived when it is evaluated.
    _nights(pool, bed, resident, [58, 61, 60, 59, 62, 60, 60], night - timedelta(days=1))
    first_hour = datetime(night.year, night.month, night.day, 22, 0, tzinfo=night.tzinfo).astimezone(UTC)
    store(pool, bed, resident, vitals_samples(first_hour, 3600, heart_rate=60, step=60))
    analyser = worker(pool)
    analyser.analyse_once()
    assert analyser.nights_once(after_night) == [] and alerts_of(pool, resident) == []
    # The bed was offline for the rest of the night and sends its backlog now: 85 bpm all night.
    store(pool, bed, resident, vitals_samples(first_hour + timedelta(hours=1), 7 * 3600, heart_rate=85, step=60))
    analyser.analyse_once()
    raised = analyser.nights_once(after_night + timedelta(hours=3))
    [found] = alerts_of(pool, resident)
    assert found["id"] in raised and found["rule"] == "night_heart_rate_baseline"
    assert alert(pool, found["id"])["evidence"]["night"] == night.date().isoformat()
    assert analyser.nights_once(after_night + timedelta(hours=4)) == []  # evaluated again once
