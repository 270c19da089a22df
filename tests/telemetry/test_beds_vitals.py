"""Many beds' minute points in one query (a district's overview), on the real database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from homecare.errors import Invalid
from services.telemetry.domain.samples import parse_batches
from services.telemetry.queries import BEDS_MAX_SPAN, beds_vitals, vitals
from services.telemetry.store.samples import write_samples
from tests.support import unique

from .helpers import analyse, base_time, message, series


def _write(pool, batches_message) -> None:
    with pool.connection() as conn, conn.transaction():
        write_samples(conn, parse_batches(batches_message.dumps()))
    analyse(pool)  # the rollups, as the service's analysis worker keeps them


def test_each_bed_gets_its_own_minutes_as_vitals_gives_them(pool):
    one, two, silent = unique("bed"), unique("bed"), unique("bed")
    start = base_time()  # 17.25 s past a minute: the first minute is partial
    _write(pool, message((one, "res-b1", series(start, 90, timedelta(seconds=20), seed=1)),
                         (two, "res-b2", series(start + timedelta(minutes=10), 30, timedelta(seconds=30), seed=2))))
    lo, hi = start + timedelta(minutes=2, seconds=5), start + timedelta(minutes=25)

    with pool.connection() as conn:
        points = beds_vitals(conn, [one, two, silent], lo, hi)
        expected = {bed: vitals(conn, bed, lo, hi, "1m") for bed in (one, two)}

    assert set(points) == {one, two}  # a bed without data in the range is absent
    keys = ("ts", "samples", "occupancy", "heart_rate", "respiration_rate")
    # what an overview draws, with the values of vitals' minute points, per bed
    assert points == {bed: [{k: p[k] for k in keys} for p in expected[bed]] for bed in expected}
    assert [p["ts"] for p in points[one]] == sorted(p["ts"] for p in points[one])
    assert points[one][0]["ts"] == lo.replace(second=0, microsecond=0)  # the overlapping minute, whole
    assert points[one][-1]["ts"] < hi and len(points[one]) == 24  # minutes 2 to 25 of the samples
    assert len(points[two]) == 15  # a sample every 30 s for 15 minutes
    assert all(p["samples"] == 2 for p in points[two])


def test_beds_without_data_in_the_range_are_absent(pool):
    bed = unique("bed")
    start = base_time()
    _write(pool, message((bed, "res-b3", series(start, 10, timedelta(seconds=30)))))

    with pool.connection() as conn:
        assert beds_vitals(conn, [bed], start + timedelta(hours=1), start + timedelta(hours=2)) == {}
        assert beds_vitals(conn, [], start, start + timedelta(hours=1)) == {}
        assert beds_vitals(conn, [unique("bed")], start, start + timedelta(hours=1)) == {}


@pytest.mark.parametrize("span", [timedelta(0), -timedelta(minutes=1), BEDS_MAX_SPAN + timedelta(seconds=1)])
def test_an_empty_or_too_long_range_is_invalid(pool, span):
    start = base_time()
    with pool.connection() as conn, pytest.raises(Invalid):
        beds_vitals(conn, [unique("bed")], start, start + span)


def test_the_longest_range_is_allowed(pool):
    start = base_time()
    with pool.connection() as conn:
        assert beds_vitals(conn, [unique("bed")], start, start + BEDS_MAX_SPAN) == {}
