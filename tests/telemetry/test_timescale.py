"""The TimescaleDB flavour on the real extension: migrations, continuous aggregates equal to
aggregates of the raw rows, the same vitals queries, the sample rules, and policies with the
configured values. The server is HOMECARE_TEST_TIMESCALE_URL when set (CI starts one with
../shared/timescaledb/start; a fresh database of its own is made in it), else a
`timescale/timescaledb` container (testcontainers); skipped, saying why, with neither."""

from __future__ import annotations

import os
from datetime import timedelta

import psycopg
import pytest

from homecare.db import Flavour, migrate, open_pool
from services.telemetry import timescale
from services.telemetry.queries import vitals
from services.telemetry.settings import TelemetrySettings
from tests.support import fresh_database, unique

from .alert_support import alerts_of, recent_start, store, vitals_samples, worker
from .helpers import base_time, series

IMAGE = "timescale/timescaledb:latest-pg16"


def _docker_or_skip() -> None:
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:  # no engine, no socket, no permission
        pytest.skip(f"no TimescaleDB: HOMECARE_TEST_TIMESCALE_URL is not set and no Docker engine is"
                    f" reachable for testcontainers ({type(exc).__name__}: {exc})")


@pytest.fixture(scope="module")
def timescale_url():
    server = os.environ.get("HOMECARE_TEST_TIMESCALE_URL")
    if server:
        with fresh_database(server) as url:
            assert migrate(url) is Flavour.TIMESCALE, "HOMECARE_TEST_TIMESCALE_URL has no usable TimescaleDB"
            yield url
        return
    _docker_or_skip()
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer(IMAGE, driver=None) as container:
        url = container.get_connection_url()
        assert migrate(url) is Flavour.TIMESCALE
        yield url


@pytest.fixture(scope="module")
def ts_pool(timescale_url):
    pool = open_pool(timescale_url, max_size=4, name="timescale-tests")
    yield pool
    pool.close()


def _refresh(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CALL refresh_continuous_aggregate('telemetry.vitals_1m', NULL, NULL)")
        conn.execute("CALL refresh_continuous_aggregate('telemetry.vitals_1h', NULL, NULL)")


_RAW_1M = """
SELECT device_id, time_bucket(INTERVAL '1 minute', ts) AS bucket, resident_id, count(*) AS samples,
       count(*) FILTER (WHERE occupied) AS occupied_samples, count(heart_rate) AS heart_rate_count,
       sum(heart_rate) AS heart_rate_sum, min(heart_rate) AS heart_rate_min, max(heart_rate) AS heart_rate_max,
       sum(movement::numeric) AS movement_sum, max(movement) AS movement_max
FROM telemetry.bed_samples WHERE device_id = %s GROUP BY 1, 2, 3 ORDER BY 2
"""
_CAGG_1M = """
SELECT device_id, bucket, resident_id, samples, occupied_samples, heart_rate_count, heart_rate_sum,
       heart_rate_min, heart_rate_max, movement_sum, movement_max
FROM telemetry.vitals_1m WHERE device_id = %s ORDER BY 2
"""


def test_continuous_aggregates_equal_raw_aggregates_and_serve_the_same_vitals(ts_pool, timescale_url):
    bed = unique("bed")
    start = base_time(days_ago=2)
    store(ts_pool, bed, "res-ts", series(start, 600, timedelta(seconds=7), seed=3))
    store(ts_pool, bed, "res-ts", series(start + timedelta(seconds=3), 100, timedelta(seconds=7), seed=4))  # late
    _refresh(timescale_url)
    with ts_pool.connection() as conn:
        assert conn.execute(_CAGG_1M, (bed,)).fetchall() == conn.execute(_RAW_1M, (bed,)).fetchall()
        minutes = vitals(conn, bed, start, start + timedelta(hours=2), "1m")
        hours = vitals(conn, bed, start, start + timedelta(hours=2), "1h")
    assert sum(p["samples"] for p in minutes) == sum(p["samples"] for p in hours) == 700


def test_sample_rules_run_on_the_timescale_flavour(ts_pool):
    bed, resident = unique("bed"), unique("res")
    store(ts_pool, bed, resident, vitals_samples(recent_start(), 150, heart_rate=128), batch=10)
    assert worker(ts_pool).analyse_once() > 0  # the markers are claimed; no plain rollups to recompute
    assert [a["rule"] for a in alerts_of(ts_pool, resident)] == ["heart_rate_range"]


def test_policies_take_the_configured_values(ts_pool):
    config = TelemetrySettings(compress_after_days=10, raw_retention_days=60, rollup_1m_retention_days=400,
                               rollup_1h_retention_days=0)
    with ts_pool.connection() as conn, conn.transaction():
        timescale.apply_policies(conn, config)
    with ts_pool.connection() as conn:
        jobs = conn.execute(
            "SELECT hypertable_schema, hypertable_name, proc_name, config FROM timescaledb_information.jobs"
            " WHERE proc_name IN ('policy_compression', 'policy_retention')"
        ).fetchall()
        views = {r["materialization_hypertable_name"]: r["view_name"] for r in conn.execute(
            "SELECT view_name, materialization_hypertable_name FROM timescaledb_information.continuous_aggregates")}
    found = {(views.get(j["hypertable_name"], j["hypertable_name"]), j["proc_name"]):
             j["config"].get("compress_after") or j["config"].get("drop_after") for j in jobs}
    assert found[("bed_samples", "policy_compression")] == "10 days"
    assert found[("bed_samples", "policy_retention")] == "60 days"
    assert found[("vitals_1m", "policy_retention")] == "400 days"
    assert ("vitals_1h", "policy_retention") not in found  # 0: kept forever
