"""Rollups on the real database equal aggregates computed directly from the raw rows: after late
and repeated data, while writers and the analysis worker run at once, and past retention."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from homecare.db.migrate import Flavour, current_flavour
from services.telemetry.domain.samples import parse_for_copy
from services.telemetry.settings import TelemetrySettings
from services.telemetry.store import rollups
from services.telemetry.store.samples import write_parsed
from services.telemetry.usecases.context import Alerting
from services.telemetry.workers.maintenance import PartitionKeeper
from tests.support import unique

from .helpers import analyse, base_time, message, refresh_aggregates, sample, series

ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
_FROM_RAW = f"""
SELECT device_id, date_bin(%(step)s, ts, {ORIGIN}) AS bucket, resident_id,
       count(*) AS samples, count(*) FILTER (WHERE occupied) AS occupied_samples,
       count(heart_rate) AS heart_rate_count, sum(heart_rate) AS heart_rate_sum,
       min(heart_rate) AS heart_rate_min, max(heart_rate) AS heart_rate_max,
       count(respiration_rate) AS respiration_rate_count, sum(respiration_rate) AS respiration_rate_sum,
       min(respiration_rate) AS respiration_rate_min, max(respiration_rate) AS respiration_rate_max,
       sum(movement::numeric) AS movement_sum, max(movement) AS movement_max
FROM telemetry.bed_samples WHERE device_id = ANY(%(beds)s)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
_ROLLUP = """
SELECT device_id, bucket, resident_id, samples, occupied_samples, heart_rate_count, heart_rate_sum,
       heart_rate_min, heart_rate_max, respiration_rate_count, respiration_rate_sum, respiration_rate_min,
       respiration_rate_max, movement_sum, movement_max
FROM telemetry.{table} WHERE device_id = ANY(%(beds)s) ORDER BY 1, 2, 3
"""


def _write(pool, *batches) -> int:
    """As ingest writes a message."""
    with pool.connection() as conn, conn.transaction():
        return write_parsed(conn, parse_for_copy(message(*batches).dumps())).stored


def _assert_rollups_equal_raw(pool, beds: list[str]) -> int:
    """Both rollup tables, row for row, equal to GROUP BY over the raw rows; how many minute rows."""
    refresh_aggregates(pool)
    with pool.connection() as conn:
        for table, step in (("vitals_1m", timedelta(minutes=1)), ("vitals_1h", timedelta(hours=1))):
            expected = conn.execute(_FROM_RAW, {"step": step, "beds": beds}).fetchall()
            actual = conn.execute(_ROLLUP.format(table=table), {"beds": beds}).fetchall()
            assert expected, table
            assert actual == expected, table
            if table == "vitals_1m":
                minutes = len(expected)
    return minutes


def test_rollups_equal_raw_aggregates_after_late_and_repeated_data(pool):
    bed, other = unique("bed"), unique("bed")
    start = base_time(days_ago=2)
    first = series(start, 400, timedelta(seconds=5), seed=1)  # ~33 minutes over an hour boundary or not
    _write(pool, (bed, "res-r", first), (other, "res-o", first[:30]))
    assert analyse(pool) > 0
    _assert_rollups_equal_raw(pool, [bed, other])
    # Late samples between the stored ones (every 5 s + 2 s), a redelivered batch, and samples
    # of an earlier hour: all land in buckets that already have rollups.
    late = series(start + timedelta(seconds=2), 300, timedelta(seconds=5), seed=2)
    earlier = series(start - timedelta(hours=1, minutes=3), 50, timedelta(seconds=7), seed=3)
    assert _write(pool, (bed, "res-r", late)) == 300
    assert _write(pool, (bed, "res-r", first[:100])) == 0
    assert _write(pool, (bed, "res-r", earlier)) == 50
    analyse(pool)
    minutes = _assert_rollups_equal_raw(pool, [bed, other])
    assert minutes > 30
    # Nothing new: a second pass finds no touched minute.
    assert analyse(pool) == 0


def test_touched_minutes_are_recomputed_as_runs_of_consecutive_minutes():
    t0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    at = [t0 + timedelta(minutes=m) for m in (0, 1, 2, 5, 7, 8)]
    params = rollups.windows_params([rollups.Touched("bed-a", at[0], at[-1], tuple(at)),
                                     rollups.Touched('bed "b"', t0, t0, (t0,))])
    assert params["w_devices"] == '{"bed-a","bed-a","bed-a","bed \\"b\\""}'
    starts = [datetime.fromisoformat(t) for t in params["w_from"].strip("{}").split(",")]
    ends = [datetime.fromisoformat(t) for t in params["w_to"].strip("{}").split(",")]
    assert list(zip(starts, ends, strict=True)) == [
        (at[0], at[2] + rollups.MINUTE), (at[3], at[3] + rollups.MINUTE), (at[4], at[5] + rollups.MINUTE),
        (t0, t0 + rollups.MINUTE),
    ]


def test_an_hour_follows_its_minutes_as_they_fill_in(pool):
    """An hour's rollup follows its minutes as they fill in: a minute with no rates at first gets
    some, a new minute joins the hour, a lower and a higher rate arrive late."""
    bed = unique("bed")
    start = base_time(days_ago=1).replace(minute=10, second=0, microsecond=0)
    empty = [sample(start + timedelta(seconds=i), occupied=False) for i in range(0, 30, 3)]
    _write(pool, (bed, "res-f", empty))
    analyse(pool)
    _assert_rollups_equal_raw(pool, [bed])
    later = [sample(start + timedelta(seconds=i), occupied=True) for i in range(1, 30, 3)]
    later[0] = later[0].model_copy(update={"heart_rate": 31, "respiration_rate": 5})
    later[1] = later[1].model_copy(update={"heart_rate": 240, "respiration_rate": 59, "movement": 0.999})
    _write(pool, (bed, "res-f", later), (bed, "res-f", series(start + timedelta(minutes=7), 20, seed=8)))
    analyse(pool)
    _assert_rollups_equal_raw(pool, [bed])
    with pool.connection() as conn:
        hour = conn.execute("SELECT heart_rate_min, heart_rate_max FROM telemetry.vitals_1h WHERE device_id = %s",
                            (bed,)).fetchone()
    assert (hour["heart_rate_min"], hour["heart_rate_max"]) == (31, 240)


def test_a_bed_handed_to_another_resident_keeps_their_minutes_apart(pool):
    bed = unique("bed")
    start = base_time(days_ago=1).replace(second=0)
    _write(pool, (bed, "res-before", series(start, 30)))
    _write(pool, (bed, "res-after", series(start + timedelta(seconds=30), 30, seed=5)))
    analyse(pool)
    _assert_rollups_equal_raw(pool, [bed])
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT resident_id, samples FROM telemetry.vitals_1m WHERE device_id = %s ORDER BY 1", (bed,)
        ).fetchall()
    assert [(r["resident_id"], r["samples"]) for r in rows] == [("res-after", 30), ("res-before", 30)]


def test_rollups_stay_exact_while_writers_and_analysis_run_at_once(pool):
    """Two writers (replicas) store overlapping, repeated and late batches of the same beds while
    the analysis worker keeps recomputing: no sample committed after a recompute is missed."""
    beds = [unique("bed") for _ in range(3)]
    start = base_time(days_ago=1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(40):
                bed = rng.choice(beds)
                offset = rng.randint(0, 3600)
                _write(pool, (bed, "res-c", series(start + timedelta(seconds=offset), 20, seed=rng.randint(0, 9))))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def analyser() -> None:
        try:
            while not stop.is_set():
                analyse(pool)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in (1, 2)]
    background = threading.Thread(target=analyser)
    background.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    background.join(120)
    assert not errors, errors
    analyse(pool)
    assert _assert_rollups_equal_raw(pool, beds) > 10


def test_writers_never_wait_for_the_analysis_of_the_same_minutes(pool):
    """The analysis claims markers in a transaction of its own: while it recomputes (its
    transaction open), a writer adding samples to the very minutes it works on goes through,
    and leaves new markers, so the next pass includes its samples."""
    bed = unique("bed")
    start = base_time(days_ago=1)
    _write(pool, (bed, "res-w", series(start, 120, seed=1)))
    with pool.connection() as worker:
        worker.commit()
        with worker.transaction():
            touched = rollups.lease_touched(worker, 100_000)
        assert any(t.device_id == bed for t in touched)
        with worker.transaction():
            if current_flavour(worker) is Flavour.PLAIN:  # TimescaleDB: the aggregates' own refresh
                rollups.recompute(worker, touched)
            with pool.connection() as writer, writer.transaction():
                # Waiting for the worker would block here until it commits; fail instead.
                writer.execute("SET LOCAL lock_timeout = '2s'")
                late = series(start + timedelta(milliseconds=500), 120, seed=2)
                assert write_parsed(writer, parse_for_copy(message((bed, "res-w", late)).dumps())).stored == 120
            rollups.release(worker, touched)
    analyse(pool)
    _assert_rollups_equal_raw(pool, [bed])


def test_minutes_claimed_by_a_pass_that_died_are_analysed_by_the_next(pool):
    bed = unique("bed")
    _write(pool, (bed, "res-d", series(base_time(days_ago=1), 200, seed=4)))
    with pool.connection() as conn:
        with conn.transaction():
            assert rollups.lease_touched(conn, 100_000)
        with pytest.raises(psycopg.Error), conn.transaction():  # the pass fails after its claim
            conn.execute("SELECT 1 / 0")
    with pool.connection() as conn:
        left = conn.execute("SELECT count(*) AS n FROM telemetry.touched_claims WHERE device_id = %s",
                            (bed,)).fetchone()["n"]
        assert left > 0
        if current_flavour(conn) is Flavour.PLAIN:  # TimescaleDB's real-time aggregate shows them anyway
            assert conn.execute("SELECT count(*) AS n FROM telemetry.vitals_1m WHERE device_id = %s",
                                (bed,)).fetchone()["n"] == 0
    assert analyse(pool) >= left
    _assert_rollups_equal_raw(pool, [bed])
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM telemetry.touched_claims").fetchone()["n"] == 0


def test_a_bounded_pass_leaves_the_rest_for_the_next(pool):
    """The worker's loop bounds each pass (due timers must not wait behind a backlog of touched
    minutes); the minutes it did not reach are analysed by the next pass."""
    from services.telemetry.store.alert_settings import defaults_from
    from services.telemetry.workers.analysis import AnalysisWorker

    beds = [unique("bed") for _ in range(3)]
    start = base_time(days_ago=1)
    _write(pool, *[(bed, "res-b", series(start, 400, seed=n)) for n, bed in enumerate(beds)])
    analyse(pool)  # whatever other tests left behind
    config = TelemetrySettings(analysis_batch=5)
    late = [(bed, "res-b", series(start + timedelta(milliseconds=500), 400, seed=9)) for bed in beds]
    _write(pool, *late)  # 3 beds x 7 or 8 minutes
    worker = AnalysisWorker(pool, config, defaults_from(config), Alerting())
    assert worker.analyse_once(rounds=2) <= 10
    with pool.connection() as conn:
        left = conn.execute("SELECT count(*) AS n FROM telemetry.touched_minutes WHERE device_id = ANY(%s)",
                            (beds,)).fetchone()["n"]
    assert left > 0
    assert worker.analyse_once() >= left
    _assert_rollups_equal_raw(pool, beds)


@pytest.mark.parametrize("hour", [0, 23])  # retention is in whole days, whatever the hour of the upkeep
def test_retention_drops_old_daily_partitions_and_old_rollup_rows(pool, hour):
    with pool.connection() as conn:
        if current_flavour(conn) is not Flavour.PLAIN:
            pytest.skip("the plain flavour's retention; TimescaleDB has policies")
    today = datetime.now(UTC).replace(hour=hour, minute=30)
    old_day = (today - timedelta(days=30)).replace(hour=12, minute=0, second=0, microsecond=0)
    bed = unique("bed")
    _write(pool, (bed, "res-old", series(old_day, 10)), (bed, "res-old", series(old_day + timedelta(days=1), 10)))
    analyse(pool)
    keeper = PartitionKeeper(pool, TelemetrySettings(
        raw_retention_days=29, rollup_1m_retention_days=29, rollup_1h_retention_days=365,
        partitions_behind_days=31, partitions_ahead_days=1,
    ))
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM telemetry.bed_samples WHERE device_id = %s",
                            (bed,)).fetchone()["n"] == 20
    upkeep = keeper.run_once(today)
    # The partitions of the last 31 days were made (moving the old rows out of DEFAULT), then
    # every day that ended 29 days ago or earlier was dropped: the older day's samples are gone.
    assert upkeep.dropped >= 1 and upkeep.pruned_1m >= 1
    with pool.connection() as conn:
        left = conn.execute(
            "SELECT ts FROM telemetry.bed_samples WHERE device_id = %s ORDER BY ts", (bed,)).fetchall()
        assert [r["ts"].date() for r in left] == [(old_day + timedelta(days=1)).date()] * 10
        minutes = conn.execute("SELECT bucket FROM telemetry.vitals_1m WHERE device_id = %s", (bed,)).fetchall()
        assert {r["bucket"].date() for r in minutes} == {(old_day + timedelta(days=1)).date()}
        hours = conn.execute("SELECT count(*) AS n FROM telemetry.vitals_1h WHERE device_id = %s", (bed,)).fetchone()
        assert hours["n"] == 2  # hourly rollups are kept for years
        assert conn.execute(
            "SELECT to_regclass(%s) AS r", (f"telemetry.bed_samples_{old_day:%Y%m%d}",)).fetchone()["r"] is None
