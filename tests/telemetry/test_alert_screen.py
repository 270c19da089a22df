"""The heart and breathing rate screen of the sample rules: only beds whose window holds a value
out of their resident's range have their raw samples read, and the screen hides no run. Both
screens run here: from the minute rollups (plain PostgreSQL, rebuilt just before) and from the
raw rows (TimescaleDB, whose real-time aggregate misses late rows in materialized buckets)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from psycopg.rows import tuple_row

from homecare.db.migrate import Flavour, current_flavour
from services.telemetry.domain.rules.limits import RuleLimits
from services.telemetry.store import rollups
from services.telemetry.store.alert_settings import ResidentAlertSettings, limits_for, save_settings
from services.telemetry.usecases import sample_rules
from tests.support import unique

from .alert_support import alerts_of, recent_start, store, vitals_samples

REACH = timedelta(seconds=150)


@pytest.fixture(params=[True, False], ids=["rollups", "raw-rows"])
def minutes_current(request, pool) -> bool:
    """Which screen: from the minute rollups, or from the raw rows (what TimescaleDB runs)."""
    if request.param and not _plain(pool):
        pytest.skip("the minute rollups are rebuilt by the service only on plain PostgreSQL;"
                    " TimescaleDB's are continuous aggregates, screened from the raw rows")
    return request.param


def _plain(pool) -> bool:
    with pool.connection() as conn:
        return current_flavour(conn) is Flavour.PLAIN


def _claim(conn, devices: set[str]) -> list[rollups.Touched]:
    """The given beds' touched minutes, claimed, and their rollups rebuilt where the analysis
    worker rebuilds them (plain PostgreSQL)."""
    touched = [t for t in rollups.claim_touched(conn, 100_000) if t.device_id in devices]
    if current_flavour(conn) is Flavour.PLAIN:
        rollups.recompute(conn, touched)
    return touched


def _evaluate(pool, minutes_current: bool, devices: set[str]) -> None:
    with pool.connection() as conn, conn.transaction():
        sample_rules.evaluate(conn, _claim(conn, devices), RuleLimits(), minutes_current=minutes_current)


def test_only_beds_with_a_value_out_of_their_range_pass_the_screen(pool, minutes_current):
    on_limits, low_rr, own_range, normal = (unique("bed") for _ in range(4))
    residents = {bed: unique("res") for bed in (on_limits, low_rr, own_range, normal)}
    start = recent_start()
    store(pool, on_limits, residents[on_limits], vitals_samples(start, 300, heart_rate=120, respiration_rate=30))
    store(pool, low_rr, residents[low_rr], vitals_samples(start, 300, respiration_rate=7))
    store(pool, own_range, residents[own_range], vitals_samples(start, 300, heart_rate=110))
    store(pool, normal, residents[normal], vitals_samples(start, 300))
    with pool.connection() as conn, conn.transaction():
        save_settings(conn, residents[own_range], ResidentAlertSettings(hr_high=100), by="dispatcher:test")
        touched = _claim(conn, set(residents))
        limits = limits_for(conn, residents.values(), RuleLimits())
        limit_of = {bed: limits[resident] for bed, resident in residents.items()}
        passed = sample_rules.out_of_range(conn, touched, dict.fromkeys(residents, REACH), limit_of,
                                           minutes_current)
    assert sorted(t.device_id for t in passed) == sorted([low_rr, own_range])


def test_late_samples_that_complete_a_run_pass_the_screen_and_alert(pool, minutes_current):
    bed, resident = unique("bed"), unique("res")
    start = recent_start().replace(second=50)
    run = vitals_samples(start, 150, heart_rate=130)
    store(pool, bed, resident, run[:100])  # 100 s: not sustained yet
    _evaluate(pool, minutes_current, {bed})
    assert alerts_of(pool, resident) == []
    store(pool, bed, resident, run[100:])  # its other minutes: the window reaches back to the start
    _evaluate(pool, minutes_current, {bed})
    [found] = alerts_of(pool, resident)
    assert found["rule"] == "heart_rate_range" and found["started_at"] == start


def test_a_residents_own_range_alerts_through_the_screen(pool, minutes_current):
    bed, resident = unique("bed"), unique("res")
    with pool.connection() as conn:
        save_settings(conn, resident, ResidentAlertSettings(hr_high=100), by="dispatcher:test")
    store(pool, bed, resident, vitals_samples(recent_start(), 200, heart_rate=110))  # within the default range
    _evaluate(pool, minutes_current, {bed})
    [found] = alerts_of(pool, resident)
    assert found["rule"] == "heart_rate_range" and "above 100" in found["summary"]


def test_only_beds_with_a_still_new_minute_have_their_hours_read(pool):
    moving, still, out_of_bed = unique("bed"), unique("bed"), unique("bed")
    residents = {bed: unique("res") for bed in (moving, still, out_of_bed)}
    start = recent_start()
    store(pool, moving, residents[moving], vitals_samples(start, 180, movement=0.4))
    store(pool, still, residents[still], vitals_samples(start, 180, movement=0.05))
    store(pool, out_of_bed, residents[out_of_bed], vitals_samples(start, 180, movement=0.0, occupied=False,
                                                                   heart_rate=None, respiration_rate=None))
    with pool.connection() as conn, conn.transaction():
        touched = _claim(conn, set(residents))
        passed = sample_rules.with_still_minutes(conn, touched, {}, RuleLimits())
    assert [t.device_id for t in passed] == [still]


def test_a_late_still_minute_that_joins_two_still_runs_raises_the_reminder(pool, minutes_current):
    bed, resident = unique("bed"), unique("res")
    start = recent_start(180).replace(second=0)
    still = vitals_samples(start, 121 * 60, step=10, movement=0.05)  # 121 minutes in bed, still
    gap = slice(60 * 6, 61 * 6)  # its 61st minute arrives last
    store(pool, bed, resident, still[:gap.start] + still[gap.stop:])
    _evaluate(pool, minutes_current, {bed})
    assert alerts_of(pool, resident) == []  # 60 and 60 minutes: neither run is long enough
    store(pool, bed, resident, still[gap])
    _evaluate(pool, minutes_current, {bed})
    [found] = alerts_of(pool, resident)
    assert found["rule"] == "no_movement" and found["started_at"] == start


def _seq_scans_of_minutes(conn) -> int:
    """Whole-table reads of the minute rollups in this transaction so far."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute(
            "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'telemetry.vitals_1m'::regclass"
        ).fetchone()[0]


def test_the_screens_read_the_rollups_by_index_whatever_the_table_holds(pool):
    """The rules' reads of minute rollups run on every analysis pass, and the table grows by a row a
    bed-minute: each must be an index range scan per window, never a pass over the whole table."""
    if not _plain(pool):
        pytest.skip("the rollup tables of plain PostgreSQL; TimescaleDB's are continuous aggregates")
    hot, still = unique("bed"), unique("bed")
    residents = {hot: unique("res"), still: unique("res")}
    start = recent_start()
    store(pool, hot, residents[hot], vitals_samples(start, 180, heart_rate=130))
    store(pool, still, residents[still], vitals_samples(start, 180, movement=0.05))
    others = unique("old")
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO telemetry.vitals_1m SELECT %s || (n %% 500), now() - make_interval(mins => n / 500 + 600),"
            " 'res-old', 60, 60, 60, 3600, 55, 65, 60, 900, 14, 16, 6, 0.2"
            " FROM generate_series(1, 50000) AS n", (others,))
        conn.execute("ANALYZE telemetry.vitals_1m")
    try:
        with pool.connection() as conn, conn.transaction():
            touched = _claim(conn, set(residents))
            before = _seq_scans_of_minutes(conn)
            passed = sample_rules.out_of_range(conn, touched, dict.fromkeys(residents, REACH),
                                               dict.fromkeys(residents, RuleLimits()), True)
            stillness = sample_rules.with_still_minutes(conn, touched, {}, RuleLimits())
            sample_rules.evaluate(conn, touched, RuleLimits(), minutes_current=True)
            after = _seq_scans_of_minutes(conn)
        assert [t.device_id for t in passed] == [hot] and [t.device_id for t in stillness] == [still]
        assert after - before == 0
    finally:
        with pool.connection() as conn:
            conn.execute("DELETE FROM telemetry.vitals_1m WHERE device_id LIKE %s", (others + "%",))
