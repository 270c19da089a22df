"""Writing and reading samples on the real database: dedupe, exact round trips, aggregates."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from homecare.db.migrate import Flavour, current_flavour
from homecare.errors import Invalid
from services.telemetry.domain.samples import Parsed, parse_batches, parse_common_form, parse_for_copy, parse_forwarded
from services.telemetry.queries import count_samples, latest_states, vitals
from services.telemetry.store.samples import ensure_partitions, write_parsed, write_samples
from tests.support import unique

from .helpers import analyse, as_tuples, base_time, message, refresh_aggregates, sample, series, stored_rows


def _write(pool, batches_message):
    with pool.connection() as conn, conn.transaction():
        result = write_samples(conn, parse_batches(batches_message.dumps()))
    analyse(pool)  # the rollups, as the service's analysis worker keeps them
    return result


def test_each_device_and_ts_is_stored_once(pool):
    bed = unique("bed")
    first, second = series(base_time(), 10), series(base_time() + timedelta(seconds=5), 10, seed=9)
    result = _write(pool, message((bed, "res-1", first)))
    assert (result.received, result.stored, result.duplicates) == (10, 10, 0)
    # Overlaps the first five seconds: those keep their first values (DO NOTHING).
    result = _write(pool, message((bed, "res-1", second), (bed, "res-1", second[:3])))
    assert (result.received, result.stored, result.duplicates) == (13, 5, 8)
    with pool.connection() as conn:
        assert count_samples(conn, bed) == 15
    assert stored_rows(pool, bed) == as_tuples(first + second[5:])


def test_a_window_of_new_and_redelivered_messages_stores_each_sample_once(pool):
    """Ingest's path: messages in the common form, COPied as they are; a window with a sample
    stored before falls back to inserting each (device, ts) once, with the same result."""
    bed, other = unique("bed"), unique("bed")
    first, second = series(base_time(), 30, seed=1), series(base_time() + timedelta(seconds=20), 30, seed=2)
    one = parse_common_form(message((bed, "res-1", first)).dumps())
    two = parse_common_form(message((bed, "res-1", second), (other, "res-2", first)).dumps())
    assert one is not None and two is not None
    window = Parsed()
    window.extend(one)
    with pool.connection() as conn, conn.transaction():
        result = write_parsed(conn, window)
    assert (result.received, result.stored) == (30, 30)
    window.extend(two)  # `one` redelivered with new messages
    with pool.connection() as conn, conn.transaction():
        result = write_parsed(conn, window)
    assert (result.received, result.stored) == (90, 20 + 30)
    assert stored_rows(pool, bed) == as_tuples(first + second[10:])
    assert stored_rows(pool, other) == as_tuples(first)
    with pool.connection() as conn:
        latest = latest_states(conn, [bed, other])
    assert {d: s["ts"] for d, s in latest.items()} == {bed: second[-1].ts, other: first[-1].ts}


@pytest.mark.parametrize("parse", ["parse_for_copy", "parse_forwarded"])
def test_names_that_copy_and_arrays_must_escape_round_trip(pool, parse):
    """COPY text and the array literals of the markers and latest samples escape what they must."""
    bed = unique("bed") + '\\x\t\n\r" {a,b} NULL'
    samples = series(base_time(), 5, seed=3)
    batches = message((bed, 'res\\\t"', samples))
    assert parse_common_form(batches.dumps()) is not None
    parsed = (parse_for_copy(batches.dumps()) if parse == "parse_for_copy"
              else parse_forwarded([b.dumps() for b in batches.batches]))
    with pool.connection() as conn, conn.transaction():
        assert write_parsed(conn, parsed).stored == 5
    assert stored_rows(pool, bed) == as_tuples(samples)
    with pool.connection() as conn:
        rows = conn.execute("SELECT DISTINCT resident_id FROM telemetry.bed_samples WHERE device_id = %s",
                            (bed,)).fetchall()
        latest = latest_states(conn, [bed])
        marked = conn.execute("SELECT count(*) AS n FROM telemetry.touched_minutes WHERE device_id = %s",
                              (bed,)).fetchone()
    assert [r["resident_id"] for r in rows] == ['res\\\t"']
    assert latest[bed]["ts"] == samples[-1].ts and marked["n"] == len({s.ts.replace(second=0, microsecond=0)
                                                                       for s in samples})


def test_values_round_trip_exactly(pool):
    bed = unique("bed")
    t = base_time().replace(microsecond=123000)
    samples = [
        sample(t, occupied=True).model_copy(update={"heart_rate": 250, "respiration_rate": 4, "movement": 0.123}),
        sample(t + timedelta(milliseconds=250), occupied=False).model_copy(
            update={"heart_rate": None, "respiration_rate": None, "movement": 0.0}
        ),
        sample(t + timedelta(seconds=1), occupied=True).model_copy(
            update={"heart_rate": 20, "respiration_rate": 60, "movement": 1.0}
        ),
    ]
    _write(pool, message((bed, "res-rt", samples)))
    assert stored_rows(pool, bed) == as_tuples(samples)
    points = _vitals(pool, bed, t, t + timedelta(seconds=2), "raw")
    assert [
        (p["ts"], p["occupied"], p["heart_rate"], p["respiration_rate"], p["movement"]) for p in points
    ] == as_tuples(samples)
    assert all(p["ts"].tzinfo == UTC for p in points)


def test_a_movement_too_small_for_a_real_is_stored_as_zero_with_the_rest_of_its_message(pool):
    """The contract allows any movement in 0.0-1.0; PostgreSQL refuses 1e-50 as a `real` (out
    of range), and one such sample must not cost the other beds of the message their samples."""
    tiny, other, t = unique("bed"), unique("bed"), base_time()
    samples = [sample(t + timedelta(seconds=i), occupied=True) for i in range(3)]
    odd = [samples[0].model_copy(update={"movement": 1e-50}), samples[1].model_copy(update={"movement": 1e-40}),
           samples[2].model_copy(update={"movement": 0.5})]
    normal = series(t, 3, seed=5)
    payload = message((tiny, "res-tiny", odd), (other, "res-other", normal)).dumps()
    assert parse_common_form(payload) is None  # the slow path makes it storable
    with pool.connection() as conn, conn.transaction():
        assert write_parsed(conn, parse_for_copy(payload)).stored == 6
    assert [row[4] for row in stored_rows(pool, tiny)] == [0.0, 0.0, 0.5]  # below the smallest normal real
    assert stored_rows(pool, other) == as_tuples(normal)


def _vitals(pool, bed, start, end, resolution, **kw):
    if resolution != "raw":
        refresh_aggregates(pool)  # TimescaleDB: as its refresh policy does
    with pool.connection() as conn:
        return vitals(conn, bed, start, end, resolution, **kw)


def _oracle(rows, step: timedelta, start: datetime, end: datetime):
    """Aggregates of raw rows, computed here from the rows themselves: every bucket that
    overlaps [start, end), whole."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    first = epoch + ((start - epoch) // step) * step
    groups = defaultdict(list)
    for row in rows:
        bucket = epoch + ((row[0] - epoch) // step) * step
        if first <= bucket < end:
            groups[bucket].append(row)
    out = []
    for ts in sorted(groups):
        g = groups[ts]
        hr = [r[2] for r in g if r[2] is not None]
        rr = [r[3] for r in g if r[3] is not None]
        out.append({
            "ts": ts, "samples": len(g),
            "occupancy": sum(r[1] for r in g) / len(g),
            "heart_rate": sum(hr) / len(hr) if hr else None,
            "heart_rate_min": min(hr, default=None), "heart_rate_max": max(hr, default=None),
            "respiration_rate": sum(rr) / len(rr) if rr else None,
            "respiration_rate_min": min(rr, default=None), "respiration_rate_max": max(rr, default=None),
            "movement": sum(r[4] for r in g) / len(g), "movement_max": max(r[4] for r in g),
        })
    return out


def _same(actual: list[dict], expected: list[dict]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.keys() == e.keys()
        for key, value in e.items():
            if isinstance(value, float):
                assert math.isclose(a[key], value, rel_tol=1e-9, abs_tol=1e-12), (a["ts"], key)
            else:
                assert a[key] == value, (a["ts"], key)


@pytest.mark.parametrize("resolution, step", [("1m", timedelta(minutes=1)), ("1h", timedelta(hours=1))])
def test_bucketed_vitals_equal_aggregates_of_the_raw_rows(pool, resolution, step):
    bed = unique("bed")
    start = base_time(days_ago=2)
    # Two and a half hours, one sample every 7 s, with a gap: buckets of 0 samples are absent.
    samples = series(start, 1300, timedelta(seconds=7), seed=42)
    samples = [s for s in samples if not start + timedelta(minutes=40) <= s.ts < start + timedelta(minutes=55)]
    _write(pool, message((bed, "res-agg", samples), (unique("bed"), "res-other", samples[:50])))
    rows = stored_rows(pool, bed)
    # A window with partial buckets at both edges.
    lo, hi = start + timedelta(minutes=3, seconds=31), start + timedelta(hours=2, minutes=1, seconds=5)
    points = _vitals(pool, bed, lo, hi, resolution)
    expected = _oracle(rows, step, lo, hi)
    assert expected and sum(p["samples"] for p in expected) > sum(lo <= r[0] < hi for r in rows)  # whole edges
    _same(points, expected)


def test_auto_resolution_and_point_limit(pool):
    bed = unique("bed")
    start = base_time()
    _write(pool, message((bed, "res-auto", series(start, 120, timedelta(seconds=30)))))
    short = _vitals(pool, bed, start, start + timedelta(minutes=10), "auto")
    assert len(short) == 20 and "occupied" in short[0]  # raw samples
    day = _vitals(pool, bed, start - timedelta(hours=23), start + timedelta(hours=1), "auto")
    assert len(day) == 60 and day[0]["samples"] == 2  # minute buckets
    with pytest.raises(Invalid, match="more than 10 points"):
        _vitals(pool, bed, start, start + timedelta(hours=1), "raw", max_points=10)
    assert _vitals(pool, unique("bed"), start, start + timedelta(hours=1), "raw") == []


def test_latest_states_give_the_newest_sample_even_when_older_ones_arrive_later(pool):
    bed, other, silent = unique("bed"), unique("bed"), unique("bed")
    start = base_time()
    newest = series(start, 5, seed=3)
    _write(pool, message((bed, "res-l", newest), (other, "res-o", series(start, 2, seed=4))))
    _write(pool, message((bed, "res-l", series(start - timedelta(minutes=5), 5, seed=5))))
    with pool.connection() as conn:
        states = latest_states(conn, [bed, other, silent])
    assert set(states) == {bed, other}
    assert states[bed]["ts"] == newest[-1].ts and states[bed]["movement"] == newest[-1].movement
    assert states[bed]["resident_id"] == "res-l"


def test_samples_outside_every_partition_are_kept_and_moved_into_a_new_one(pool):
    with pool.connection() as conn:
        if current_flavour(conn) is not Flavour.PLAIN:
            pytest.skip("daily partitions are made by the plain flavour only")
    bed = unique("bed")
    far = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=400)
    samples = series(far, 5, seed=random.randint(0, 1000))
    _write(pool, message((bed, "res-far", samples)))

    def partitions():
        with pool.connection() as conn:
            return {
                r["tableoid"]
                for r in conn.execute(
                    "SELECT tableoid::regclass::text FROM telemetry.bed_samples WHERE device_id = %s",
                    (bed,),
                )
            }

    assert partitions() == {"telemetry.bed_samples_default"}
    with pool.connection() as conn, conn.transaction():
        assert ensure_partitions(conn, far.date(), 1) == 1
        assert ensure_partitions(conn, far.date(), 1) == 0  # idempotent
    assert partitions() == {f"telemetry.bed_samples_{far:%Y%m%d}"}
    assert stored_rows(pool, bed) == as_tuples(samples)
    # The new partition still refuses duplicates.
    assert _write(pool, message((bed, "res-far", samples))).stored == 0


def test_the_partition_migration_can_run_again_without_effect(pool):
    from importlib import resources

    with pool.connection() as conn:
        flavour = current_flavour(conn)
    if flavour is not Flavour.PLAIN:
        pytest.skip("daily partitions are made by the plain flavour only")
    sql = (resources.files("services.telemetry") / "migrations" / "0001_samples.plain.sql").read_text()

    def layout():
        with pool.connection() as conn:
            return conn.execute(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i"
                " JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'telemetry.bed_samples'::regclass ORDER BY 1"
            ).fetchall()

    before = layout()
    bed = unique("bed")
    _write(pool, message((bed, "res-m", series(base_time(), 3))))
    with pool.connection() as conn, conn.transaction():
        conn.execute(sql)
    assert layout() == before and len(before) >= 12  # 11 days and the default
    with pool.connection() as conn:
        assert count_samples(conn, bed) == 3
