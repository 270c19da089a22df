"""The TimescaleDB flavour on the real extension: migrations, continuous aggregates equal to
aggregates of the raw rows, the same vitals queries, the sample rules, and policies with the
configured values. The server is HOMECARE_TEST_TIMESCALE_URL when set (CI starts one with
../shared/timescaledb/start; a fresh database of its own is made in it), else a
`timescale/timescaledb` container (testcontainers); skipped, saying why, with neither."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from homecare.api.health import health_router
from homecare.db import Flavour, migrate, open_pool
from services.telemetry.queries import vitals
from services.telemetry.settings import TelemetrySettings
from services.telemetry.store import jobs, timescale
from services.telemetry.workers.maintenance import JobWatch
from tests.support import fresh_database, unique

from .alert_support import alerts_of, recent_start, store, vitals_samples, worker
from .helpers import base_time, jobs_by_hand_only, run_jobs_while_samples_are_locked, series

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
    assert _refresh_reach(ts_pool) == {"vitals_1m": "8 days", "vitals_1h": "8 days"}


def _refresh_reach(pool) -> dict[str, str]:
    with pool.connection() as conn:
        return {r["hypertable_name"]: r["config"]["start_offset"] for r in conn.execute(
            "SELECT hypertable_name, config FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate'")}


def test_no_refresh_reaches_days_that_retention_dropped(ts_pool):
    """Raw samples kept 3 days: a refresh 8 days back would delete the minutes of days 4-8 (their
    raw rows are gone), so the minute aggregate is refreshed 3 days back; the hour aggregate,
    whose source (the minutes) is kept 5 days, 5 days back. Then retention drops a day of raw
    chunks and the refresh runs: the minutes of that day stay."""
    config = TelemetrySettings(raw_retention_days=3, rollup_1m_retention_days=5, compress_after_days=0)
    with ts_pool.connection() as conn, conn.transaction():
        timescale.apply_policies(conn, config)
        # Only the runs below: a background refresh of the server's own, between the samples and
        # the refresh by hand, took the old day's invalidation now and then (1 run in 6 here).
        conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
                     " WHERE hypertable_schema = 'telemetry'")
    assert _refresh_reach(ts_pool) == {"vitals_1m": "3 days", "vitals_1h": "5 days"}
    bed = unique("bed")
    # Four days back, inside one day's chunk (chunks are whole UTC days), so dropping what is older
    # than 3 days drops every sample of it whatever the time of day the test runs at: at 23:58 UTC
    # the two minutes of samples crossed midnight into the next chunk, which was kept.
    old = base_time(days_ago=4)
    if (old + timedelta(minutes=3)).date() != old.date():
        old -= timedelta(minutes=10)
    store(ts_pool, bed, "res-kept", series(old, 120, timedelta(seconds=1), seed=5))
    with psycopg.connect(ts_pool.conninfo, autocommit=True) as conn:  # materialize the old day
        conn.execute("CALL refresh_continuous_aggregate('telemetry.vitals_1m', %s::timestamptz, %s::timestamptz)",
                     (old - timedelta(hours=1), old + timedelta(hours=1)))
        minutes_before = conn.execute("SELECT count(*) FROM telemetry.vitals_1m WHERE device_id = %s",
                                      (bed,)).fetchone()[0]
        conn.execute("SELECT drop_chunks('telemetry.bed_samples', older_than => INTERVAL '3 days')")
        assert conn.execute("SELECT count(*) FROM telemetry.bed_samples WHERE device_id = %s",
                            (bed,)).fetchone()[0] == 0
    assert minutes_before >= 2
    assert not [r for r in jobs.run_due(ts_pool.conninfo, every=True) if r.error]
    with ts_pool.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM telemetry.vitals_1m WHERE device_id = %s",
                            (bed,)).fetchone()["n"] == minutes_before
    with ts_pool.connection() as conn, conn.transaction():
        timescale.apply_policies(conn, TelemetrySettings())  # the defaults again for the other tests


# --- the policy jobs, watched and run by hand --------------------------------------------------


def _gauge(name: str, job: jobs.JobState) -> float | None:
    return REGISTRY.get_sample_value(name, {"job_id": str(job.job_id), "proc": job.proc_name, "target": job.target})


def test_a_failed_job_is_exported_and_makes_readiness_degraded_until_it_succeeds(ts_pool, timescale_url):
    jobs_by_hand_only(ts_pool)
    runs = run_jobs_while_samples_are_locked(timescale_url)
    failed = {r.job.name: r.error for r in runs if r.error}
    assert len(runs) == 6  # refresh x2, compression, retention x3
    # Its retention fails; so does what reads its rows (the minute aggregate's refresh, with the
    # samples other tests here stored), each for the lock.
    assert "policy_retention on bed_samples" in failed
    assert all("lock timeout" in error for error in failed.values()), failed

    watch = JobWatch(ts_pool, TelemetrySettings())
    problems = watch.check_once()
    assert sorted(p.split(" failed at ")[0] for p in problems) == sorted(failed)
    assert all("lock timeout" in p for p in problems)
    with ts_pool.connection() as conn:
        job = next(j for j in jobs.read_jobs(conn) if j.name == "policy_retention on bed_samples")
    assert _gauge("homecare_telemetry_job_problem", job) == 1
    assert _gauge("homecare_telemetry_job_last_failure_timestamp_seconds", job) > 0

    app = FastAPI()
    app.include_router(health_router({"telemetry.timescaledb_jobs": watch.readiness}))
    answer = TestClient(app).get("/readyz")
    assert answer.status_code == 200  # degraded, still serving
    assert answer.json()["degraded"] == {"telemetry.timescaledb_jobs": problems}

    # Due again (they never succeeded), they run by hand and succeed: the problems are gone.
    again = jobs.run_due(timescale_url)
    assert {r.job.name: r.error for r in again} == dict.fromkeys(failed)
    assert watch.check_once() == []
    assert watch.readiness() is True and TestClient(app).get("/readyz").json()["degraded"] == {}
    assert _gauge("homecare_telemetry_job_problem", job) == 0
    assert _gauge("homecare_telemetry_job_last_success_timestamp_seconds", job) > 0


def test_a_job_that_has_not_succeeded_for_twice_its_interval_is_a_problem(ts_pool, timescale_url):
    jobs_by_hand_only(ts_pool)
    assert not [r for r in jobs.run_due(timescale_url, every=True) if r.error]
    watch = JobWatch(ts_pool, TelemetrySettings())
    now = datetime.now(UTC)
    assert watch.check_once(now) == []
    # Three minutes on, nothing ran: the minute aggregate's refresh (every minute) is late; the
    # hour's (every 5 minutes) and the daily retention and half-daily compression are not.
    problems = watch.check_once(now + timedelta(minutes=3))
    assert len(problems) == 1
    assert problems[0].startswith("policy_refresh_continuous_aggregate on vitals_1m has not succeeded since")
    assert "every 1 min" in problems[0]
    # Run by hand, only what is due runs.
    ran = jobs.run_due(timescale_url, now=now + timedelta(minutes=3))
    assert sorted(r.job.target for r in ran) == ["vitals_1m"]


def test_run_jobs_from_the_command_line(timescale_url, monkeypatch, capsys):
    from launch.cli import main

    monkeypatch.setenv("HOMECARE_DATABASE_URL", timescale_url)
    assert main(["telemetry", "run-jobs", "--all"]) == 0
    out = capsys.readouterr().out
    assert "policy_refresh_continuous_aggregate on vitals_1m (job " in out and "): done in " in out
