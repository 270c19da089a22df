"""The chart benchmark's code paths on a small shape (no timed asserts: a benchmark's numbers
are not a test's business; that it loads what it says and times the product's reads is): the
samples land as generated, the charts and the district page read them through the product."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from bench.charts.load import Shape, bed_id, district_of, prepare
from bench.charts.run import TARGETS_MS, measure, storage
from console.beds_data import district_beds
from services.telemetry.queries import vitals


def test_the_chart_benchmark_loads_its_shape_and_times_the_products_reads(server_database_url):
    shape = Shape(beds=120, days=2, interval_s=60)
    name = f"bench_charts_test_{uuid.uuid4().hex[:8]}"
    try:
        url, flavour, loading = prepare(server_database_url, shape, workers=2, database=name)
        assert loading["history_s"] > 0 and "top_up_s" in loading
        with psycopg.connect(url) as conn:
            # The samples end where the load stopped, not at the clock: a minute that turns
            # between loading and reading would leave the last minute of the day empty.
            end = conn.execute("SELECT until FROM bench_charts.loaded").fetchone()[0]
            assert datetime.now(UTC) - end < timedelta(minutes=5)  # topped up to about now
            rows = conn.execute("SELECT count(*) FROM telemetry.bed_samples").fetchone()[0]
            assert shape.rows <= rows <= shape.rows + 2 * shape.beds  # the history, topped up to now
            day = vitals(conn, bed_id(7), end - timedelta(hours=24), end, "1m")
            assert len(day) == 1440 and all(p["samples"] == 1 for p in day)
            assert {p["occupancy"] for p in day} == {0.0, 1.0}  # nights in bed, days out
            page = district_beds(conn, district_of(120))
            assert len(page["rows"]) == 20  # district 2 holds beds 101-120
            assert all(row["spark"]["points"] >= 58 for row in page["rows"])

        again_url, _, again = prepare(server_database_url, shape, database=name)
        assert again_url == url and "history_s" not in again  # kept, only topped up

        results = measure(url, shape, charts=5, dashboards=3)
        assert set(results) == {"round_trip", *TARGETS_MS}
        for read in ("chart_24h", "chart_7d"):
            assert results[read]["n"] == 5 and results[read]["p50"] > 0
        assert results["district_dashboard"]["n"] == 3
        assert all(isinstance(results[read]["met"], bool) for read in TARGETS_MS)
        sizes = storage(url, flavour)
        assert sizes["raw_bytes"] > 0 and sizes["vitals_1m_bytes"] > 0
    finally:
        with psycopg.connect(server_database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
